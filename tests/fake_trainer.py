"""A stand-in for sd-scripts' training scripts, for the runner tests (stdlib + toml only).

It reads `--config_file` with the `toml` package and flattens its tables as sd-scripts does,
prints tqdm-like progress (carriage returns included), writes `<name>-000001.safetensors` ...
and the final `<name>.safetensors` into output_dir (real safetensors files with ss_* metadata),
and `<name>-<epoch>-state/` folders with save_state. FAKE_TRAINER_MODE tells it what to do:
  ok (default) | fail:<key> (print the real error text of a known failure, exit 1) |
  crash (an unknown traceback) | hang (wait until SIGINT, then stop cleanly with 130) |
  stubborn (ignore SIGINT, printing 'ignoring SIGINT'; only SIGTERM/SIGKILL end it) |
  exit:<code>
FAKE_TRAINER_MODES: a JSON object {output_name: mode}, a mode per run (a queue).
FAKE_TRAINER_PIDFILE: write our pid there (so tests can check the process really ended).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import struct
import sys
import time
from pathlib import Path
from typing import Any

import toml

# The texts the real programs print (sd-scripts at 48d368fa, torch, accelerate).
FAILURES: dict[str, str] = {
    "mixed-precision-mps": (
        "ValueError: fp16 mixed precision with MPS device requires a Pytorch >= 2.5.0"
    ),
    "bitsandbytes": "ImportError: No bitsandbytes / bitsandbytesがインストールされていないようです",
    "xformers": "ImportError: No xformers / xformersがインストールされていないようです",
    "oom-mps": (
        "RuntimeError: MPS backend out of memory (MPS allocated: 17.95 GB, other allocations: "
        "1.17 GB, max allowed: 18.13 GB). Tried to allocate 100.00 MB on private pool."
    ),
    "oom-cuda": (
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 has a "
        "total capacity of 7.79 GiB of which 9.50 MiB is free."
    ),
    "no-data": (
        "No data found. Please verify arguments (train_data_dir must be the parent of folders "
        "with images) / 画像がありません。引数指定を確認してください"
    ),
    "image-too-large": (
        "AssertionError: image too large, but cropping and bucketing are disabled / "
        "画像サイズが大きいのでface_crop_aug_rangeかrandom_crop、またはbucketを有効にしてください: "
        "/data/img/7_x/x_1.png"
    ),
    "constant-warmup": ("ValueError: constant does not require `num_warmup_steps`. Set None or 0."),
    "tokenizer-offline": (
        "OSError: We couldn't connect to 'https://huggingface.co' to load this file, couldn't "
        "find it in the cached files and it looks like openai/clip-vit-large-patch14 is not "
        "the path to a directory containing a file named vocab.json."
    ),
    "missing-module": "ModuleNotFoundError: No module named 'voluptuous'",
}


def flatten(doc: dict[str, Any]) -> dict[str, Any]:
    """sd-scripts' read_config_from_file: every table's keys land in one namespace."""
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def write_lora(path: Path, metadata: dict[str, str], dim: int) -> None:
    """A real (tiny) safetensors file: two fp32 tensors and the ss_* metadata."""
    count = dim * 4
    tensors = {
        "lora_unet_down.lora_down.weight": [dim, 4],
        "lora_unet_down.lora_up.weight": [4, dim],
    }
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for name, shape in tensors.items():
        header[name] = {
            "dtype": "F32",
            "shape": shape,
            "data_offsets": [offset, offset + count * 4],
        }
        offset += count * 4
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)
    os.replace(tmp, path)


def _first(value: Any) -> Any:
    # text_encoder_lr is a list at sd-scripts main; the metadata records its first value.
    return value[0] if isinstance(value, list) and value else value


def progress(step: int, total: int, loss: float) -> None:
    percent = int(100 * step / total)
    bar = "█" * (percent // 10) + " " * (10 - percent // 10)
    sys.stdout.write(
        f"\rsteps: {percent:3d}%|{bar}| {step}/{total} "
        f"[00:0{step}<00:00, 2.50it/s, avr_loss={loss}]"
    )
    sys.stdout.flush()


def train(args: argparse.Namespace, flat: dict[str, Any]) -> int:
    out = Path(flat["output_dir"])
    name = str(flat.get("output_name") or "last")
    epochs = int(flat.get("max_train_epochs") or 1)
    every = int(flat.get("save_every_n_epochs") or 0)
    dim = int(flat.get("network_dim") or 4)
    steps_per_epoch = 2
    out.mkdir(parents=True, exist_ok=True)
    start_epoch = 0
    if args.resume:
        state = json.loads((Path(args.resume) / "train_state.json").read_text())
        start_epoch = int(state["current_epoch"])
        print(f"resume training from state: {args.resume} epoch {start_epoch}", flush=True)
    print(f"running training / 学習開始  num epochs / epoch数: {epochs}", flush=True)
    total = epochs * steps_per_epoch
    step = start_epoch * steps_per_epoch
    delay = float(os.environ.get("FAKE_TRAINER_STEP_DELAY", "0"))
    for epoch in range(start_epoch + 1, epochs + 1):
        print(f"\nepoch {epoch}/{epochs}", flush=True)
        for _ in range(steps_per_epoch):
            step += 1
            time.sleep(delay)
            progress(step, total, 0.1)
        last = epoch == epochs
        if last or (every and epoch % every == 0):
            stem = name if last else f"{name}-{epoch:06d}"
            metadata = {
                "ss_output_name": name,
                "ss_epoch": str(epoch),
                "ss_steps": str(step),
                "ss_num_epochs": str(epochs),
                "ss_network_dim": str(dim),
                "ss_network_alpha": str(flat.get("network_alpha", 1)),
                "ss_learning_rate": str(flat.get("learning_rate")),
                "ss_unet_lr": str(flat.get("unet_lr")),
                "ss_text_encoder_lr": str(_first(flat.get("text_encoder_lr"))),
                "ss_network_module": str(flat.get("network_module")),
                "ss_base_model_version": "sdxl_base_v1-0"
                if "sdxl" in Path(sys.argv[0]).name
                else "sd_v1",
            }
            write_lora(out / f"{stem}.safetensors", metadata, dim)
            if flat.get("save_state"):
                state_dir = out / (f"{name}-state" if last else f"{name}-{epoch:06d}-state")
                state_dir.mkdir(exist_ok=True)
                (state_dir / "train_state.json").write_text(
                    json.dumps({"current_epoch": epoch, "current_step": step})
                )
                # train_util.save_and_remove_state_on_epoch_end: keep the last N epoch states.
                keep = int(flat.get("save_last_n_epochs_state") or 0)
                old = out / f"{name}-{epoch - (every or 1) * keep:06d}-state"
                if keep and not last and old.is_dir():
                    for child in old.iterdir():
                        child.unlink()
                    old.rmdir()
    print("\nmodel saved.", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config_file", required=True)
    parser.add_argument("--resume")
    args, _unknown = parser.parse_known_args()
    pidfile = os.environ.get("FAKE_TRAINER_PIDFILE")
    if pidfile:
        Path(pidfile).write_text(str(os.getpid()))
    flat = flatten(toml.load(args.config_file))
    print(f"Loading settings from {args.config_file}...", flush=True)
    mode = os.environ.get("FAKE_TRAINER_MODE", "ok")
    # FAKE_TRAINER_MODES='{"name": "exit:3"}': a mode per output_name (a queue's runs).
    per_name = json.loads(os.environ.get("FAKE_TRAINER_MODES", "{}"))
    mode = per_name.get(str(flat.get("output_name")), mode)
    if mode.startswith("fail:"):
        print("Traceback (most recent call last):", flush=True)
        print('  File "train_network.py", line 1, in <module>', flush=True)
        print(FAILURES[mode.split(":", 1)[1]], flush=True)
        return 1
    if mode == "crash":
        raise RuntimeError("something nobody has seen before")
    if mode.startswith("exit:"):
        return int(mode.split(":", 1)[1])
    if mode in ("hang", "stubborn"):
        if mode == "stubborn":
            # Ignores Ctrl-C, but says it got one: the test then knows the first Ctrl-C was
            # forwarded before it sends the second (two sent at once would merge into one).
            signal.signal(signal.SIGINT, lambda *_: print("ignoring SIGINT", flush=True))
        try:
            print("ready", flush=True)
            while True:
                time.sleep(0.05)
        except KeyboardInterrupt:
            print("interrupted: saving and stopping", flush=True)
            return 130
    return train(args, flat)


if __name__ == "__main__":
    sys.exit(main())
