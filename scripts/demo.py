"""`make demo`: the whole job on an embedded default dataset, one workflow step at a time.

Each step prints the command it runs, so the demo doubles as a walk-through. Everything is
written under demo/ (git-ignored); running it again starts from a fresh copy.

Without a GPU, a model or sd-scripts the demo stops at `train --dry-run`, using clearly
labelled stand-ins: a checkpoint with SDXL key names and zero weights (not a model), and an
sd-scripts folder whose training script only says it is a stand-in (never run here). It also
brings a kohya_ss GUI preset over (`import`, a preset of its own in the GUI's field names)
and shows the settings glossary. It needs neither torch nor a GPU.
With `make demo SD_SCRIPTS=/path/to/sd-scripts MODEL=/path/to/model.safetensors` it uses the
real model and also runs a real smoke training (`train --smoke`) and compares its result.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"
IMAGES = DEMO / "yumoto_hakone"
DEST = DEMO / "train"
STANDIN = DEMO / "STAND-IN-sdxl-zero-weights-not-a-model.safetensors"
STANDIN_SD_SCRIPTS = DEMO / "STAND-IN-sd-scripts"
GUI_PRESET = DEMO / "my_gui_preset.json"
# A preset of our own in the field names the kohya_ss GUI's LoRA tab saves (lora_gui.py).
PRESET = {
    "LoRA_type": "Standard",
    "epoch": 10,
    "max_train_epochs": "",
    "learning_rate": 0.0001,
    "unet_lr": 0.0001,
    "text_encoder_lr": 5e-05,
    "lr_scheduler": "cosine",
    "lr_warmup": 5,
    "max_resolution": "768,768",
    "network_dim": 32,
    "network_alpha": 16,
    "train_batch_size": 2,
    "mixed_precision": "fp16",
    "xformers": "xformers",
    "optimizer": "AdamW",
    "keep_tokens": "0",
    "clip_skip": "2",
    "min_snr_gamma": 5,
    "num_cpu_threads_per_process": 2,
    "sdxl": True,
}
TRIGGER = "yumoto_hakone"
TAGS = "glasses, black-framed eyewear, black hair, short hair, suit, necktie"


def run(*args: str, check: bool = True) -> int:
    """Run `kohya-orch ARGS` (via this interpreter), echoing the command first."""
    shown = [str(Path(a).relative_to(ROOT)) if a.startswith(str(ROOT)) else a for a in args]
    print(f"\n$ kohya-orch {shlex.join(shown)}", flush=True)
    cmd = [sys.executable, "-m", "kohya_orchestrator", *args]
    code = subprocess.run(cmd, check=False, cwd=ROOT).returncode
    if check and code != 0:
        sys.exit(f"demo: step failed with exit code {code}")
    return code


def banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def step_images() -> None:
    """Step 0: a fresh folder of sample images (generated; several formats and shapes)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_sample_images import make_sample_images

    if DEMO.exists():
        shutil.rmtree(DEMO)
    made = make_sample_images(IMAGES)
    banner(f"step 0: {len(made)} sample images in {IMAGES.relative_to(ROOT)}")
    for p in sorted(IMAGES.iterdir()):
        print("  ", p.name)


def step_rename() -> None:
    banner("step 0a: rename (plan, apply, and a second run that changes nothing)")
    run("rename", TRIGGER, str(IMAGES), "--dry-run")
    run("rename", TRIGGER, str(IMAGES), "--yes", "--verbose")
    run("rename", TRIGGER, str(IMAGES))


def step_caption() -> None:
    banner("step 0b: trigger-first captions, in .txt files and inside the images")
    run("caption", TRIGGER, str(IMAGES), "--tags", TAGS)
    run("caption", TRIGGER, str(IMAGES))
    run("captions", str(IMAGES), "--trigger", TRIGGER)


def model_path() -> Path:
    """The user's MODEL, else a stand-in header (SDXL key names, no weights), labelled."""
    real = os.environ.get("MODEL")
    if real:
        return Path(real).resolve()
    from kohya_orchestrator.sdscripts.safetensors_header import write_header_only

    keys = (
        "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
        "model.diffusion_model.input_blocks.0.0.weight",
    )
    write_header_only(
        STANDIN,
        {k: {"dtype": "F16", "shape": [2, 2]} for k in keys},
        {"kohya_orch_note": "demo stand-in: SDXL key names and zero weights, not a model"},
    )
    with STANDIN.open("ab") as handle:  # the zero weights: a whole file, not a truncated one
        handle.write(bytes(8 * len(keys)))
    print(
        f"\ndemo: no MODEL given; using a STAND-IN checkpoint (SDXL key names, zero weights; "
        f"not a model): {STANDIN.name}"
    )
    return STANDIN


def standin_sd_scripts() -> Path:
    """A folder with a training script that only says it is a stand-in (never run here)."""
    STANDIN_SD_SCRIPTS.mkdir(parents=True, exist_ok=True)
    (STANDIN_SD_SCRIPTS / "sdxl_train_network.py").write_text(
        '"""STAND-IN for sd-scripts\' sdxl_train_network.py (make demo): not a trainer."""\n'
        'raise SystemExit("this is the demo\'s stand-in, not sd-scripts")\n',
        encoding="utf-8",
    )
    print(
        "\ndemo: no SD_SCRIPTS given; using a STAND-IN sd-scripts folder (a script that only "
        f"says so) for the dry run: {STANDIN_SD_SCRIPTS.relative_to(ROOT)}"
    )
    return STANDIN_SD_SCRIPTS


def step_gui() -> None:
    banner("from the kohya_ss GUI: a preset brought over, and the settings glossary")
    import json

    GUI_PRESET.write_text(json.dumps(PRESET, indent=2) + "\n", encoding="utf-8")
    run("import", str(GUI_PRESET), "-o", str(DEMO / "from_gui.toml"))
    run("settings", "instance_prompt")
    run("settings", "sdpa")


def step_prepare(model: Path) -> None:
    banner("steps 1-3: the kohya layout, settings and a model check")
    args = ["prepare", TRIGGER, "--images", str(IMAGES), "--dest", str(DEST)]
    # The settings brought over from the GUI preset (the command line's values win).
    run(*args, "--model", str(model), "--repeats", "7", "--from", str(DEMO / "from_gui.toml"))
    run(*args, "--model", str(model), "--repeats", "7")  # again: nothing to change


def step_config() -> None:
    banner("step 4: render, validate and count the training run")
    run("templates", "ls")
    run("config", str(DEST))
    run("validate", str(DEST / "config.toml"))
    run("plan", str(DEST))


def step_train() -> None:
    banner("steps 5-6: the exact training command")
    extra = []
    if os.environ.get("SD_SCRIPTS"):
        extra += ["--sd-scripts", os.environ["SD_SCRIPTS"]]
    else:
        extra += ["--sd-scripts", str(standin_sd_scripts())]
    if os.environ.get("SD_PYTHON"):
        extra += ["--python", os.environ["SD_PYTHON"]]
    if os.environ.get("TOKENIZERS"):
        # Offline machines: CLIP tokenizer folders made by `kohya-orch tokenizers build`.
        extra += ["--set", f"sd_scripts.tokenizer_cache_dir={os.environ['TOKENIZERS']}"]
        os.environ["HF_HUB_OFFLINE"] = "1"
    if not (os.environ.get("SD_SCRIPTS") and os.environ.get("MODEL")):
        print(
            "\ndemo: the dry run checks everything it can without starting the trainer and "
            "prints the exact command; nothing is trained with the stand-ins."
        )
    run("train", str(DEST), "--dry-run", *extra)
    if os.environ.get("SD_SCRIPTS") and os.environ.get("MODEL"):
        banner("a real smoke run of sd-scripts (two steps at 64x64)")
        run("train", str(DEST), "--smoke", *extra)


def step_compare() -> None:
    banner("step 7: compare the epochs in Forge")
    run("xyz", TRIGGER, "--epochs", "15", "--save-every", "5")
    run("xyz", str(DEST))
    smoke_model = DEST / "smoke" / "model"
    if any(smoke_model.glob("*.safetensors")):
        run("results", str(DEST / "smoke"), check=False)
        for lora in sorted(smoke_model.glob("*.safetensors")):
            run("inspect", str(lora))


def main() -> None:
    step_images()
    step_rename()
    step_caption()
    step_gui()
    model = model_path()
    step_prepare(model)
    step_config()
    step_train()
    step_compare()
    print(f"\ndemo: done. Everything is under {DEMO.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
