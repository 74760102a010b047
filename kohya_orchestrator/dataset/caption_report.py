"""The caption check's report: one row per image, the folder's summary, the flags' meanings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kohya_orchestrator.dataset.captions import Trigger

TriggerSource = Literal["given", "guessed"]

FLAGS = {
    "unreadable": "the image or its caption file cannot be read",
    "shared-stem": "another image has the same stem: they would share one caption file",
    "no-caption": "no caption file and nothing embedded",
    "no-caption-file": "embedded caption but no caption file: sd-scripts reads only the file",
    "not-embedded": "caption file but nothing embedded in the image",
    "mismatch": "the caption file and the embedded caption differ",
    "no-trigger": "the caption does not start with the trigger",
    "untidy": "the caption file is not one clean line (line breaks, empty tags, BOM)",
    "extension": "the file's content is another format than its extension says",
    "caption-case": "the caption file's extension differs in case (.TXT): sd-scripts skips it",
    "trigger-only": "the caption is the trigger alone: nothing else is described",
    "misread": "sd-scripts would misread the image (rotation, transparency, 16-bit, CMYK, frames)",
}


@dataclass(frozen=True)
class CheckRow:
    """One image: its captions and what is flagged."""

    image: Path
    caption_file: Path
    format: str | None
    txt: str | None
    embedded: str | None
    generation_info: bool
    flags: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def caption(self) -> str | None:
        """The caption sd-scripts would use (the file's), else the embedded one."""
        return self.txt if self.txt is not None else self.embedded

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": str(self.image),
            "caption_file": str(self.caption_file),
            "format": self.format,
            "caption_file_text": self.txt,
            "embedded": self.embedded,
            "generation_info": self.generation_info,
            "flags": list(self.flags),
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class CaptionCheck:
    """The whole folder's check."""

    folder: Path
    ext: str
    trigger: Trigger | None
    trigger_source: TriggerSource | None
    rows: tuple[CheckRow, ...]

    @property
    def flagged(self) -> list[CheckRow]:
        return [r for r in self.rows if r.flags]

    def flag_counts(self) -> dict[str, int]:
        counts = {name: 0 for name in FLAGS}
        for row in self.rows:
            for flag in row.flags:
                counts[flag] += 1
        return {k: v for k, v in counts.items() if v}

    def to_dict(self) -> dict[str, Any]:
        trig = None
        if self.trigger is not None:
            trig = {
                "text": self.trigger.text,
                "tokens": list(self.trigger.tokens),
                "keep_tokens": self.trigger.keep_tokens,
                "source": self.trigger_source,
            }
        return {
            "folder": str(self.folder),
            "caption_extension": self.ext,
            "trigger": trig,
            "images": [r.to_dict() for r in self.rows],
            "summary": {
                "images": len(self.rows),
                "flagged": len(self.flagged),
                "flags": self.flag_counts(),
            },
        }
