"""End to end against real sd-scripts: `kohya-orch train` for 2 epochs at 64x64, then a resume.

Opt-in (`make e2e`): skipped unless SD_SCRIPTS (an sd-scripts checkout) and MODEL (an SDXL
checkpoint; scripts/make_random_sdxl.py builds a random one) are set. TOKENIZERS: a folder
made by `kohya-orch tokenizers build`, for machines without network (HF_HUB_OFFLINE=1 is set).
SD_PYTHON: the Python of sd-scripts' environment (else kohya-orch's own search).
A run needs about 21 GB of memory and a minute or two on 2 CPU cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from kohya_orchestrator.config.settings_file import write_initial_settings
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.sdscripts.checkout import sd_scripts_commit
from kohya_orchestrator.sdscripts.safetensors_header import read_header

SD_SCRIPTS = os.environ.get("SD_SCRIPTS", "")
MODEL = os.environ.get("MODEL", "")
TOKENIZERS = os.environ.get("TOKENIZERS", "")
SD_PYTHON = os.environ.get("SD_PYTHON", "")
NAME = "e2e_lora"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (SD_SCRIPTS and MODEL), reason="set SD_SCRIPTS and MODEL to run the end-to-end test"
    ),
]

SETTINGS = [
    "epochs=2",
    "save_every_n_epochs=1",
    "resolution=64,64",
    "enable_bucket=false",
    "batch_size=1",
    "network_dim=4",
    "network_alpha=2",
    "learning_rate=1e-4",
    "unet_lr=1e-4",
    "text_encoder_lr=5e-5",
    "lr_scheduler=constant",
    "warmup_ratio=0",
    "optimizer=AdamW",
    "mixed_precision=no",
    "save_state=true",
    "cache_latents_to_disk=false",
    "max_data_loader_n_workers=0",
    "sample_every_n_epochs=0",
    "seed=7",
]


def make_project(root: Path) -> Path:
    dest = root / "proj"
    images = root / "images"
    images.mkdir(parents=True)
    # A 64x64 image with structure (a gradient), so the VAE sees more than one colour.
    image = Image.linear_gradient("L").resize((64, 64)).convert("RGB")
    image.save(images / f"{NAME}_1.png")
    (images / f"{NAME}_1.txt").write_text("e2etoken, glasses, black hair\n")
    concept = dest / "img" / f"1_{NAME}"
    concept.mkdir(parents=True)
    for item in images.iterdir():
        (concept / item.name).write_bytes(item.read_bytes())
    write_initial_settings(
        Layout(dest),
        name=NAME,
        trigger="e2etoken",
        images=images,
        model=Path(MODEL).resolve(),
        repeats=1,
        overrides=SETTINGS,
    )
    return dest


def train(dest: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "kohya_orchestrator", "train", str(dest)]
    cmd += ["--sd-scripts", SD_SCRIPTS]
    if SD_PYTHON:
        cmd += ["--python", SD_PYTHON]
    if TOKENIZERS:
        cmd += ["--set", f"sd_scripts.tokenizer_cache_dir={Path(TOKENIZERS).resolve()}"]
    cmd += list(args)
    env = dict(os.environ)
    if TOKENIZERS:
        env["HF_HUB_OFFLINE"] = "1"
    print(f"\n$ {' '.join(cmd)}", flush=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600, check=False)
    # Shown with -s (make e2e), so the lead sees what the trainer printed.
    print(proc.stdout[-6000:], proc.stderr[-4000:], sep="\n", flush=True)
    return proc


def metadata(path: Path) -> dict[str, str]:
    return read_header(path).metadata


def check_lora(path: Path, epoch: int, epochs: int) -> None:
    meta = metadata(path)
    assert meta["ss_output_name"] == NAME
    assert meta["ss_epoch"] == str(epoch)
    assert meta["ss_num_epochs"] == str(epochs)
    assert int(meta["ss_network_dim"]) == 4
    assert float(meta["ss_network_alpha"]) == 2.0
    assert float(meta["ss_learning_rate"]) == pytest.approx(1e-4)
    assert float(meta["ss_unet_lr"]) == pytest.approx(1e-4)
    assert float(meta["ss_text_encoder_lr"]) == pytest.approx(5e-5)
    assert meta["ss_base_model_version"].startswith("sdxl")
    assert meta["ss_network_module"] == "networks.lora"


def test_train_two_epochs_then_resume(tmp_path: Path) -> None:
    dest = make_project(tmp_path)
    model = dest / "model"

    first = train(dest)
    assert first.returncode == 0, first.stderr[-3000:]
    loras = sorted(p.name for p in model.glob("*.safetensors"))
    assert loras == [f"{NAME}-000001.safetensors", f"{NAME}.safetensors"]
    check_lora(model / f"{NAME}-000001.safetensors", 1, 2)
    check_lora(model / f"{NAME}.safetensors", 2, 2)
    states = sorted(p.name for p in model.glob("*-state") if p.is_dir())
    assert states == [f"{NAME}-000001-state", f"{NAME}-state"]
    assert (model / f"{NAME}-state" / "train_state.json").is_file()

    [record_path] = sorted((dest / "runs").glob("*.json"))
    record = json.loads(record_path.read_text())
    assert record["exit_code"] == 0
    assert record["loras"] == loras
    assert record["sd_scripts_commit"] == sd_scripts_commit(Path(SD_SCRIPTS))
    assert record["probe"]["torch"]
    assert record["probe"]["device"] in ("cpu", "cuda", "mps")
    assert record["config"]["text"] == (dest / "config.toml").read_text()
    assert [d["file"] for d in record["dataset"]] == [f"1_{NAME}/{NAME}_1.png"]
    assert record["settings"]["network_dim"] == 4
    log = Path(record["log"])
    assert log.is_file()
    assert "epoch 2/2" in log.read_text(errors="replace")

    # Continue from the newest state for one more epoch.
    second = train(dest, "--resume", "--set", "epochs=3")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "epoch 3/3" in second.stdout
    assert "epoch 1/3" not in second.stdout
    check_lora(model / f"{NAME}.safetensors", 3, 3)
    records = sorted((dest / "runs").glob("*.json"))
    assert len(records) == 2
    resumed = json.loads(records[-1].read_text())
    assert resumed["argv"][-2:] == ["--resume", str(model / f"{NAME}-state")]
    assert resumed["loras"] == [f"{NAME}.safetensors"]


def test_smoke_run(tmp_path: Path) -> None:
    dest = make_project(tmp_path)
    proc = train(dest, "--smoke")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "time per step: " in proc.stdout
    assert "peak memory: " in proc.stdout
    assert "LoRA written: smoke.safetensors" in proc.stdout
    assert (dest / "smoke" / "model" / "smoke.safetensors").is_file()
    assert not list((dest / "model").glob("*.safetensors"))
