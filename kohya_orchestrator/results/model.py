"""What `results` works with: one LoRA file as its header describes it, the findings, the run.

Pure data and the small helpers that read ss_* metadata; scan.py reads the files, checks.py
judges them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kohya_orchestrator.sdscripts.epochs import epoch_of_stem

LORA_SUFFIX = ".safetensors"


@dataclass(frozen=True)
class RunSettings:
    """The few settings the results are checked against (a view of settings.Settings)."""

    name: str
    epochs: int | None = None
    save_every: int | None = None
    network_dim: int | None = None
    network_alpha: float | None = None
    learning_rate: float | None = None
    unet_lr: float | None = None
    text_encoder_lr: float | None = None
    model: str | None = None
    trigger: str | None = None
    clip_skip: int | None = None


@dataclass(frozen=True)
class LoraFile:
    """One LoRA file in DEST/model/ with what its header says."""

    path: Path
    name: str
    epoch: int | None  # from the file name; None for the final unnumbered file
    size: int
    mtime: float
    metadata: dict[str, str]

    @property
    def stem(self) -> str:
        return self.path.name[: -len(LORA_SUFFIX)]

    @property
    def is_final(self) -> bool:
        return self.epoch is None

    @property
    def meta_epoch(self) -> int | None:
        return parse_int(self.metadata.get("ss_epoch"))

    @property
    def shown_epoch(self) -> int | None:
        """The epoch to show: the name's number, or for the final file its ss_epoch."""
        return self.epoch if self.epoch is not None else self.meta_epoch

    @property
    def steps(self) -> int | None:
        return parse_int(self.metadata.get("ss_steps"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path.name,
            "epoch": self.shown_epoch,
            "final": self.is_final,
            "steps": self.steps,
            "size": self.size,
            "mtime": self.mtime,
            "has_metadata": has_training_metadata(self.metadata),
        }


@dataclass(frozen=True)
class Finding:
    """One thing worth the user's attention: level is "warning" or "note"."""

    level: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"level": self.level, "message": self.message}


@dataclass
class Results:
    """The run's files in epoch order, files of other names, and the findings."""

    dest: Path
    name: str | None
    files: list[LoraFile]
    others: list[Path] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    settings: RunSettings | None = None
    # Loss per epoch from the TensorBoard logs in DEST/log (empty without logs).
    loss: dict[int, float] = field(default_factory=dict)

    @property
    def stems(self) -> list[str]:
        return [f.stem for f in self.files]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dest": str(self.dest),
            "name": self.name,
            "files": [
                {**f.to_dict(), "loss": self.loss.get(f.shown_epoch or 0)} for f in self.files
            ],
            "other_files": [p.name for p in self.others],
            "findings": [f.to_dict() for f in self.findings],
            "settings_compared": self.settings is not None,
        }


def has_training_metadata(metadata: dict[str, str]) -> bool:
    return any(key.startswith("ss_") for key in metadata)


def split_stem(stem: str, name: str | None = None) -> tuple[str, int | None]:
    """`name-000003` -> ("name", 3); `name` -> ("name", None).

    With the run's `name` known, a stem is read against it, so `hakone-202611` is the final
    file of the run named `hakone-202611`, not epoch 202611 of `hakone`. Without it (or for a
    stem of another name) six trailing digits are taken for the epoch.
    """
    if name is not None:
        if stem == name:
            return name, None
        epoch = epoch_of_stem(name, stem)
        if epoch is not None:
            return name, epoch
    head, _, _ = stem.rpartition("-")
    epoch = epoch_of_stem(head, stem) if head else None
    return (head, epoch) if epoch is not None else (stem, None)


def belongs_to(name: str, stem: str) -> bool:
    """Whether `stem` is one of the run `name`'s epoch files (numbered or final)."""
    return stem == name or epoch_of_stem(name, stem) is not None


def parse_int(text: str | None) -> int | None:
    """An ss_* integer ("42"), or None when absent or not a number ("None")."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None
