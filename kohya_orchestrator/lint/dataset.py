"""Lint a dataset config (`[general]`, `[[datasets]]`, `[[datasets.subsets]]`) as sd-scripts
checks it (library/config_util.py, the facts in sdscripts/dataset_schema.py).

Unlike the training TOML, where sd-scripts ignores unknown keys, a dataset config goes
through voluptuous: an unknown key or a wrong type stops sd-scripts before training, so each
is an error here. A training config that names `dataset_config` gets both checked.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kohya_orchestrator.fsutil import read_regular_text
from kohya_orchestrator.lint.files import is_windows_path, resolve
from kohya_orchestrator.lint.report import LintReport, RuleInput, shown
from kohya_orchestrator.sdscripts import dataset_schema as schema

_WORDS = {
    "int": "an integer",
    "float": "a float (write 1.0, not 1)",
    "number": "a number",
    "bool": "true or false",
    "str": "a string",
    "table": "a table",
    "pair of floats": "a pair of floats, e.g. [0.4, 1.0]",
    "int or pair of ints": "an integer or a pair of integers, e.g. 1024 or [1024, 768]",
}


# Keys that make a document a training config, whatever else it holds (a training TOML with
# stray [[datasets]] tables is judged as a training TOML, which names the mistake).
_TRAINING_KEYS = frozenset(
    {
        "pretrained_model_name_or_path",
        "output_dir",
        "network_module",
        "learning_rate",
        "train_data_dir",
        "max_train_epochs",
        "max_train_steps",
        "optimizer_type",
    }
)


def is_dataset_config(doc: Mapping[str, Any]) -> bool:
    """A document with `[[datasets]]` tables, or only a `[general]` table, and no training
    key outside them."""
    others = {k: v for k, v in doc.items() if k not in ("general", "datasets")}
    names = set(others) | {k for v in others.values() if isinstance(v, dict) for k in v}
    if names & _TRAINING_KEYS:
        return False
    datasets = doc.get("datasets")
    if isinstance(datasets, list) and all(isinstance(d, dict) for d in datasets):
        return True
    return set(doc) == {"general"} and isinstance(doc["general"], dict)


def subset_style(subsets: list[Any], masked_loss: bool) -> str | None:
    """ "dreambooth", "fine-tuning" or "mask" for a dataset's subsets (None: mixed)."""
    tables = [s for s in subsets if isinstance(s, dict)]
    if masked_loss and tables and all("conditioning_data_dir" in s for s in tables):
        return "mask"
    if all("metadata_file" in s for s in tables) and tables:
        return "fine-tuning"
    if all("metadata_file" not in s for s in tables):
        return "dreambooth"
    return None


def lint_dataset_config(
    doc: Mapping[str, Any],
    report: LintReport,
    *,
    masked_loss: bool = False,
    training: Mapping[str, Any] | None = None,
    check_files: bool = True,
    where: str = "",
    alone: bool = False,
) -> None:
    """Every problem sd-scripts' ConfigSanitizer (and the datasets it builds) would stop on.

    `training` is the flattened training config, whose keys sd-scripts takes as defaults
    (resolution, train_batch_size); `where` prefixes each message (the file's name, when it
    is checked for a training config). `alone`: judged without its training config, whose
    resolution and masked_loss are then unknown (what depends on them is a warning).
    """
    training = training or {}
    for key in doc:
        if key not in ("general", "datasets"):
            _unknown(report, where, "the top level", key, ["general", "datasets"])
    general = doc.get("general", {})
    if not isinstance(general, dict):
        report.error("general", f"{where}'general' must be a table: [general]", "write [general]")
        general = {}
    _keys(report, where, "[general]", general, schema.general_keys(masked_loss))
    datasets = doc.get("datasets", [])
    if not isinstance(datasets, list) or not datasets:
        report.error(
            "datasets",
            f"{where}no [[datasets]] table: sd-scripts has no images to train on",
            'add [[datasets]] with [[datasets.subsets]] image_dir = "/path/to/images"',
        )
        return
    for i, dataset in enumerate(datasets, 1):
        _dataset(report, where, i, dataset, general, training, (masked_loss, alone), check_files)


def _dataset(
    report: LintReport,
    where: str,
    i: int,
    dataset: dict[str, Any],
    general: Mapping[str, Any],
    training: Mapping[str, Any],
    context: tuple[bool, bool],
    check_files: bool,
) -> None:
    masked_loss, alone = context
    flag = report.warn if alone else report.error
    unless = " (unless the training config sets it)" if alone else ""
    place = f"[[datasets]] {i}"
    subsets = dataset.get("subsets", [])
    if not isinstance(subsets, list) or not subsets:
        report.error(
            f"datasets.{i}",
            f"{where}{place} has no [[datasets.subsets]]: it adds no images",
            'add [[datasets.subsets]] with image_dir = "/path/to/images"',
        )
        subsets = []
    style = subset_style(subsets, masked_loss)
    if style is None:
        report.error(
            f"datasets.{i}",
            f"{where}{place} mixes DreamBooth subsets (image_dir) and fine-tuning subsets "
            "(metadata_file): sd-scripts refuses it",
            "split them into two [[datasets]]",
        )
        style = "dreambooth"
    own = {k: v for k, v in dataset.items() if k != "subsets"}
    _keys(report, where, place, own, schema.dataset_keys(style))
    if not any("resolution" in level for level in (dataset, general)) and training.get(
        "resolution"
    ) in (None, ""):
        flag(
            f"datasets.{i}",
            f"{where}{place} has no resolution (nor [general], nor the training config): "
            f"sd-scripts asserts 'resolution is required'{unless}",
            "add resolution = 1024 (or [width, height]) to [general] or the dataset",
        )
    for j, subset in enumerate(subsets, 1):
        sub_place = f"{place}, [[datasets.subsets]] {j}"
        if not isinstance(subset, dict):
            report.error(f"datasets.{i}.subsets.{j}", f"{where}{sub_place} is not a table", "")
            continue
        if "conditioning_data_dir" in subset and not masked_loss:
            flag(
                f"datasets.{i}.subsets.{j}",
                f"{where}{sub_place} has conditioning_data_dir, which sd-scripts accepts only "
                f"with masked_loss = true in the training config{unless}",
                "add masked_loss = true to the training config, or remove conditioning_data_dir",
            )
            subset = {k: v for k, v in subset.items() if k != "conditioning_data_dir"}
        _keys(report, where, sub_place, subset, schema.subset_keys(style))
        for key in schema.REQUIRED[style]:
            if key not in subset:
                report.error(
                    f"datasets.{i}.subsets.{j}",
                    f"{where}{sub_place} has no {key}: sd-scripts requires it ({style} subset)",
                    f'add {key} = "/path/to/{"images" if key == "image_dir" else key}"',
                )
        if check_files:
            _paths(report, where, sub_place, subset)


def _keys(
    report: LintReport, where: str, place: str, table: Mapping[str, Any], allowed: dict[str, str]
) -> None:
    for key, value in table.items():
        kind = allowed.get(key)
        if kind is None:
            _unknown(report, where, place, key, list(allowed))
        elif not schema.type_ok(kind, value):
            report.error(
                key,
                f"{where}{place}: '{key}' = {shown(value)} must be {_WORDS[kind]}: "
                "sd-scripts refuses the file",
                f"write {key} as {_WORDS[kind]}",
            )


def _unknown(report: LintReport, where: str, place: str, key: str, allowed: list[str]) -> None:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
    hint = f"did you mean '{close[0]}'?" if close else "remove it (dataset configs allow only "
    if not close:
        hint += "the keys of library/config_util.py's ConfigSanitizer)"
    report.error(
        key,
        f"{where}{place}: unknown key '{key}': sd-scripts refuses it (a dataset config "
        "allows no other keys)",
        hint,
    )


def _paths(report: LintReport, where: str, place: str, subset: Mapping[str, Any]) -> None:
    for key, folder in (
        ("image_dir", True),
        ("metadata_file", False),
        ("conditioning_data_dir", True),
    ):
        raw = subset.get(key)
        if not isinstance(raw, str) or not raw or is_windows_path(raw):
            continue
        path = resolve(raw)
        if not path.exists():
            report.error(
                key, f"{where}{place}: '{key}' = {shown(raw)} does not exist", "check the path"
            )
        elif folder and not path.is_dir():
            report.error(
                key,
                f"{where}{place}: '{key}' = {shown(raw)} is not a folder",
                "point it at a folder",
            )


def dataset_file(r: RuleInput) -> None:
    """The dataset config a training config names, checked with the training config's
    masked_loss and defaults."""
    raw = r.values.get("dataset_config")
    if not isinstance(raw, str) or not raw or is_windows_path(raw):
        return
    path = resolve(raw)
    if not path.is_file():
        return  # files.paths reports it
    doc = read_dataset_doc(path, r.report)
    if doc is None:
        return
    lint_dataset_config(
        doc,
        r.report,
        masked_loss=bool(r.values.get("masked_loss")),
        training=r.values,
        where=f"{path.name}: ",
    )


def read_dataset_doc(path: Path, report: LintReport) -> dict[str, Any] | None:
    """A dataset config as sd-scripts' load_user_config reads it (.json or .toml)."""
    import json

    import toml

    try:
        text = read_regular_text(path)
        doc = json.loads(text) if path.name.lower().endswith(".json") else toml.loads(text)
    except (OSError, UnicodeDecodeError, ValueError, TypeError, IndexError) as exc:
        report.error(
            "dataset_config",
            f"{path} cannot be read as a dataset config: {exc}",
            "fix its syntax (kohya-orch validate it alone shows where)",
        )
        return None
    if not isinstance(doc, dict):
        report.error("dataset_config", f"{path} is not a table of [[datasets]]", "")
        return None
    return doc
