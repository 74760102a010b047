"""Writing one image's caption: the image, then its caption file, each checked against what
planning read (size, mtime, inode, CRC-32) and once more just before its replacing rename.

A file that changed since it was read is left untouched and reported; so is a JPEG cut
inside its image data that was modified moments ago (another program is probably still
writing it: replacing it would orphan the rest of what that program writes).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from kohya_orchestrator import fsutil
from kohya_orchestrator.dataset.caption_check import FileStamp, read_stamped
from kohya_orchestrator.errors import CaptionError, OrchError

# A JPEG cut inside its image data is captioned with a warning (a damaged file is still
# the user's picture), unless it was modified this recently.
STILL_WRITING_SECONDS = 10.0
RETRY_HINT = "Run the command again once nothing else is writing to the folder."


@dataclass(frozen=True)
class Target:
    """One image and its caption file, with their stamps as planning read them."""

    image: Path
    caption_file: Path
    image_stamp: FileStamp | None
    txt_stamp: FileStamp | None


@dataclass
class Written:
    """What `write_captioned` did: which files it replaced, and why it stopped (if it did)."""

    image_written: bool = False
    caption_written: bool = False
    failure: str | None = None
    folders: set[Path] = field(default_factory=set)


def write_captioned(
    target: Target,
    caption: str,
    *,
    image_changes: bool,
    txt_changes: bool,
    embedded: bytes | None,
    overwrite_generation_info: bool,
) -> Written:
    """Embed `caption` in the image (reusing `embedded`, the bytes planning computed, when
    given) and write the caption file; never raises for one file's problem."""
    done = Written()
    try:
        _write(
            target, caption, image_changes, txt_changes, embedded, overwrite_generation_info, done
        )
    except OrchError as exc:
        done.failure = exc.message
    except OSError as exc:
        done.failure = os_message(exc, target.image)
    return done


def _write(
    target: Target,
    caption: str,
    image_changes: bool,
    txt_changes: bool,
    embedded: bytes | None,
    overwrite: bool,
    done: Written,
) -> None:
    from kohya_orchestrator.dataset.metadata import embed_caption

    if txt_changes and _txt_now(target.caption_file) != target.txt_stamp:
        raise changed(target.caption_file.name)  # before the image: both stay as they were
    if image_changes:
        data, stamp = read_stamped(target.image)
        if stamp != target.image_stamp:
            raise changed("the image")
        new = embedded
        if new is None:
            result = embed_caption(data, caption, overwrite_generation_info=overwrite)
            new = result.data if result.changed else None
        if new is not None:
            try:
                fsutil.atomic_write_bytes(target.image, new, sync_dir=False, expect=stamp.stamp)
            except fsutil.FileChangedError:
                raise changed("the image") from None
            done.folders.add(Path(os.path.realpath(target.image)).parent)
            done.image_written = True
    if txt_changes:
        try:
            if _txt_now(target.caption_file) != target.txt_stamp:
                raise fsutil.FileChangedError()
            fsutil.atomic_write_text(
                target.caption_file, f"{caption}\n", sync_dir=False, expect=_expect(target)
            )
        except fsutil.FileChangedError:
            name = target.caption_file.name
            if done.image_written:
                raise CaptionError(
                    f"the image was captioned, but {name} changed since it was read; "
                    f"{name} was left untouched",
                    RETRY_HINT,
                ) from None
            raise changed(name) from None
        done.folders.add(Path(os.path.realpath(target.caption_file)).parent)
        done.caption_written = True


def _txt_now(path: Path) -> FileStamp | None:
    return read_stamped(path)[1] if os.path.lexists(path) else None


def _expect(target: Target) -> fsutil.Stamp:
    stamp = target.txt_stamp
    return stamp.stamp if stamp is not None and stamp.stamp is not None else fsutil.ABSENT


def changed(what: str) -> CaptionError:
    return CaptionError(f"{what} changed since it was read; left untouched", RETRY_HINT)


def still_being_written(warnings: list[str], stamp: FileStamp) -> str | None:
    """The message for a truncated JPEG modified moments ago, else None."""
    from kohya_orchestrator.dataset.metadata.jpeg import TRUNCATED_SCAN

    if TRUNCATED_SCAN not in warnings:
        return None
    age = time.time() - stamp.mtime_ns / 1e9
    if age >= STILL_WRITING_SECONDS:
        return None
    return (
        f"the JPEG ends inside its image data and was modified {max(age, 0.0):.1f} s ago: "
        "another program may still be writing it; left untouched (run caption again once "
        "the file is complete)"
    )


def os_message(exc: OSError, image: Path) -> str:
    """An OSError about one image's files, in one line naming the file it was about."""
    reason = exc.strerror or str(exc)
    if not exc.filename:
        return reason
    where = Path(os.fsdecode(exc.filename))
    if where.name.startswith(fsutil.TEMP_PREFIX):
        return f"cannot write in {where.parent}: {reason}"
    return reason if where.name == image.name else f"{where.name}: {reason}"
