"""`tag`: auto-tagging through sd-scripts' own WD14 tagger, merged by our caption rules.

sd-scripts' `finetune/tag_images_by_wd14_tagger.py --onnx` runs through the trainer's
Python (found as `train` finds it). The tagger overwrites `<stem><caption_extension>`
beside each image, so it never sees the user's folder: it runs on links to the images in a
scratch folder outside it, and its tags are then merged through `caption`'s plan and apply
(trigger first, deduplicated, the existing tags kept unless `replace`), written atomically
into the caption file and the image, under the folder's lock.

The default tagger is SmilingWolf/wd-vit-tagger-v3: a current WD v3 model (trained on a
newer Danbooru snapshot than the script's own default, wd-v1-4-convnext-tagger-v2), and
the fastest of the v3 family on a CPU or a Mac. `build_tagger_argv` is pure;
`tagger_problems` probes the Python and the model cache; `run_tagger` does the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kohya_orchestrator.errors import LaunchError, PreflightError

TAGGER_SCRIPT = "finetune/tag_images_by_wd14_tagger.py"
DEFAULT_REPO = "SmilingWolf/wd-vit-tagger-v3"
# The tagger's output in the scratch folder (never the user's caption extension).
SCRATCH_EXT = ".wd14.txt"
MODEL_FILES = ("model.onnx", "selected_tags.csv")
# sd-scripts main at 48d368fa (2026-02) assigns `character_tags` inside the loop that reads
# it, so every run stops with UnboundLocalError; 6721028c (kohya_ss v26) and the older
# commits work (checked with a tiny ONNX model).
KNOWN_BUG_HINT = (
    "This sd-scripts commit's tagger has a bug (UnboundLocalError on character_tags, seen "
    "at 48d368fa); kohya_ss v26's sd-scripts (6721028c) works: use that checkout with "
    "--sd-scripts DIR."
)


@dataclass(frozen=True)
class TaggerOptions:
    """The tagger's knobs, as `tag` takes them."""

    repo_id: str = DEFAULT_REPO
    model_dir: Path | None = None
    general_threshold: float = 0.35
    character_threshold: float = 0.85
    undesired_tags: str = ""
    remove_underscore: bool = True
    character_tags_first: bool = False
    batch_size: int = 1


def default_model_dir(environ: Mapping[str, str], home: Path) -> Path:
    """Where the tagger models are kept by default: inside the Hugging Face cache folder."""
    hf_home = environ.get("HF_HOME") or str(home / ".cache" / "huggingface")
    return Path(hf_home) / "wd14_tagger_model"


def model_location(options: TaggerOptions, model_dir: Path) -> Path:
    """The folder the script reads the model from: `<model_dir>/<repo_id, / as _>`."""
    return model_dir / options.repo_id.replace("/", "_")


def build_tagger_argv(
    python: str, sd_scripts: Path, scratch: Path, options: TaggerOptions, model_dir: Path
) -> list[str]:
    """The whole command line (pure): the script on the scratch folder, --onnx."""
    argv = [
        python,
        str(sd_scripts / TAGGER_SCRIPT),
        str(scratch),
        "--onnx",
        "--repo_id",
        options.repo_id,
        "--model_dir",
        str(model_dir),
        "--caption_extension",
        SCRATCH_EXT,
        "--thresh",
        str(options.general_threshold),
        "--general_threshold",
        str(options.general_threshold),
        "--character_threshold",
        str(options.character_threshold),
        "--batch_size",
        str(options.batch_size),
    ]
    if options.undesired_tags:
        argv += ["--undesired_tags", options.undesired_tags]
    if options.remove_underscore:
        argv.append("--remove_underscore")
    if options.character_tags_first:
        argv.append("--character_tags_first")
    return argv


def tagger_env(sd_scripts: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment: sd-scripts' `library` importable from a plain checkout."""
    env = dict(environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(sd_scripts), env.get("PYTHONPATH")) if p)
    return env


def tagger_problems(
    python: str,
    sd_scripts: Path,
    options: TaggerOptions,
    model_dir: Path,
    environ: Mapping[str, str],
) -> list[str]:
    """What stops the tagger before it starts, each with the command that fixes it."""
    problems = []
    if not (sd_scripts / TAGGER_SCRIPT).is_file():
        problems.append(
            f"{sd_scripts / TAGGER_SCRIPT} does not exist: this checkout has no WD14 tagger"
        )
    probe = subprocess.run(
        [python, "-c", "import onnx, onnxruntime"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        problems.append(
            f"the trainer's Python {python} cannot import onnx and onnxruntime, which the "
            f"tagger needs with --onnx: install them with `{python} -m pip install onnx "
            "onnxruntime`"
        )
    where = model_location(options, model_dir)
    missing = [name for name in MODEL_FILES if not (where / name).is_file()]
    if missing and environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        problems.append(
            f"no cached tagger model: {', '.join(str(where / m) for m in missing)} missing, and "
            f"HF_HUB_OFFLINE={environ['HF_HUB_OFFLINE']} forbids downloading it: run once "
            f"online, or `huggingface-cli download {options.repo_id} model.onnx "
            f"selected_tags.csv --local-dir {where}`"
        )
    return problems


def run_tagger(
    images: list[Path],
    python: str,
    sd_scripts: Path,
    options: TaggerOptions,
    model_dir: Path,
    environ: Mapping[str, str],
) -> dict[Path, str]:
    """Tag `images` (links to them in a scratch folder); {image: the tagger's tags}.

    The scratch folder is removed afterwards, whatever happens. LaunchError when the script
    fails (with the tail of its output)."""
    problems = tagger_problems(python, sd_scripts, options, model_dir, environ)
    if problems:
        raise PreflightError("Cannot run the WD14 tagger; nothing was changed:", problems)
    scratch = Path(tempfile.mkdtemp(prefix="kohya-orch-tag-"))
    try:
        names = {}
        for i, image in enumerate(images):
            link = scratch / f"{i:06d}{image.suffix.lower()}"
            os.symlink(os.path.abspath(image), link)
            names[image] = link
        argv = build_tagger_argv(python, sd_scripts, scratch, options, model_dir)
        done = subprocess.run(
            argv,
            cwd=sd_scripts,
            env=tagger_env(sd_scripts, environ),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            tail = "\n".join(output.splitlines()[-15:])
            hint = "Run it by hand to see everything: " + " ".join(argv)
            if "UnboundLocalError" in output and "character_tags" in output:
                hint = KNOWN_BUG_HINT
            raise LaunchError(
                f"The WD14 tagger stopped with exit code {done.returncode}; nothing was "
                f"changed. Its last lines:\n{tail}",
                hint,
            )
        out = {}
        for image, link in names.items():
            tags_file = link.with_suffix(SCRATCH_EXT)
            if tags_file.is_file():
                out[image] = tags_file.read_text(encoding="utf-8").strip()
        return out
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
