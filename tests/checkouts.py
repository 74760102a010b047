"""Fake sd-scripts checkouts for the tests: a tiny parser of our own, and a .git naming a commit."""

from __future__ import annotations

import textwrap
from pathlib import Path

TRAIN_NETWORK = textwrap.dedent(
    """
    import argparse

    def int_or_float(value):
        return float(value) if "." in value else int(value)

    def setup_parser():
        p = argparse.ArgumentParser()
        p.add_argument("--learning_rate", type=float, default=2e-06)
        p.add_argument("--shuffle_caption", action="store_true")
        p.add_argument("--network_args", type=str, default=None, nargs="*")
        p.add_argument("--mixed_precision", type=str, default="no",
                       choices=["no", "fp16", "bf16"])
        p.add_argument("--lr_warmup_steps", type=int_or_float, default=0)
        return p
    """
)
SDXL = textwrap.dedent(
    """
    import train_network

    def setup_parser():
        p = train_network.setup_parser()
        p.add_argument("--cache_text_encoder_outputs", action="store_true")
        return p
    """
)
FAKE_SDXL_OPTIONS = [
    "cache_text_encoder_outputs",
    "learning_rate",
    "lr_warmup_steps",
    "mixed_precision",
    "network_args",
    "shuffle_caption",
]


def write_head(root: Path, commit: str, *, packed: bool = False, gitdir: bool = False) -> None:
    """A .git that names `commit` as a branch ref (loose or packed), or a submodule's
    `gitdir:` file pointing at such a folder."""
    git = root / ".git"
    if gitdir:
        modules = root.parent / "modules" / root.name
        (modules / "refs" / "heads").mkdir(parents=True)
        git.write_text(f"gitdir: {modules}\n")
        git = modules
    else:
        (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    if packed:
        (git / "packed-refs").write_text(f"# pack-refs with: peeled\n{commit} refs/heads/main\n")
    else:
        (git / "refs" / "heads" / "main").write_text(commit + "\n")


def fake_checkout(
    root: Path, commit: str | None = None, *, sdxl_body: str = "", real_parser: bool = True
) -> Path:
    """A folder with train_network.py and sdxl_train_network.py (our tiny parsers, or empty
    stand-ins with `real_parser=False`), at `commit` when given."""
    root.mkdir(parents=True)
    (root / "train_network.py").write_text(TRAIN_NETWORK if real_parser else "# stand-in\n")
    (root / "sdxl_train_network.py").write_text(
        (sdxl_body or SDXL) if real_parser else "# stand-in\n"
    )
    if commit is not None:
        write_head(root, commit)
    return root
