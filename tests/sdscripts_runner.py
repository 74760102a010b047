"""Run inside an sd-scripts checkout's own Python (opt-in tests): read a rendered config with
the checkout's own parser and reader, then build the real optimizer path on tiny stand-ins.

Usage: python sdscripts_runner.py SD_SCRIPTS_DIR SCRIPT CONFIG_TOML
Prints one JSON line: the values sd-scripts read, and the learning rates after two steps.

The optimizer block is sd-scripts' own code, taken from the checkout's train_network.py at
test time (from "prepare optimizer" to get_optimizer) and run as it is written, so the
test follows each commit's own handling of text_encoder_lr. Nothing of it is copied here.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import textwrap
import types

root, script, config = sys.argv[1:4]
sys.path.insert(0, root)
os.chdir(root)

from torch import nn  # noqa: E402

module = importlib.import_module(script[:-3])
parser = module.setup_parser()
# read_config_from_file parses sys.argv again on top of the file, as in a real launch.
sys.argv = [script, "--config_file", config]
args = parser.parse_args()
try:
    from library.train_util import read_config_from_file
except ImportError:
    from library.args import read_config_from_file  # 6721028c moved it
args = read_config_from_file(args, parser)


# Tiny modules with the class names networks/lora.py looks for.
class CLIPAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q_proj, self.k_proj = nn.Linear(8, 8), nn.Linear(8, 8)
        self.v_proj, self.out_proj = nn.Linear(8, 8), nn.Linear(8, 8)


class CLIPMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 8)


class CLIPEncoderLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.self_attn, self.mlp = CLIPAttention(), CLIPMLP()


class TextModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([CLIPEncoderLayer()])


class Transformer2DModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj_in, self.proj_out = nn.Linear(8, 8), nn.Linear(8, 8)


class UNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = Transformer2DModel()


lora = importlib.import_module("networks.lora")
sdxl = script.startswith("sdxl")
encoders = [TextModel(), TextModel()] if sdxl else [TextModel()]
network = lora.create_network(
    1.0, args.network_dim, args.network_alpha, None, encoders if sdxl else encoders[0], UNet()
)
network.apply_to(encoders if sdxl else encoders[0], UNet(), True, True)

train_network = importlib.import_module("train_network")
with open(train_network.__file__, encoding="utf-8") as handle:
    lines = handle.read().splitlines()
start = next(i for i, line in enumerate(lines) if "prepare optimizer, data loader etc." in line)
end = next(
    i for i in range(start, len(lines)) if "get_optimizer(args, trainable_params)" in lines[i]
)
sched = next(line.strip() for line in lines if "get_scheduler_fix(args, optimizer" in line)
block = textwrap.dedent("\n".join(lines[start : end + 1])) + "\n" + sched + "\n"
accelerator = types.SimpleNamespace(print=lambda *a, **k: None, num_processes=1)
args.max_train_steps = 100
namespace = {**vars(train_network), "args": args, "network": network, "accelerator": accelerator}
exec(compile(block, train_network.__file__, "exec"), namespace)
optimizer, scheduler = namespace["optimizer"], namespace["lr_scheduler"]
for _ in range(2):
    loss = sum(p.float().sum() for group in optimizer.param_groups for p in group["params"])
    loss.backward()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
read = {k: v for k, v in vars(args).items() if isinstance(v, int | float | str | bool | list)}
print(
    "RUNNER " + json.dumps({"read": read, "lrs": [float(g["lr"]) for g in optimizer.param_groups]})
)
