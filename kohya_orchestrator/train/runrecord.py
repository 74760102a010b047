"""The run record DEST/runs/<timestamp>.json: what ran, on what, with which data, what it made.

Written atomically when the run starts (so a crash of kohya-orch itself still leaves one) and
updated when it ends.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from kohya_orchestrator import __version__
from kohya_orchestrator.fsutil import atomic_write_text, open_regular, read_regular_text
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.sdscripts.concepts import caption_path, used_concepts

RECORD_VERSION = 1


def timestamp(moment: dt.datetime | None = None) -> str:
    """`20260101-120000`: the name of a run's log and record (local time, sortable)."""
    return (moment or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")


def free_stamp(layout: Layout, stamp: str) -> str:
    """`stamp`, else `stamp-2`, `stamp-3`...: the first that no run's record or log in DEST
    has taken (two runs in one second must not share `runs/<stamp>.json`). Called with
    DEST's lock held, so no other kohya-orch can take the name meanwhile."""
    from kohya_orchestrator.train.smoke import SMOKE_DIR

    smoke_logs = layout.dest / SMOKE_DIR / layout.log_dir.relative_to(layout.dest)
    for n in itertools.count(1):
        name = stamp if n == 1 else f"{stamp}-{n}"
        taken = (
            layout.runs_dir / f"{name}.json",
            layout.runs_dir / f"{name}-smoke.json",
            layout.log_dir / f"train-{name}.log",
            layout.log_dir / f"train-{name}.accelerate.yaml",
            smoke_logs / f"train-{name}.log",
        )
        if not any(os.path.lexists(p) for p in taken):
            return name
    raise AssertionError("unreachable")


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with os.fdopen(open_regular(path), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_manifest(train_data_dir: Path, caption_extension: str) -> list[dict[str, Any]]:
    """Every training image: folder/name, size, and the sha256 of its caption (None if none)."""
    if not train_data_dir.is_dir():
        return []
    entries: list[dict[str, Any]] = []
    for concept in used_concepts(train_data_dir):
        for image in concept.images:
            caption = caption_path(image, caption_extension)
            entries.append(
                {
                    "file": f"{concept.path.name}/{image.name}",
                    "size": image.stat().st_size,
                    "caption_sha256": _sha256_file(caption) if caption.is_file() else None,
                }
            )
    return entries


def snapshot_loras(model_dir: Path) -> dict[str, int]:
    """`{name: mtime_ns}` of the .safetensors files in `model_dir` (to see what a run made)."""
    if not model_dir.is_dir():
        return {}
    return {p.name: p.stat().st_mtime_ns for p in model_dir.glob("*.safetensors") if p.is_file()}


def produced_loras(model_dir: Path, before: Mapping[str, int]) -> list[str]:
    """The LoRA files new or rewritten since `before` was taken, sorted by name."""
    after = snapshot_loras(model_dir)
    return sorted(name for name, mtime in after.items() if before.get(name) != mtime)


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass
class RunRecord:
    """One run; `start()` writes it, `finish()` rewrites it with the outcome."""

    path: Path
    kind: str
    argv: list[str]
    env: dict[str, str]
    cwd: str
    log: str
    config_text: str
    settings: dict[str, Any]
    probe: dict[str, Any] | None
    sd_scripts_commit: str | None
    dataset: list[dict[str, Any]]
    started: float
    ended: float | None = None
    exit_code: int | None = None
    loras: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "kohya_orch": __version__,
            "kind": self.kind,
            "argv": self.argv,
            "env": self.env,
            "cwd": self.cwd,
            "log": self.log,
            "config": {
                "text": self.config_text,
                "sha256": hashlib.sha256(self.config_text.encode("utf-8")).hexdigest(),
            },
            "settings": _plain(self.settings),
            "probe": self.probe,
            "sd_scripts_commit": self.sd_scripts_commit,
            "dataset": self.dataset,
            "started": _iso(self.started),
            "ended": _iso(self.ended) if self.ended is not None else None,
            "exit_code": self.exit_code,
            "loras": self.loras,
            **({"extra": _plain(self.extra)} if self.extra else {}),
        }

    def write(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"
        atomic_write_text(self.path, text)
        return self.path

    def finish(self, *, exit_code: int, ended: float, loras: Sequence[str], **extra: Any) -> Path:
        self.exit_code = exit_code
        self.ended = ended
        self.loras = list(loras)
        self.extra.update(extra)
        return self.write()


def load_record(path: Path) -> dict[str, Any]:
    """A record as written (a plain dict)."""
    data: dict[str, Any] = json.loads(read_regular_text(path))
    return data
