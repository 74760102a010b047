"""The filesystem rules of `validate.lint`: paths that must exist, the concept folders, captions.

Relative paths are reported, not guessed: sd-scripts resolves them against the folder it is
started in, which the config file does not say.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kohya_orchestrator.errors import ImageFormatError
from kohya_orchestrator.lint.report import LintReport, RuleInput, shown
from kohya_orchestrator.sdscripts.buckets import parse_resolution
from kohya_orchestrator.sdscripts.concepts import ConceptFolder, list_images, scan_concepts

# (key, must be a folder) for paths that must exist before the run starts.
PATH_KEYS = (
    ("pretrained_model_name_or_path", None),
    ("train_data_dir", True),
    ("reg_data_dir", True),
    ("dataset_config", False),
    ("sample_prompts", False),
    ("network_weights", False),
    ("vae", None),
    ("resume", True),
)
MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".sft")


def _looks_like_path(value: str) -> bool:
    return (
        value.startswith(("/", "~", "./", "../", "\\"))
        or (len(value) > 2 and value[1] == ":")
        or value.lower().endswith(MODEL_SUFFIXES)
    )


def paths(r: RuleInput) -> None:
    values, report = r.values, r.report
    for key, want_dir in PATH_KEYS:
        raw = values.get(key)
        if not isinstance(raw, str) or not raw:
            continue
        if key in ("pretrained_model_name_or_path", "vae") and not _looks_like_path(raw):
            continue  # a Hugging Face model id
        path = Path(raw).expanduser()
        if not path.is_absolute():
            report.warn(
                key,
                f"'{key}' = {shown(raw)} is a relative path: sd-scripts resolves it against the "
                "folder it is started in",
                "write an absolute path",
            )
            continue
        if not path.exists():
            report.error(key, f"'{key}' = {shown(raw)} does not exist", "check the path")
        elif want_dir is True and not path.is_dir():
            report.error(key, f"'{key}' = {shown(raw)} is not a folder", "point it at a folder")
        elif want_dir is False and not path.is_file():
            report.error(key, f"'{key}' = {shown(raw)} is not a file", "point it at a file")


RESYNC_HINT = "run `kohya-orch prepare` again (the same command) to sync DEST"


def gone_links_text(folder: Path, broken: list[Path]) -> str:
    """Images in DEST that are links to files no longer there (renamed or removed in the
    source folder since prepare linked them)."""
    shown_names = ", ".join(p.name for p in broken[:3]) + (" ..." if len(broken) > 3 else "")
    where = ", ".join(sorted({f"{p.parent.name}/" for p in broken}))
    return (
        f"{len(broken)} image(s) in {folder} ({where}) are links to files that are gone "
        f"({shown_names}): the source folder changed since prepare linked them"
    )


def _usable_dir(values: Mapping[str, Any], key: str) -> Path | None:
    raw = values.get(key)
    if not isinstance(raw, str) or "dataset_config" in values:
        return None
    path = Path(raw).expanduser()
    return path if path.is_absolute() and path.is_dir() else None


def folders(r: RuleInput) -> None:
    values, report = r.values, r.report
    train = _usable_dir(values, "train_data_dir")
    if train is not None:
        concepts = scan_concepts(train)
        used = _report_concepts(concepts, "train_data_dir", report)
        broken = [p for c in used for p in c.broken]
        if broken:
            report.error("train_data_dir", gone_links_text(train, broken), RESYNC_HINT)
        elif not any(c.images for c in used):
            loose = list_images(train)
            hint = (
                f"move the {len(loose)} image{'s' * (len(loose) != 1)} into a subfolder such "
                "as 7_<name> (7 repeats)"
                if loose
                else "put the images in a subfolder named <repeats>_<name>, e.g. 7_yumoto_hakone"
            )
            report.error(
                "train_data_dir",
                f"'train_data_dir' = {shown(str(values['train_data_dir']))} has no "
                "<repeats>_<name> folder with images: sd-scripts finds nothing to train on",
                hint,
            )
        else:
            _captions(values, used, report)
            _sizes(values, used, report)
    reg = _usable_dir(values, "reg_data_dir")
    if reg is not None:
        used = _report_concepts(scan_concepts(reg), "reg_data_dir", report)
        if not any(c.images for c in used):
            report.warn(
                "reg_data_dir",
                f"'reg_data_dir' = {shown(str(values['reg_data_dir']))} holds no regularisation "
                "images",
                "remove reg_data_dir (an empty reg folder adds nothing)",
            )


def _report_concepts(
    concepts: list[ConceptFolder], key: str, report: LintReport
) -> list[ConceptFolder]:
    used = []
    for c in concepts:
        if c.skipped == "repeats 0":
            report.warn(
                key,
                f"'{key}' folder \"{c.path.name}\" has 0 repeats: sd-scripts skips it silently",
                "give it a repeat count of 1 or more, e.g. 7_<name>",
            )
        elif c.skipped:
            report.warn(
                key,
                f"'{key}' folder \"{c.path.name}\" has no leading <repeats>_: sd-scripts skips it",
                f"rename it to 7_{c.path.name} (7 repeats)",
            )
        else:
            used.append(c)
    return used


def _captions(values: Mapping[str, Any], used: list[ConceptFolder], report: LintReport) -> None:
    ext = values.get("caption_extension") or values.get("caption_extention")
    effective = ext if isinstance(ext, str) else ".caption"
    if effective == ".txt":
        return
    with_ext = 0
    with_txt = 0
    for c in used:
        for image in c.images:
            stem = str(image.with_suffix(""))
            if Path(stem + effective).is_file():
                with_ext += 1
            if Path(stem + ".txt").is_file():
                with_txt += 1
    if with_ext or not with_txt:
        return
    if ext is None:
        message = (
            f"'caption_extension' is not set: sd-scripts reads .caption files and ignores the "
            f"{with_txt} .txt captions in train_data_dir"
        )
    else:
        message = (
            f"'caption_extension' = {shown(ext)} matches no caption file, but {with_txt} images "
            "have .txt captions: sd-scripts trains without them"
        )
    report.error("caption_extension", message, 'add caption_extension = ".txt"')


def _sizes(values: Mapping[str, Any], used: list[ConceptFolder], report: LintReport) -> None:
    from kohya_orchestrator.dataset.imagesize import image_size

    if values.get("enable_bucket"):
        return
    reso = parse_resolution(values.get("resolution"))
    if reso is None:
        return
    total = 0
    wrong: list[tuple[Path, tuple[int, int]]] = []
    for c in used:
        for image in c.images:
            total += 1
            try:
                size = image_size(image)
            except ImageFormatError:
                continue
            if size != reso:
                wrong.append((image, size))
    if wrong:
        first, (w, h) = wrong[0]
        report.error(
            "enable_bucket",
            f"buckets are off and {len(wrong)} of {total} images are not {reso[0]}x{reso[1]} "
            f"(first: {first.name}, {w}x{h}): sd-scripts fails after loading the model",
            f"add enable_bucket = true, or resize the images to {reso[0]}x{reso[1]}",
        )
