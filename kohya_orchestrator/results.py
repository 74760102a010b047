"""A finished (or running) training run's LoRA files: table, metadata checks, run settings.

`scan_results(dest)` reads only the safetensors headers of the files in DEST/model/, orders
them as sd-scripts wrote them (numbered epochs, then the final unnumbered file) and returns
`Findings` for anything that does not match the project's settings or looks wrong.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kohya_orchestrator.epochs import epoch_of_stem, planned_lora_stems, saved_epochs
from kohya_orchestrator.errors import ModelError, OrchError, ResultsError
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.safetensors_header import read_header

LORA_SUFFIX = ".safetensors"
# sd-scripts' step checkpoints: `<name>-step00000100.safetensors` (train_util.STEP_FILE_NAME).
_STEP_STEM = re.compile(r"(?P<name>.+)-step(?P<step>\d{8})")
_EPOCH_STEM = re.compile(r"(?P<name>.+)-(?P<epoch>\d{6})")


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
        return _int(self.metadata.get("ss_epoch"))

    @property
    def shown_epoch(self) -> int | None:
        """The epoch to show: the name's number, or for the final file its ss_epoch."""
        return self.epoch if self.epoch is not None else self.meta_epoch

    @property
    def steps(self) -> int | None:
        return _int(self.metadata.get("ss_steps"))

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


def split_stem(stem: str) -> tuple[str, int | None]:
    """`name-000003` -> ("name", 3); `name` -> ("name", None)."""
    match = _EPOCH_STEM.fullmatch(stem)
    if match:
        return match.group("name"), int(match.group("epoch"))
    return stem, None


def load_run_settings(dest: Path) -> RunSettings | None:
    """The project's settings as a RunSettings, or None when DEST has no settings file."""
    if not Layout(dest).settings_file.is_file():
        return None
    from kohya_orchestrator.settings import load_settings

    s = load_settings(dest)
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


def read_lora_files(model_dir: Path) -> tuple[list[LoraFile], list[Finding]]:
    """Every *.safetensors directly in `model_dir`, header read; unreadable ones become findings."""
    files: list[LoraFile] = []
    findings: list[Finding] = []
    if not model_dir.is_dir():
        return files, findings
    for path in sorted(model_dir.iterdir()):
        if not path.name.endswith(LORA_SUFFIX) or path.name.startswith(".") or not path.is_file():
            continue
        stem = path.name[: -len(LORA_SUFFIX)]
        name, epoch = split_stem(stem)
        try:
            header = read_header(path)
        except ModelError as exc:
            findings.append(Finding("warning", f"{path.name}: unreadable ({exc.message})"))
            continue
        st = path.stat()
        files.append(LoraFile(path, name, epoch, st.st_size, st.st_mtime, header.metadata))
    return files, findings


def choose_name(files: list[LoraFile], settings: RunSettings | None) -> str | None:
    """The run's output name: the settings' name, else the name most files carry."""
    if settings is not None:
        return settings.name
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
    files, read_problems = read_lora_files(layout.model_dir)
    findings.extend(read_problems)
    name = choose_name(files, settings)
    mine = [f for f in files if f.name == name]
    others = [f.path for f in files if f.name != name]
    mine.sort(key=lambda f: (f.is_final, f.epoch or 0))
    results = Results(dest, name, mine, others, findings, settings)
    if not files and not read_problems:
        findings.append(Finding("note", f"no LoRA files in {layout.model_dir} yet"))
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


def check_files(
    files: list[LoraFile], name: str | None, settings: RunSettings | None
) -> list[Finding]:
    """Everything that looks wrong in one run's files (pure: works on what was read)."""
    out: list[Finding] = []
    if not files or name is None:
        return out
    for f in files:
        if not has_training_metadata(f.metadata):
            out.append(
                Finding(
                    "warning",
                    f"{f.path.name}: no training metadata (ss_*): "
                    "not written by sd-scripts, or the metadata was stripped",
                )
            )
            continue
        meta_name = f.metadata.get("ss_output_name")
        if meta_name not in (None, "None", f.name):
            out.append(
                Finding(
                    "warning",
                    f"{f.path.name}: its metadata says output name "
                    f"{meta_name!r}: the file was renamed or copied from another run",
                )
            )
        if f.epoch is not None and f.meta_epoch is not None and f.meta_epoch != f.epoch:
            out.append(
                Finding(
                    "warning",
                    f"{f.path.name}: its metadata says epoch "
                    f"{f.meta_epoch}, its name says {f.epoch}",
                )
            )
    out.extend(_check_sessions(files))
    out.extend(_check_steps(files))
    out.extend(_check_epochs(files, name, settings))
    if settings is not None:
        out.extend(compare_settings(files, settings))
    return out


def _check_sessions(files: list[LoraFile]) -> list[Finding]:
    sessions = {f.metadata["ss_session_id"] for f in files if "ss_session_id" in f.metadata}
    if len(sessions) <= 1:
        return []
    return [
        Finding(
            "note",
            f"the files come from {len(sessions)} training sessions "
            "(ss_session_id): a resumed run, or files of an earlier run left in model/",
        )
    ]


def _steps_per_epoch(meta: dict[str, str]) -> int | None:
    batches = _int(meta.get("ss_num_batches_per_epoch"))
    accum = _int(meta.get("ss_gradient_accumulation_steps")) or 1
    return math.ceil(batches / accum) if batches else None


def _check_steps(files: list[LoraFile]) -> list[Finding]:
    """ss_steps against epoch x steps per epoch; a resumed run's files are summed up once."""
    out: list[Finding] = []
    low: list[tuple[LoraFile, int, int]] = []
    for f in files:
        per_epoch = _steps_per_epoch(f.metadata)
        epoch = f.shown_epoch
        if per_epoch is None or epoch is None or f.steps is None:
            continue
        expected = epoch * per_epoch
        if f.steps < expected:
            low.append((f, expected, per_epoch))
        elif f.steps > expected:
            out.append(
                Finding(
                    "warning",
                    f"{f.path.name}: {f.steps} steps recorded at epoch {epoch}, expected "
                    f"{expected} ({per_epoch} per epoch)",
                )
            )
    if low:
        first, expected, per_epoch = low[0]
        more = f" and {len(low) - 1} later file(s)" if len(low) > 1 else ""
        out.insert(
            0,
            Finding(
                "note",
                f"{first.path.name}{more}: fewer steps recorded than epochs x {per_epoch} "
                f"(epoch {first.shown_epoch}: {first.steps}, expected {expected}): a resumed "
                "run, sd-scripts restarts its step counter on --resume; the weights are fine, "
                "only ss_steps undercounts",
            ),
        )
    return out


def _check_epochs(files: list[LoraFile], name: str, settings: RunSettings | None) -> list[Finding]:
    out: list[Finding] = []
    numbered = [f.epoch for f in files if f.epoch is not None]
    final = next((f for f in files if f.is_final), None)
    # What the run was told (ss_num_epochs) wins: a settings mismatch is reported separately.
    recorded = [e for e in (_int(f.metadata.get("ss_num_epochs")) for f in files) if e]
    epochs = max(recorded, default=None) or (settings.epochs if settings else None)
    if epochs is None:
        return out
    save_every = settings.save_every if settings else None
    if save_every is None and numbered:
        save_every = min(numbered)
    expected = planned_lora_stems(name, epochs, save_every)
    present = {f.stem for f in files}
    missing = [s for s in expected if s not in present]
    missing_numbered = [s for s in missing if s != name]
    if missing_numbered and final is not None:
        out.append(
            Finding(
                "warning",
                f"missing epoch files: {', '.join(missing_numbered)} "
                "(deleted, or save_last_n_epochs removed them)",
            )
        )
    elif missing_numbered:
        last = max(numbered, default=0)
        gaps = [s for s in missing_numbered if (epoch_of_stem(name, s) or 0) < last]
        if gaps:
            out.append(Finding("warning", f"missing epoch files: {', '.join(gaps)}"))
    if final is None:
        done = max(numbered, default=0)
        out.append(
            Finding(
                "note",
                f"no final {name}{LORA_SUFFIX} yet: training is running or "
                f"stopped after epoch {done} of {epochs}",
            )
        )
    extra = [
        f.path.name
        for f in files
        if f.epoch is not None and f.epoch not in saved_epochs(epochs, save_every)[:-1]
    ]
    if extra:
        out.append(Finding("note", f"files the settings would not produce: {', '.join(extra)}"))
    return out


def compare_settings(files: list[LoraFile], settings: RunSettings) -> list[Finding]:
    """One warning per setting that a file's metadata contradicts."""
    checks: list[tuple[str, object, str, Any]] = [
        ("network_dim", settings.network_dim, "ss_network_dim", _num_equal),
        ("network_alpha", settings.network_alpha, "ss_network_alpha", _num_equal),
        ("epochs", settings.epochs, "ss_num_epochs", _num_equal),
        ("learning_rate", settings.learning_rate, "ss_learning_rate", _num_equal),
        ("unet_lr", _or(settings.unet_lr, settings.learning_rate), "ss_unet_lr", _num_equal),
        (
            "text_encoder_lr",
            _or(settings.text_encoder_lr, settings.learning_rate),
            "ss_text_encoder_lr",
            _num_equal,
        ),
        ("model", settings.model, "ss_sd_model_name", _model_equal),
    ]
    out: list[Finding] = []
    with_meta = [f for f in files if has_training_metadata(f.metadata)]
    for key, wanted, meta_key, equal in checks:
        if wanted is None:
            continue
        bad: dict[str, list[str]] = {}
        for f in with_meta:
            got = f.metadata.get(meta_key)
            if key in ("unet_lr", "text_encoder_lr") and got in (None, "None", "[]"):
                got = f.metadata.get("ss_learning_rate")  # unset means the base rate
            if got is None or got == "None" or equal(wanted, got):
                continue
            bad.setdefault(got, []).append(f.path.name)
        for got, names in bad.items():
            where = "all files" if len(names) == len(with_meta) else ", ".join(names)
            out.append(
                Finding(
                    "warning",
                    f"{key}: the settings say {_show(wanted)}, the files say {got} ({where})",
                )
            )
    return out


def _or(a: float | None, b: float | None) -> float | None:
    return a if a is not None else b


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _floats(text: str) -> list[float] | None:
    """ss_* numbers: "16", "8.0", "2.5e-05", or a list "[2.5e-05, 1e-05]" (text encoder LRs)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
        return None
    return [float(v) for v in items]


def _num_equal(wanted: object, got: str) -> bool:
    values = _floats(got)
    if values is None or not isinstance(wanted, int | float):
        return False
    return all(math.isclose(v, float(wanted), rel_tol=1e-6) for v in values)


def _model_equal(wanted: object, got: str) -> bool:
    # sd-scripts stores the base model's file name when the path existed, else the text given.
    return Path(str(wanted)).name == Path(got).name


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None
