"""A finished (or running) training run's LoRA files: table, metadata checks, run settings.

`scan_results(dest)` reads only the safetensors headers of the files in DEST/model/, orders
them as sd-scripts wrote them (numbered epochs, then the final unnumbered file) and returns
`Findings` for anything that does not match the project's settings or looks wrong.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kohya_orchestrator.errors import ModelError, OrchError, ResultsError
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.sdscripts.epochs import epoch_of_stem
from kohya_orchestrator.sdscripts.safetensors_header import read_header

LORA_SUFFIX = ".safetensors"
# sd-scripts' step checkpoints: `<name>-step00000100.safetensors` (train_util.STEP_FILE_NAME).
_STEP_STEM = re.compile(r"(?P<name>.+)-step(?P<step>\d{8})")


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

    @property
    def stems(self) -> list[str]:
        return [f.stem for f in self.files]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dest": str(self.dest),
            "name": self.name,
            "files": [f.to_dict() for f in self.files],
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


def metadata_name(stems: list[str], metadatas: list[dict[str, str]]) -> str | None:
    """The ss_output_name most files carry, when some file of that name is present.

    A name no file stem matches (the files were renamed) gives no guidance, so the next one
    is tried, and None when none fits.
    """
    counts = Counter(m["ss_output_name"] for m in metadatas if m.get("ss_output_name"))
    for candidate in sorted(counts, key=lambda n: (-counts[n], n)):
        if any(belongs_to(candidate, stem) for stem in stems):
            return candidate
    return None


def load_run_settings(dest: Path) -> RunSettings | None:
    """The project's settings as a RunSettings, or None when DEST has no settings file."""
    if not Layout(dest).settings_file.is_file():
        return None
    from kohya_orchestrator.config.settings import load_settings

    s = load_settings(Layout(dest))
    return RunSettings(
        name=s.name,
        epochs=s.epochs,
        save_every=s.save_every_n_epochs,
        network_dim=s.network_dim,
        network_alpha=s.network_alpha,
        learning_rate=s.learning_rate,
        unet_lr=s.unet_lr,
        text_encoder_lr=s.text_encoder_lr,
        model=str(s.model) if s.model else None,
        trigger=s.trigger,
        clip_skip=s.clip_skip,
    )


def read_lora_files(
    model_dir: Path, name: str | None = None
) -> tuple[list[LoraFile], list[Finding], str | None]:
    """Every *.safetensors directly in `model_dir`, header read; unreadable ones become findings.

    Stems are split against `name` when given, else against the ss_output_name most files
    carry; the name so used (or None) is returned third.
    """
    read: list[tuple[Path, os.stat_result, dict[str, str]]] = []
    findings: list[Finding] = []
    if not model_dir.is_dir():
        return [], findings, name
    for path in sorted(model_dir.iterdir()):
        if not path.name.endswith(LORA_SUFFIX) or path.name.startswith(".") or not path.is_file():
            continue
        try:
            header = read_header(path)
        except ModelError as exc:
            findings.append(Finding("warning", f"{path.name}: unreadable ({exc.message})"))
            continue
        read.append((path, path.stat(), header.metadata))
    stems = [path.name[: -len(LORA_SUFFIX)] for path, _, _ in read]
    if name is None:
        name = metadata_name(stems, [meta for _, _, meta in read])
    files = []
    for stem, (path, st, meta) in zip(stems, read, strict=True):
        file_name, epoch = split_stem(stem, name)
        files.append(LoraFile(path, file_name, epoch, st.st_size, st.st_mtime, meta))
    return files, findings, name


def choose_name(
    files: list[LoraFile], settings: RunSettings | None, known: str | None = None
) -> str | None:
    """The run's output name: the settings', else the files' ss_output_name, else the commonest."""
    if settings is not None:
        return settings.name
    if known is not None:
        return known
    if not files:
        return None
    counts = Counter(f.name for f in files)
    finals = {f.name for f in files if f.is_final}
    # The name with most files wins; a finished run (one with a final file) breaks ties.
    return max(sorted(counts), key=lambda n: (counts[n], n in finals))


def scan_results(dest: Path, settings: RunSettings | None = None) -> Results:
    """Read DEST/model/ and check it; `settings` defaults to the project's settings file."""
    layout = Layout(dest)
    if not dest.is_dir():
        raise ResultsError(f"Project folder not found: {dest}", "Give the DEST folder of a run.")
    findings: list[Finding] = []
    if settings is None:
        try:
            settings = load_run_settings(dest)
        except OrchError as exc:
            findings.append(
                Finding(
                    "note",
                    f"settings not compared: {layout.settings_file} is unreadable ({exc.message})",
                )
            )
        else:
            if settings is None:
                findings.append(
                    Finding(
                        "note", f"settings not compared: no {layout.settings_file.name} in {dest}"
                    )
                )
    files, read_problems, known = read_lora_files(
        layout.model_dir, settings.name if settings is not None else None
    )
    findings.extend(read_problems)
    name = choose_name(files, settings, known)
    mine = [f for f in files if f.name == name]
    others = [f.path for f in files if f.name != name]
    mine.sort(key=lambda f: (f.is_final, f.epoch or 0))
    results = Results(dest, name, mine, others, findings, settings)
    if not files and not read_problems:
        findings.append(Finding("note", f"no LoRA files in {layout.model_dir} yet"))
    from kohya_orchestrator.results.checks import check_files

    findings.extend(check_files(mine, name, settings))
    if settings is not None and not mine and others:
        names = sorted({f.name for f in files if f.name != name})
        findings.append(
            Finding(
                "warning",
                f"the settings' name is {name!r} but {layout.model_dir} holds files named "
                f"{', '.join(names)}: was the name changed after training?",
            )
        )
    for path in others:
        step = _STEP_STEM.fullmatch(path.name[: -len(LORA_SUFFIX)])
        what = (
            "a step checkpoint (save_every_n_steps)"
            if step and step.group("name") == name
            else "another output name"
        )
        findings.append(Finding("note", f"{path.name}: {what}, not part of the {name} epochs"))
    return results


def parse_int(text: str | None) -> int | None:
    """An ss_* integer ("42"), or None when absent or not a number ("None")."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None
