"""The filesystem rules of `validate.lint`: paths that must exist, the concept folders, captions.

Relative paths are resolved as sd-scripts resolves them, from the folder it runs in (here:
the current folder; `plan` does the same). Windows paths (`C:/...`, `E:\\...`) are absolute,
and checked only on Windows.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path, PureWindowsPath
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


_WINDOWS = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")
_WSL = re.compile(r"^/mnt/[a-zA-Z](?:/|$)")


def is_windows_path(value: str) -> bool:
    """`C:/...`, `E:\\...` or `\\\\server\\share`: absolute on Windows, not a POSIX path."""
    return bool(_WINDOWS.match(value))


def _looks_like_path(value: str) -> bool:
    return (
        value.startswith(("/", "~", "./", "../", "\\"))
        or (len(value) > 2 and value[1] == ":")
        or value.lower().endswith(MODEL_SUFFIXES)
    )


def resolve(raw: str) -> Path:
    """A path from the config as sd-scripts opens it: relative ones from the current folder."""
    path = Path(raw).expanduser()
    return path if path.is_absolute() else Path.cwd() / path


def _path_values(values: Mapping[str, Any]) -> dict[str, str]:
    keys = [key for key, _ in PATH_KEYS] + ["output_dir"]
    found = {k: values[k] for k in keys if isinstance(values.get(k), str) and values[k]}
    for k in ("pretrained_model_name_or_path", "vae"):
        if k in found and not _looks_like_path(found[k]):
            del found[k]  # a Hugging Face model id
    return found


def paths(r: RuleInput) -> None:
    values, report = r.values, r.report
    raws = _path_values(values)
    windows = [k for k, v in raws.items() if is_windows_path(v)]
    wsl = [k for k, v in raws.items() if _WSL.match(v)]
    if windows and wsl:
        report.warn(
            wsl[0],
            f"'{wsl[0]}' = {shown(raws[wsl[0]])} is a WSL path and '{windows[0]}' = "
            f"{shown(raws[windows[0]])} a Windows drive path: wherever sd-scripts runs, one "
            "of them does not exist",
            "write every path the same way: C:/... when sd-scripts runs on Windows, "
            "/mnt/c/... inside WSL",
        )
    if windows and os.name != "nt":
        report.note(
            windows[0],
            f"{len(windows)} Windows path{'s' * (len(windows) != 1)} ({', '.join(windows)}): "
            "absolute, but not checked on this machine",
            "run validate on the Windows machine that trains, to check them",
        )
    _same_folders(raws, report)
    for key, want_dir in PATH_KEYS:
        raw = raws.get(key)
        if raw is None or is_windows_path(raw):
            continue
        path = resolve(raw)
        if not Path(raw).expanduser().is_absolute() and not path.exists():
            report.warn(
                key,
                f"'{key}' = {shown(raw)} is a relative path and does not exist from here "
                f"({Path.cwd()}): sd-scripts resolves it from the folder it is started in",
                "write an absolute path, or run validate from the folder sd-scripts starts in",
            )
            continue
        if not path.exists():
            report.error(key, f"'{key}' = {shown(raw)} does not exist", "check the path")
        elif want_dir is True and not path.is_dir():
            report.error(key, f"'{key}' = {shown(raw)} is not a folder", "point it at a folder")
        elif want_dir is False and not path.is_file():
            report.error(key, f"'{key}' = {shown(raw)} is not a file", "point it at a file")
    out = raws.get("output_dir")
    if out is not None and not is_windows_path(out) and resolve(out).is_file():
        report.error(
            "output_dir",
            f"'output_dir' = {shown(out)} is a file: sd-scripts saves the LoRA files in a folder",
            "point output_dir at a folder (sd-scripts creates it when it is missing)",
        )


def _norm(raw: str) -> str:
    if is_windows_path(raw):
        return str(PureWindowsPath(raw)).lower().rstrip("\\")
    return os.path.normpath(str(resolve(raw)))


def _same_folders(raws: Mapping[str, str], report: LintReport) -> None:
    """reg_data_dir naming the training images: they become regularisation images too."""
    train, reg = raws.get("train_data_dir"), raws.get("reg_data_dir")
    if train is None or reg is None or "dataset_config" in raws:
        return
    train_n, reg_n = _norm(train), _norm(reg)
    sep = "\\" if is_windows_path(train) else "/"
    parent, _, name = train_n.rpartition(sep)
    if reg_n == train_n:
        what = "is train_data_dir"
    elif reg_n == parent and re.match(r"^\d+_", name):
        what = f"holds the concept folder train_data_dir names ({name})"
    else:
        return
    report.error(
        "reg_data_dir",
        f"'reg_data_dir' = {shown(reg)} {what}: the training images become regularisation "
        "images too",
        "point reg_data_dir at a separate folder of class images (e.g. DEST/reg), or remove it",
    )


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
    if not isinstance(raw, str) or not raw or "dataset_config" in values or is_windows_path(raw):
        return None
    path = resolve(raw)
    return path if path.is_dir() else None


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
