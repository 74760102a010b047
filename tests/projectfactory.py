"""Projects made for the tests: a checkpoint header, captioned images, the settings file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from kohya_orchestrator.config.settings_file import write_initial_settings
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.sdscripts.safetensors_header import write_header_only

SDXL_KEYS = [
    "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
    "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
]


def make_model(path: Path) -> Path:
    """A whole (tiny) SDXL checkpoint: SDXL key names and zero weights."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_header_only(path, {k: {"dtype": "F16", "shape": [2, 2]} for k in SDXL_KEYS}, {})
    with path.open("ab") as handle:
        handle.write(bytes(8 * len(SDXL_KEYS)))
    return path


def make_images(folder: Path, stem: str, count: int, caption: str | None = None) -> Path:
    """`count` PNGs `<stem>_<n>.png` with `.txt` captions (`caption`, default the stem)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, count + 1):
        Image.new("RGB", (64 + 32 * (i % 2), 64), (i * 40 % 255, 90, 30)).save(
            folder / f"{stem}_{i}.png"
        )
        (folder / f"{stem}_{i}.txt").write_text(f"{caption or stem}, glasses\n")
    return folder


def make_project(
    root: Path, name: str = "hakone", overrides: tuple[str, ...] = (), **values: Any
) -> Path:
    """A prepared-looking project: img/7_<name> with two captioned images, the settings."""
    model = make_model(root / "models" / "base.safetensors")
    dest = root / name
    concept = make_images(dest / "img" / f"7_{name}", name, 2)
    (dest / "model").mkdir()
    (dest / "log").mkdir()
    args: dict[str, Any] = {
        "name": name,
        "trigger": name,
        "images": str(concept),
        "model": str(model),
        **values,
    }
    write_initial_settings(Layout(dest), **args, overrides=overrides)
    return dest
