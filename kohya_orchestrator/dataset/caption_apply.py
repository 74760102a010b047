"""Captioning a folder: plan each image's caption, then write images and `.txt` files safely.

`plan_captions` reads the folder and decides, per image, where its caption comes from
(the `.txt`, else a caption this tool embedded earlier, else nothing; --tags are added to
it, the ones it lacks, or replace it with `replace_tags`), the new
caption with the trigger first, and whether the image and/or the caption file change. It
writes nothing. `apply_captions` carries a plan out: each image is re-read and checked
against the plan (size, mtime and CRC-32), the caption is embedded without re-encoding
(the bytes computed while planning are reused), the image is replaced atomically, then
its caption file (the `.txt` marks completion); each touched folder is fsynced once at
the end. A file that cannot be handled is left untouched and reported; the others are
processed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kohya_orchestrator import fsutil
from kohya_orchestrator.dataset.caption_check import (
    CaptionSource,
    FileStamp,
    Iterate,
    caption_case_problem,
    choose_source,
    mislabel_warning,
    normalise_ext,
    read_caption_file,
    read_stamped,
    require_images,
    shared_stems,
)
from kohya_orchestrator.dataset.caption_write import (
    Target,
    os_message,
    still_being_written,
    write_captioned,
)
from kohya_orchestrator.dataset.captions import (
    Trigger,
    caption_with_trigger,
    join_tags,
    merge_tags,
    parse_trigger,
    split_tags,
)
from kohya_orchestrator.dataset.rename import require_no_pending_rename
from kohya_orchestrator.errors import CaptionError, InputError, OrchError
from kohya_orchestrator.locking import leftover_temps

# A bulk edit of each caption's tags (dataset/tagedit.py, `tag`'s merge): the image and
# its tags in, its new tags out.
Transform = Callable[[Path, list[str]], list[str]]

BMP_NOTE = "a BMP holds no metadata: its caption is in the caption file only"

# Up to this many bytes of captioned images are kept from planning for apply; beyond it,
# apply embeds again (same result) instead of holding a large folder in memory.
EMBED_CACHE_BYTES = 256 * 1024 * 1024

# Images written at once: fsync waits on the disk, so overlapping several lets the file
# system commit them together (measured: see bench/bench_caption.py).
APPLY_WORKERS = 4

_SOURCE_NAMES = {
    "txt": "from the caption file",
    "embedded": "from the embedded caption",
    "tags": "from --tags",
    "empty": "no caption yet: trigger only",
}


@dataclass(frozen=True)
class Failure:
    """A file that was left untouched, and why (one line)."""

    path: Path
    message: str

    def line(self) -> str:
        return f"{self.path.name}: {self.message}"


@dataclass(frozen=True)
class ImageCaption:
    """The plan for one image."""

    image: Path
    caption_file: Path
    format: str | None = None
    source: CaptionSource = "empty"
    old_txt: str | None = None
    embedded: str | None = None
    caption: str | None = None
    image_changes: bool = False
    txt_changes: bool = False
    warnings: tuple[str, ...] = ()
    error: str | None = None
    # The --tags this image's caption did not have (all of them with --replace).
    tags_added: tuple[str, ...] = ()
    image_stamp: FileStamp | None = None
    txt_stamp: FileStamp | None = None

    @property
    def changes(self) -> bool:
        return self.error is None and (self.image_changes or self.txt_changes)

    def what_changes(self) -> str:
        """'image and .txt', 'image', '.txt' or '' for messages."""
        parts = []
        if self.image_changes:
            parts.append("image")
        if self.txt_changes:
            parts.append(self.caption_file.suffix)
        return " and ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": str(self.image),
            "caption_file": str(self.caption_file),
            "format": self.format,
            "source": self.source,
            "old_caption_file": self.old_txt,
            "old_embedded": self.embedded,
            "caption": self.caption,
            "image_changes": self.image_changes,
            "caption_file_changes": self.txt_changes,
            "warnings": list(self.warnings),
            "error": self.error,
            "tags_added": list(self.tags_added),
        }


@dataclass(frozen=True)
class CaptionPlan:
    """What `apply_captions` would do to a folder; nothing has been written."""

    folder: Path
    trigger: Trigger
    ext: str
    tags: str | None
    overwrite_generation_info: bool
    items: tuple[ImageCaption, ...]
    stale_temps: tuple[Path, ...] = ()
    # Captioned bytes computed while planning, reused by apply when the file is unchanged.
    embedded_data: dict[Path, bytes] = field(default_factory=dict, repr=False, compare=False)
    # --tags with --replace: the tags replace each caption instead of adding to it.
    replace_tags: bool = False

    @property
    def pending(self) -> list[ImageCaption]:
        return [i for i in self.items if i.changes]

    @property
    def failures(self) -> list[Failure]:
        return [Failure(i.image, i.error) for i in self.items if i.error is not None]

    @property
    def warnings(self) -> list[Failure]:
        return [Failure(i.image, w) for i in self.items for w in i.warnings]


@dataclass
class CaptionResult:
    """What `apply_captions` did."""

    plan: CaptionPlan
    images_written: list[Path] = field(default_factory=list)
    captions_written: list[Path] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    removed_temps: list[Path] = field(default_factory=list)
    interrupted: bool = False

    # How many of the plan's pending images were handled (written or failed).
    handled: int = 0

    @property
    def not_begun(self) -> int:
        """Pending images left as they were because the run was interrupted first."""
        return len(self.plan.pending) - self.handled


def plan_captions(
    folder: Path,
    trigger: str | Trigger,
    tags: str | None = None,
    ext: str = ".txt",
    overwrite_generation_info: bool = False,
    *,
    replace_tags: bool = False,
    transform: Transform | None = None,
    iterate: Iterate | None = None,
) -> CaptionPlan:
    """Read `folder` and plan every image's caption (see the module docstring)."""
    trig = trigger if isinstance(trigger, Trigger) else parse_trigger(trigger)
    ext = normalise_ext(ext)
    if tags is not None:
        try:
            split_tags(tags)
        except CaptionError as exc:
            raise InputError(f"--tags: {exc.message}", exc.hint) from exc
    require_no_pending_rename(folder, "caption")
    entries = require_images(folder)
    shared = shared_stems(entries)
    stale = tuple(leftover_temps(folder))
    items = []
    cache: dict[Path, bytes] = {}
    cached = 0
    for entry in iterate(entries) if iterate else entries:
        caption_file = folder / f"{entry.stem}{ext}"
        error = shared.get(entry.image) or caption_case_problem(entry, ext)
        if error:
            items.append(ImageCaption(entry.image, caption_file, error=error))
            continue
        item, data = _plan_one(
            entry.image,
            caption_file,
            trig,
            (tags, replace_tags, transform),
            overwrite_generation_info,
        )
        items.append(item)
        if data is not None and cached + len(data) <= EMBED_CACHE_BYTES:
            cache[entry.image] = data
            cached += len(data)
    return CaptionPlan(
        folder, trig, ext, tags, overwrite_generation_info, tuple(items), stale, cache, replace_tags
    )


def apply_captions(
    plan: CaptionPlan, *, iterate: Iterate | None = None, workers: int = APPLY_WORKERS
) -> CaptionResult:
    """Carry out `plan`: embed, write images then caption files, fsync folders once.

    Images are handled by `workers` threads: each image is still written before its
    caption file, but the fsyncs of different files overlap, which the file system can
    commit together. On Ctrl-C, files already started are finished (each write is atomic
    anyway), the rest are not begun, and the result says so (`interrupted`). The caller
    holds the folder's lock (locking.folder_lock), which also removed any temps a killed
    run left.
    """
    result = CaptionResult(plan, failures=plan.failures)
    folders: set[Path] = set()
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="caption")
    futures: list[Future[_Outcome]] = []
    seen: set[int] = set()

    def take(index: int, outcome: _Outcome) -> None:
        seen.add(index)
        result.handled += 1
        if outcome.image_written:
            result.images_written.append(outcome.item.image)
        if outcome.caption_written:
            result.captions_written.append(outcome.item.caption_file)
        if outcome.failure is not None:
            result.failures.append(outcome.failure)
        folders.update(outcome.folders)

    try:
        futures.extend(pool.submit(_apply_one, item, plan) for item in plan.pending)
        indexed = list(enumerate(futures))
        for index, future in iterate(indexed) if iterate else indexed:
            take(index, future.result())
    except KeyboardInterrupt:
        result.interrupted = True
        pool.shutdown(wait=True, cancel_futures=True)
        for index, future in enumerate(futures):
            finished = future.done() and not future.cancelled()
            if index not in seen and finished and future.exception() is None:
                take(index, future.result())
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
        for folder in sorted(folders):
            fsutil.fsync_dir(folder)
    return result


def _plan_one(
    image: Path,
    caption_file: Path,
    trigger: Trigger,
    given: tuple[str | None, bool, Transform | None],
    overwrite_generation_info: bool,
) -> tuple[ImageCaption, bytes | None]:
    from kohya_orchestrator.dataset.metadata import EmbedResult, embed_caption, read_embedded

    item = ImageCaption(image, caption_file)
    try:
        data, stamp = read_stamped(image)
        # A BMP (sd-scripts trains it) has no metadata: its caption is the caption file only.
        bmp = data[:2] == b"BM" and image.suffix.lower() == ".bmp"
        info = None if bmp else read_embedded(data)
        before = info.caption if info is not None else None
        fmt = info.format if info is not None else "bmp"
        item = replace(item, format=fmt, embedded=before, image_stamp=stamp)
        warnings = list(info.warnings) if info is not None else [BMP_NOTE]
        if still_written := still_being_written(warnings, stamp):
            raise CaptionError(still_written, None)
        label = None if bmp else mislabel_warning(image, fmt)
        if label:
            warnings.insert(0, label)
        old_txt, txt_stamp = read_caption_file(caption_file)
        item = replace(item, old_txt=old_txt, txt_stamp=txt_stamp)
        source, text = choose_source(old_txt, before, caption_file.name)
        tags, replace_tags, transform = given
        added: tuple[str, ...] = ()
        if transform is not None:
            text = join_tags(transform(image, split_tags(text)))
        if tags is not None:
            text, added = merge_tags(text, tags, replace=replace_tags)
            folded = {t.casefold() for t in trigger.tokens}
            added = tuple(t for t in added if t.casefold() not in folded)
            source = "tags" if source == "empty" or replace_tags else source
        caption = caption_with_trigger(text, trigger)
        embedded = (
            EmbedResult("png", data, False)
            if bmp
            else embed_caption(data, caption, overwrite_generation_info=overwrite_generation_info)
        )
        warnings.extend(w for w in embedded.warnings if w not in warnings)
        if embedded.changed and os.stat(image).st_nlink > 1:
            warnings.append(
                "has other hard links; only this name gets the captioned file, "
                "the other names keep the old one"
            )
        txt_changes = old_txt is None or old_txt not in (caption, f"{caption}\n")
        planned = replace(
            item,
            source=source,
            caption=caption,
            image_changes=embedded.changed,
            txt_changes=txt_changes,
            warnings=tuple(warnings),
            tags_added=added,
        )
        return planned, embedded.data if embedded.changed else None
    except OrchError as exc:
        return replace(item, error=exc.message), None
    except OSError as exc:
        return replace(item, error=os_message(exc, image)), None


@dataclass
class _Outcome:
    item: ImageCaption
    image_written: bool = False
    caption_written: bool = False
    failure: Failure | None = None
    folders: set[Path] = field(default_factory=set)


def _apply_one(item: ImageCaption, plan: CaptionPlan) -> _Outcome:
    assert item.caption is not None
    done = write_captioned(
        Target(item.image, item.caption_file, item.image_stamp, item.txt_stamp),
        item.caption,
        image_changes=item.image_changes,
        txt_changes=item.txt_changes,
        embedded=plan.embedded_data.get(item.image),
        overwrite_generation_info=plan.overwrite_generation_info,
    )
    failure = Failure(item.image, done.failure) if done.failure is not None else None
    return _Outcome(item, done.image_written, done.caption_written, failure, done.folders)


def source_name(source: CaptionSource) -> str:
    """Where a caption came from, as said in messages ("from the caption file")."""
    return _SOURCE_NAMES[source]
