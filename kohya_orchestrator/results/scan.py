"""A finished (or running) training run's LoRA files: table, metadata checks, run settings.

`scan_results(dest)` reads only the safetensors headers of the files in DEST/model/, orders
them as sd-scripts wrote them (numbered epochs, then the final unnumbered file) and returns
`Findings` for anything that does not match the project's settings or looks wrong.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

from kohya_orchestrator.errors import ModelError, OrchError, ResultsError
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.results.checks import check_files
from kohya_orchestrator.results.model import (
    LORA_SUFFIX,
    Finding,
    LoraFile,
    Results,
    RunSettings,
    belongs_to,
    split_stem,
)
from kohya_orchestrator.sdscripts.safetensors_header import read_header

# sd-scripts' step checkpoints: `<name>-step00000100.safetensors` (train_util.STEP_FILE_NAME).
_STEP_STEM = re.compile(r"(?P<name>.+)-step(?P<step>\d{8})")


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


def load_run_settings(layout: Layout) -> RunSettings | None:
    """The project's settings as a RunSettings, or None when DEST has no settings file."""
    if not layout.settings_file.is_file():
        return None
    from kohya_orchestrator.config.settings import load_settings
    from kohya_orchestrator.results.runs import run_settings_of

    return run_settings_of(load_settings(layout).values())


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
            settings = load_run_settings(layout)
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
    findings.extend(_checks(layout, mine, name, settings))
    results.loss = _loss(layout, findings)
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


def _checks(
    layout: Layout, files: list[LoraFile], name: str | None, settings: RunSettings | None
) -> list[Finding]:
    """The checks of the files; each file's settings compared with those of the run that
    wrote it (its run record), and a note where that run's differ from today's."""
    from kohya_orchestrator.results.checks import compare_settings
    from kohya_orchestrator.results.runs import differs_note, recorded_runs, writer_of

    writers = writer_of(recorded_runs(layout))
    mine = [writers.get(f.path.name) for f in files]
    newest = next((run for run in reversed(mine) if run is not None), None)
    run_settings = newest.settings if newest is not None else settings
    out = check_files(files, name, run_settings, compare=False)
    groups: dict[str | None, list[LoraFile]] = {}
    for f, run in zip(files, mine, strict=True):
        groups.setdefault(run.stamp if run else None, []).append(f)
    by_stamp = {run.stamp: run for run in mine if run is not None}
    for stamp, group in groups.items():
        run = by_stamp.get(stamp) if stamp else None
        wanted = run.settings if run is not None else settings
        if wanted is not None:
            out.extend(compare_settings(group, wanted))
        if run is not None and settings is not None:
            note = differs_note([f.path.name for f in group], run, settings)
            if note:
                out.append(Finding("note", note))
    return out


def _loss(layout: Layout, findings: list[Finding]) -> dict[int, float]:
    """The loss per epoch from DEST/log (a note when the logs cannot be read)."""
    from kohya_orchestrator.results.loss import LossUnavailable, read_loss

    try:
        return read_loss(layout.log_dir).per_epoch
    except LossUnavailable as exc:
        findings.append(Finding("note", f"no loss column: {layout.log_dir} has logs; {exc}"))
        return {}
