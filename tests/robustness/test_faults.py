"""Fault injection: SIGKILL `rename`, `caption` and `prepare` at random moments; full disk;
read-only folders. Nothing may be lost, duplicated, corrupted or half-written.

Each kill trial copies a pristine generated dataset (real JPEG/PNG/WebP files with `.txt`,
`.caption` and `.npz` sidecars), starts the real command (`python -m kohya_orchestrator`)
and SIGKILLs it after a delay drawn uniformly within one uninterrupted run's measured
duration (seeded; the seed is printed and in every failure message): over the whole run
for even seeds, over the part after planning (timed with --dry-run) for odd seeds, where
the writes happen. Then the invariants are checked, the command is run again, and the
result must equal an uninterrupted run.

`make faults` runs 150 trials per command (prepare: a third per link mode) and 50 of
`rename --undo`;
`make test` runs a few. After every re-run no temp and no lock file may be left. The
counts of trials and invariants checked, and of lost, corrupt and duplicated files and
temps left, are printed in the terminal summary (faultrun.py; test_faults_more.py and
test_concurrency.py count into it too).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from faultkit import (
    CLI,
    TRIGGER,
    decodes,
    image_data,
    image_format,
    kill_after,
    killed_run_leftovers,
    run,
    sha,
    shim_env,
    timed,
    tree,
    tree_with_modes,
)
from faultrun import (
    FAST_SEEDS,
    IMAGES,
    PREFIX,
    STATS,
    TOOL_NAMES,
    Checker,
    Pristine,
    make_pristine,
    no_temps_left,
    summary,  # noqa: F401 (the session fixture that prints the totals)
)
from faultrun import diff as _diff
from faultrun import draw as _draw
from faultrun import files as _files
from faultrun import halfway as _halfway
from faultrun import measure as _measure
from faultrun import planned as _planned
from faultrun import record as _record

from kohya_orchestrator.dataset.journal import JOURNAL_NAME, RENAME_TEMP_PREFIX
from kohya_orchestrator.dataset.rename import plan_folder
from kohya_orchestrator.dataset.scan import is_image_name
from kohya_orchestrator.fsutil import TEMP_PREFIX
from kohya_orchestrator.locking import LOCK_NAME
from kohya_orchestrator.project.prepare import MANIFEST_NAME

FULL_TRIALS = 150
MODES = ("symlink", "copy", "hardlink")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    return make_pristine(tmp_path_factory)


# --------------------------------------------------------------------------------- rename


@dataclass
class RenameBaseline:
    mapping: dict[str, str]
    final: dict[str, bytes]
    duration: float
    planned: float


@pytest.fixture(scope="module")
def rename_baseline(pristine: Pristine) -> RenameBaseline:
    plan = plan_folder(pristine.source, PREFIX)
    mapping = {m.src: m.dst for m in plan.moves}
    folder = pristine.root / "rename-baseline"
    duration = _measure(_rename_argv, folder, pristine.source)
    scratch = pristine.root / "rename-planned"
    shutil.copytree(pristine.source, scratch)
    planned = _planned(_rename_argv(scratch))
    final = _files(folder)
    journal = json.loads(final.pop(JOURNAL_NAME))
    assert journal["state"] == "applied"
    expected = {mapping.get(n, n): data for n, data in pristine.files.items()}
    assert final == expected
    return RenameBaseline(mapping, final, duration, planned)


def _rename_argv(folder: Path) -> list[str]:
    return [*CLI, "rename", PREFIX, str(folder), "--yes"]


def check_rename(check: Checker, folder: Path, pristine: Pristine, mapping: dict[str, str]) -> None:
    """Every original file exactly once, byte-identical, under its old, temporary or new name."""
    origin = {sha(data): name for name, data in pristine.files.items()}
    seen: Counter[str] = Counter()
    for name, data in _files(folder).items():
        if name in TOOL_NAMES or name.startswith(TEMP_PREFIX):
            continue
        digest = sha(data)
        src = origin.get(digest)
        check(src is not None, "corrupt", f"{name} holds bytes of no original file")
        if src is None:
            continue
        seen[digest] += 1
        allowed = {src, mapping.get(src, src)}
        check(
            name in allowed or name.startswith(RENAME_TEMP_PREFIX),
            "other",
            f"{src} is named {name}, expected one of {sorted(allowed)}",
        )
        if is_image_name(src):
            check(decodes(data), "corrupt", f"{name} ({src}) does not decode")
    for digest, src in origin.items():
        check(seen[digest] > 0, "lost", f"{src} is missing")
        check(seen[digest] <= 1, "duplicated", f"{src} exists {seen[digest]} times")


def _rename_trial(tmp_path: Path, pristine: Pristine, base: RenameBaseline, seed: int) -> None:
    folder = tmp_path / "data"
    shutil.copytree(pristine.source, folder)
    killed = kill_after(_rename_argv(folder), _draw(seed, base.duration, base.planned))
    where = f"rename seed {seed}: killed after {killed.delay:.3f}s (killed={killed.killed})"
    print(where)
    _record("rename", killed.killed)
    check = Checker("rename", where)
    check_rename(check, folder, pristine, base.mapping)
    now = {n: d for n, d in _files(folder).items() if n not in TOOL_NAMES}
    _halfway("rename", now not in (pristine.files, base.final))
    again = run(_rename_argv(folder))
    check(again.returncode == 0, "other", f"second run failed: {again.stderr}")
    check("Traceback" not in again.stderr, "other", again.stderr)
    final = _files(folder)
    journal = final.pop(JOURNAL_NAME, None)
    check(journal is not None and json.loads(journal)["state"] == "applied", "other", "journal")
    check(final == base.final, "other", f"final state differs: {_diff(final, base.final)}")
    check_rename(check, folder, pristine, base.mapping)
    no_temps_left(check, folder)
    check.done()


@pytest.mark.parametrize("seed", FAST_SEEDS)
def test_kill_rename(
    tmp_path: Path, pristine: Pristine, rename_baseline: RenameBaseline, seed: int
) -> None:
    _rename_trial(tmp_path, pristine, rename_baseline, seed)


@pytest.mark.faults
@pytest.mark.parametrize("seed", range(1000, 1000 + FULL_TRIALS))
def test_kill_rename_many(
    tmp_path: Path, pristine: Pristine, rename_baseline: RenameBaseline, seed: int
) -> None:
    _rename_trial(tmp_path, pristine, rename_baseline, seed)


def _undo_trial(tmp_path: Path, pristine: Pristine, base: RenameBaseline, seed: int) -> None:
    """Kill `rename --undo` of a finished rename; `--undo` again restores every old name."""
    folder = tmp_path / "data"
    shutil.copytree(pristine.source, folder)
    done = run(_rename_argv(folder))
    assert done.returncode == 0, done.stderr
    argv = [*CLI, "rename", "--undo", str(folder)]
    killed = kill_after(argv, _draw(seed, base.duration, base.planned))
    where = f"rename --undo seed {seed}: killed after {killed.delay:.3f}s (killed={killed.killed})"
    print(where)
    _record("rename --undo", killed.killed)
    check = Checker("rename --undo", where)
    check_rename(check, folder, pristine, base.mapping)
    now = {n: d for n, d in _files(folder).items() if n not in TOOL_NAMES}
    _halfway("rename --undo", now not in (pristine.files, base.final))
    state = json.loads((folder / JOURNAL_NAME).read_text(encoding="utf-8"))["state"]
    if state != "undone":  # killed before the undo was recorded as finished
        again = run(argv)
        check(again.returncode == 0, "other", f"second --undo failed: {again.stderr}")
    final = _files(folder)
    journal = final.pop(JOURNAL_NAME, None)
    check(journal is not None and json.loads(journal)["state"] == "undone", "other", "journal")
    check(final == pristine.files, "other", f"not restored: {_diff(final, pristine.files)}")
    no_temps_left(check, folder)
    check.done()


@pytest.mark.parametrize("seed", FAST_SEEDS[:1])
def test_kill_rename_undo(
    tmp_path: Path, pristine: Pristine, rename_baseline: RenameBaseline, seed: int
) -> None:
    _undo_trial(tmp_path, pristine, rename_baseline, seed)


@pytest.mark.faults
@pytest.mark.parametrize("seed", range(1500, 1550))
def test_kill_rename_undo_many(
    tmp_path: Path, pristine: Pristine, rename_baseline: RenameBaseline, seed: int
) -> None:
    _undo_trial(tmp_path, pristine, rename_baseline, seed)


# -------------------------------------------------------------------------------- caption


@dataclass
class CaptionBaseline:
    final: dict[str, bytes]
    duration: float
    planned: float


def _caption_argv(folder: Path) -> list[str]:
    return [*CLI, "caption", TRIGGER, str(folder), "-q"]


@pytest.fixture(scope="module")
def caption_baseline(pristine: Pristine) -> CaptionBaseline:
    folder = pristine.root / "caption-baseline"
    duration = _measure(_caption_argv, folder, pristine.source)
    planned = _planned(_caption_argv(pristine.source))
    final = _files(folder)
    changed = [n for n in final if final[n] != pristine.files.get(n)]
    assert len(changed) > IMAGES, "the baseline must rewrite images and write captions"
    return CaptionBaseline(final, duration, planned)


def check_caption(
    check: Checker, folder: Path, pristine: Pristine, final: dict[str, bytes]
) -> None:
    """Every file old or new, never partial; image data unchanged; every image decodes."""
    now = _files(folder)
    for name in sorted(set(pristine.files) | set(final)):
        old, new, data = pristine.files.get(name), final.get(name), now.get(name)
        if data is None:
            check(old is None, "lost", f"{name} is missing")
            continue
        check(data in (old, new), "corrupt", f"{name} is neither the old nor the new file")
        if old is not None and image_format(old):
            check(decodes(data), "corrupt", f"{name} does not decode")
            check(image_data(data) == image_data(old), "corrupt", f"{name}: image data changed")
    extra = [n for n in now if n not in pristine.files and n not in final and n != LOCK_NAME]
    check(all(n.startswith(TEMP_PREFIX) for n in extra), "other", f"unexpected files {extra[:5]}")


def _caption_trial(tmp_path: Path, pristine: Pristine, base: CaptionBaseline, seed: int) -> None:
    folder = tmp_path / "data"
    shutil.copytree(pristine.source, folder)
    killed = kill_after(_caption_argv(folder), _draw(seed, base.duration, base.planned))
    where = f"caption seed {seed}: killed after {killed.delay:.3f}s (killed={killed.killed})"
    print(where)
    _record("caption", killed.killed)
    check = Checker("caption", where)
    check_caption(check, folder, pristine, base.final)
    between = {n: d for n, d in _files(folder).items() if n != LOCK_NAME}
    _halfway("caption", between not in (pristine.files, base.final))
    again = run(_caption_argv(folder))
    check(again.returncode == 0, "other", f"second run failed: {again.stderr}")
    final = _files(folder)
    check(final == base.final, "other", f"final state differs: {_diff(final, base.final)}")
    check_caption(check, folder, pristine, base.final)
    no_temps_left(check, folder)
    check.done()


@pytest.mark.parametrize("seed", FAST_SEEDS)
def test_kill_caption(
    tmp_path: Path, pristine: Pristine, caption_baseline: CaptionBaseline, seed: int
) -> None:
    _caption_trial(tmp_path, pristine, caption_baseline, seed)


@pytest.mark.faults
@pytest.mark.parametrize("seed", range(2000, 2000 + FULL_TRIALS))
def test_kill_caption_many(
    tmp_path: Path, pristine: Pristine, caption_baseline: CaptionBaseline, seed: int
) -> None:
    _caption_trial(tmp_path, pristine, caption_baseline, seed)


# -------------------------------------------------------------------------------- prepare


@dataclass
class PrepareBaseline:
    dest: dict[str, tuple[str, str]]
    manifest: dict[str, Any]
    settings: str
    duration: float
    planned: float


def _prepare_argv(source: Path, dest: Path, model: Path, mode: str) -> list[str]:
    return [
        *CLI,
        "prepare",
        PREFIX,
        "--images",
        str(source),
        "--dest",
        str(dest),
        "--model",
        str(model),
        "--trigger",
        TRIGGER,
        f"--{mode}",
    ]


def _dest_state(
    dest: Path, source: Path
) -> tuple[dict[str, tuple[str, str]], dict[str, Any] | None, str | None]:
    """DEST's tree with the source path abstracted, its manifest normalised, its settings."""
    prefix = str(source) + os.sep
    entries = {}
    for rel, (kind, value) in tree(dest).items():
        if rel in (MANIFEST_NAME, "kohya-orch.toml"):
            continue
        entries[rel] = (kind, value.replace(prefix, "<SRC>/"))
    manifest = None
    if (dest / MANIFEST_NAME).exists():
        files = json.loads((dest / MANIFEST_NAME).read_text(encoding="utf-8"))["files"]
        manifest = {k: _record_shape(dest / k, v, prefix) for k, v in files.items()}
    settings = None
    if (dest / "kohya-orch.toml").exists():
        settings = (dest / "kohya-orch.toml").read_text(encoding="utf-8")
        settings = settings.replace(str(source), "<SRC>")
    return entries, manifest, settings


def _record_shape(target: Path, record: dict[str, Any], prefix: str) -> dict[str, Any]:
    """A manifest record with the stat fields replaced by whether they match the file."""
    shape: dict[str, Any] = {
        "source": str(record.get("source", "")).replace(prefix, "<SRC>/"),
        "mode": record.get("mode"),
    }
    if record.get("mode") != "symlink":
        try:
            st = os.stat(target)
            src = os.stat(record["source"])
        except (OSError, KeyError):
            shape["stat"] = "unreadable"
            return shape
        shape["stat"] = {
            "ino": record.get("ino") == st.st_ino,
            "size": record.get("size") == st.st_size,
            "mtime_ns": record.get("mtime_ns") == st.st_mtime_ns,
            "source_size": record.get("source_size") == src.st_size,
            "source_mtime_ns": record.get("source_mtime_ns") == src.st_mtime_ns,
        }
    return shape


@pytest.fixture(scope="module")
def prepare_baselines(pristine: Pristine) -> dict[str, PrepareBaseline]:
    out = {}
    for mode in MODES:
        top = pristine.root / f"prepare-baseline-{mode}"
        top.mkdir()
        source, dest = top / "src", top / "dest"
        shutil.copytree(pristine.source, source)
        warm = top / "warm"
        timed(_prepare_argv(source, warm, pristine.model, mode))
        shutil.rmtree(warm)
        duration = timed(_prepare_argv(source, dest, pristine.model, mode))
        planned = _planned(_prepare_argv(source, top / "planned", pristine.model, mode))
        entries, manifest, settings = _dest_state(dest, source)
        assert manifest is not None and settings is not None
        assert len(manifest) > IMAGES
        out[mode] = PrepareBaseline(entries, manifest, settings, duration, planned)
    return out


def check_prepare(
    check: Checker,
    top: Path,
    source_tree: dict[str, Any],
    base: PrepareBaseline,
    *,
    finished: bool,
) -> None:
    source, dest = top / "src", top / "dest"
    check(tree_with_modes(source) == source_tree, "corrupt", "the source folder changed")
    check(
        sorted(p.name for p in top.iterdir()) in (["src"], ["dest", "src"]),
        "other",
        f"something was written outside DEST: {sorted(p.name for p in top.iterdir())}",
    )
    if not dest.exists():
        check(not finished, "other", "DEST was not created")
        return
    entries, manifest, settings = _dest_state(dest, source)
    for rel, entry in entries.items():
        if Path(rel).name.startswith(TEMP_PREFIX) or rel == LOCK_NAME:
            # An interrupted atomic write's temp, and the lock file recording it: harmless,
            # but the next run must remove both.
            check(not finished, "temps", f"left after the re-run: DEST/{rel}")
            continue
        want = base.dest.get(rel)
        kind = "corrupt" if entry[0] == "file" else "other"
        check(entry == want, kind, f"DEST/{rel} is {entry}, expected {want}")
    check(settings in (None, base.settings), "corrupt", "the settings file is partial or wrong")
    if finished:
        check(entries == base.dest, "other", f"DEST differs: {_diff(entries, base.dest)}")
        check(
            manifest == base.manifest, "other", f"manifest: {_diff(manifest or {}, base.manifest)}"
        )
        check(settings == base.settings, "other", "settings file missing or different")


def _prepare_trial(
    tmp_path: Path, pristine: Pristine, bases: dict[str, PrepareBaseline], seed: int
) -> None:
    mode = MODES[seed % len(MODES)]
    base = bases[mode]
    top = tmp_path / "p"
    source, dest = top / "src", top / "dest"
    shutil.copytree(pristine.source, source)
    source_tree = tree_with_modes(source)
    argv = _prepare_argv(source, dest, pristine.model, mode)
    killed = kill_after(argv, _draw(seed, base.duration, base.planned))
    where = (
        f"prepare --{mode} seed {seed}: killed after {killed.delay:.3f}s (killed={killed.killed})"
    )
    print(where)
    _record("prepare", killed.killed)
    check = Checker("prepare", where)
    check_prepare(check, top, source_tree, base, finished=not killed.killed)
    _halfway("prepare", dest.exists() and _dest_state(dest, source)[0] != base.dest)
    again = run(argv)
    check(again.returncode == 0, "other", f"second run failed: {again.stderr}")
    check_prepare(check, top, source_tree, base, finished=True)
    no_temps_left(check, top)
    check.done()


@pytest.mark.parametrize("seed", FAST_SEEDS)
def test_kill_prepare(
    tmp_path: Path, pristine: Pristine, prepare_baselines: dict[str, PrepareBaseline], seed: int
) -> None:
    _prepare_trial(tmp_path, pristine, prepare_baselines, seed)


@pytest.mark.faults
@pytest.mark.parametrize("seed", range(3000, 3000 + FULL_TRIALS))
def test_kill_prepare_many(
    tmp_path: Path, pristine: Pristine, prepare_baselines: dict[str, PrepareBaseline], seed: int
) -> None:
    _prepare_trial(tmp_path, pristine, prepare_baselines, seed)


# ----------------------------------------------------------------- full disk, read-only


def _no_temps(check: Checker, top: Path) -> None:
    temps = [
        p
        for p in top.rglob("*")
        if p.name.startswith((TEMP_PREFIX, RENAME_TEMP_PREFIX))
        or p.name in ("fault-shim", LOCK_NAME)
    ]
    check(not temps, "other", f"temp files left: {temps[:5]}")


def _clear_error(check: Checker, done: subprocess.CompletedProcess[str], reason: str) -> None:
    STATS["trials disk"] += 1
    check(done.returncode == 1, "other", f"exit {done.returncode}, expected 1: {done.stderr}")
    check("Traceback" not in done.stderr, "other", f"a traceback:\n{done.stderr}")
    check(reason in done.stderr, "other", f"{reason!r} not said:\n{done.stderr}")


def _shim(tmp_path: Path, fault: str) -> dict[str, str]:
    # The shim lives outside the folders under test, so it never counts as a leftover.
    return shim_env(tmp_path.parent / f"{tmp_path.name}-shim", fault)


def _budgets(total: int) -> list[int]:
    return [0, total // 3, 2 * total // 3]


ENOSPC = os.strerror(errno.ENOSPC)
EACCES = os.strerror(errno.EACCES)


@pytest.mark.parametrize("part", range(3))
def test_full_disk_rename(
    tmp_path: Path, pristine: Pristine, rename_baseline: RenameBaseline, part: int
) -> None:
    journal_bytes = 2 * len(json.dumps(list(rename_baseline.mapping.items())))
    budget = _budgets(journal_bytes)[part]
    folder = tmp_path / "data"
    shutil.copytree(pristine.source, folder)
    check = Checker("disk", f"rename with {budget} bytes of space")
    done = run(_rename_argv(folder), env=_shim(tmp_path, f"enospc:{budget}"))
    _clear_error(check, done, ENOSPC)
    check_rename(check, folder, pristine, rename_baseline.mapping)
    _no_temps(check, folder)
    again = run(_rename_argv(folder))
    check(again.returncode == 0, "other", f"run with space failed: {again.stderr}")
    final = _files(folder)
    final.pop(JOURNAL_NAME, None)
    check(final == rename_baseline.final, "other", _diff(final, rename_baseline.final))
    check.done()


@pytest.mark.parametrize("part", range(3))
def test_full_disk_caption(
    tmp_path: Path, pristine: Pristine, caption_baseline: CaptionBaseline, part: int
) -> None:
    written = sum(
        len(data) for n, data in caption_baseline.final.items() if data != pristine.files.get(n)
    )
    budget = _budgets(written)[part]
    folder = tmp_path / "data"
    shutil.copytree(pristine.source, folder)
    check = Checker("disk", f"caption with {budget} bytes of space")
    done = run(_caption_argv(folder), env=_shim(tmp_path, f"enospc:{budget}"))
    _clear_error(check, done, ENOSPC)
    check_caption(check, folder, pristine, caption_baseline.final)
    _no_temps(check, folder)
    again = run(_caption_argv(folder))
    check(again.returncode == 0, "other", f"run with space failed: {again.stderr}")
    final = _files(folder)
    check(final == caption_baseline.final, "other", _diff(final, caption_baseline.final))
    check.done()


@pytest.mark.parametrize(
    ("mode", "part"),
    [
        ("symlink", 0),
        ("symlink", 1),
        ("symlink", 2),
        ("copy", 0),
        ("copy", 1),
        ("copy", 2),
    ],
)
def test_full_disk_prepare(
    tmp_path: Path,
    pristine: Pristine,
    prepare_baselines: dict[str, PrepareBaseline],
    mode: str,
    part: int,
) -> None:
    base = prepare_baselines[mode]
    written = 2 * len(base.settings) + 2 * len(json.dumps(base.manifest))
    if mode == "copy":
        written += sum(len(d) for n, d in pristine.files.items() if is_image_name(n))
    budget = _budgets(written)[part]
    top = tmp_path / "p"
    source, dest = top / "src", top / "dest"
    shutil.copytree(pristine.source, source)
    source_tree = tree_with_modes(source)
    argv = _prepare_argv(source, dest, pristine.model, mode)
    check = Checker("disk", f"prepare --{mode} with {budget} bytes of space")
    done = run(argv, env=_shim(tmp_path, f"enospc:{budget}"))
    _clear_error(check, done, ENOSPC)
    check_prepare(check, top, source_tree, base, finished=False)
    _no_temps(check, top)
    again = run(argv)
    check(again.returncode == 0, "other", f"run with space failed: {again.stderr}")
    check_prepare(check, top, source_tree, base, finished=True)
    check.done()


@pytest.mark.parametrize("command", ["rename", "caption"])
def test_read_only_folder(
    tmp_path: Path,
    pristine: Pristine,
    rename_baseline: RenameBaseline,
    caption_baseline: CaptionBaseline,
    command: str,
) -> None:
    """Writes denied in the image folder (EACCES injected: chmod does not stop root)."""
    folder = tmp_path / "data"
    shutil.copytree(pristine.source, folder)
    argv = _rename_argv(folder) if command == "rename" else _caption_argv(folder)
    check = Checker("disk", f"{command} in a read-only folder")
    done = run(argv, env=_shim(tmp_path, f"eacces:{folder}"))
    _clear_error(check, done, EACCES)
    check(_files(folder) == pristine.files, "other", "the folder changed")
    _no_temps(check, folder)
    check.done()


def test_read_only_dest_parent(tmp_path: Path, pristine: Pristine) -> None:
    top = tmp_path / "p"
    top.mkdir()
    argv = _prepare_argv(pristine.source, top / "dest", pristine.model, "symlink")
    check = Checker("disk", "prepare into a read-only folder")
    before = tree_with_modes(pristine.source)
    done = run(argv, env=_shim(tmp_path, f"eacces:{top}"))
    _clear_error(check, done, EACCES)
    check(list(top.iterdir()) == [], "other", "something was written")
    check(tree_with_modes(pristine.source) == before, "corrupt", "the source changed")
    check.done()


def test_prepare_from_read_only_source(
    tmp_path: Path, pristine: Pristine, prepare_baselines: dict[str, PrepareBaseline]
) -> None:
    """prepare only reads the source folder, so denying writes there changes nothing."""
    top = tmp_path / "p"
    source, dest = top / "src", top / "dest"
    shutil.copytree(pristine.source, source)
    source_tree = tree_with_modes(source)
    check = Checker("disk", "prepare from a read-only source")
    argv = _prepare_argv(source, dest, pristine.model, "copy")
    done = run(argv, env=_shim(tmp_path, f"eacces:{source}"))
    STATS["trials disk"] += 1
    check(done.returncode == 0, "other", done.stderr)
    check_prepare(check, top, source_tree, prepare_baselines["copy"], finished=True)
    check.done()


@pytest.mark.skipif(os.geteuid() == 0, reason="chmod 0555 does not stop root")
@pytest.mark.parametrize("command", ["rename", "caption"])
def test_chmod_read_only_folder(tmp_path: Path, pristine: Pristine, command: str) -> None:
    folder = tmp_path / "data"
    shutil.copytree(pristine.source, folder)
    argv = _rename_argv(folder) if command == "rename" else _caption_argv(folder)
    folder.chmod(0o555)
    try:
        done = run(argv)
    finally:
        folder.chmod(0o755)
    check = Checker("disk", f"{command} in a chmod 0555 folder")
    _clear_error(check, done, EACCES)
    check(_files(folder) == pristine.files, "other", "the folder changed")
    check.done()


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Any:
    """A real 1 MiB tmpfs (root only, where mounting is allowed); skipped elsewhere."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)])
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        run(["umount", str(mount)])


def test_real_full_tmpfs_caption(
    tiny_tmpfs: Path, pristine: Pristine, caption_baseline: CaptionBaseline
) -> None:
    """A real full file system: the dataset nearly fills it, captioning runs out of space."""
    folder = tiny_tmpfs / "data"
    folder.mkdir()
    names = sorted(pristine.files)
    used = 0
    for name in names:
        blocks = -(-len(pristine.files[name]) // 4096) * 4096  # tmpfs counts whole pages
        if used + blocks > 1024 * 1024 - 128 * 1024:
            break
        (folder / name).write_bytes(pristine.files[name])
        used += blocks
    subset = Pristine(pristine.root, folder, pristine.model, _files(folder))
    final = {n: caption_baseline.final[n] for n in caption_baseline.final if n in subset.files}
    final.update(
        {n: d for n, d in caption_baseline.final.items() if n.endswith(".txt") and n not in final}
    )
    check = Checker("disk", "caption on a full tmpfs")
    done = run(_caption_argv(folder))
    _clear_error(check, done, ENOSPC)
    now = _files(folder)
    for name, old in subset.files.items():
        data = now.get(name)
        check(data is not None, "lost", f"{name} is missing")
        if data is not None and image_format(old):
            check(decodes(data), "corrupt", f"{name} does not decode")
            check(image_data(data) == image_data(old), "corrupt", f"{name}: image data changed")
    _no_temps(check, folder)
    run(["mount", "-o", "remount,size=8m", str(tiny_tmpfs)])
    again = run(_caption_argv(folder))
    check(again.returncode == 0, "other", f"run with space failed: {again.stderr}")
    check.done()


# ------------------------------------------------- what a kill inside an atomic write leaves


def test_rename_removes_a_journal_temp(tmp_path: Path, pristine: Pristine) -> None:
    """The kill trials hit this now and then: a kill inside the journal's atomic write
    leaves a temp of the journal, recorded in the lock file; the next run removes it (and
    nothing else that merely starts like a temp)."""
    folder = tmp_path / "data"
    shutil.copytree(pristine.source, folder)
    (temp,) = killed_run_leftovers(folder, JOURNAL_NAME, command="rename")
    notes = folder / f"{TEMP_PREFIX}my-notes.txt"
    notes.write_text("mine", encoding="utf-8")
    done = run(_rename_argv(folder))
    assert done.returncode == 0, done.stderr
    assert not temp.exists()
    assert notes.read_text(encoding="utf-8") == "mine"
    assert not (folder / LOCK_NAME).exists()


def test_prepare_removes_a_manifest_temp(tmp_path: Path, pristine: Pristine) -> None:
    """Likewise for prepare's manifest, which lives in DEST itself, not in img/."""
    dest = tmp_path / "dest"
    dest.mkdir()
    (temp,) = killed_run_leftovers(dest, MANIFEST_NAME, command="prepare")
    done = run(_prepare_argv(pristine.source, dest, pristine.model, "symlink"))
    assert done.returncode == 0, done.stderr
    assert not temp.exists()
    assert not (dest / LOCK_NAME).exists()
