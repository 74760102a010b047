"""The status line of a run: epoch, step / total, s/step, time left, read from sd-scripts'
own output (its `epoch 3/15` lines and tqdm's `steps:` bar with `avr_loss=`).

`ProgressReader.feed(text)` takes the trainer's output as it comes and splits it into the
lines to pass on and the progress updates, which it folds into one `Progress`.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

_EPOCH = re.compile(r"^\s*epoch (\d+)/(\d+)\s*$")
_BAR = re.compile(r"steps:.*?(\d+)/(\d+) \[")
_RATE = re.compile(r"(\d+(?:\.\d+)?)(s/it|it/s)")
_LOSS = re.compile(r"avr_loss=([0-9.eE+-]+)")


def duration(seconds: float) -> str:
    """`1h05m`, `4m10s`, `12s`."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


@dataclass
class Progress:
    """What the run has told so far."""

    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None
    total: int | None = None
    seconds_per_step: float | None = None
    loss: float | None = None

    @property
    def seconds_left(self) -> float | None:
        if None in (self.step, self.total, self.seconds_per_step):
            return None
        assert self.step is not None and self.total is not None
        assert self.seconds_per_step is not None
        return max(0, self.total - self.step) * self.seconds_per_step

    def line(self) -> str:
        """`epoch 2/15  step 34/240  1.52 s/step  5m13s left  loss 0.0812`."""
        parts = []
        if self.epoch is not None:
            parts.append(f"epoch {self.epoch}/{self.epochs}")
        if self.step is not None:
            parts.append(f"step {self.step}/{self.total}")
        if self.seconds_per_step is not None:
            parts.append(f"{self.seconds_per_step:.2f} s/step")
        left = self.seconds_left
        if left is not None:
            parts.append(f"{duration(left)} left")
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4g}")
        return "  ".join(parts)


class ProgressReader:
    """Splits output into lines to show and progress updates (see the module docstring)."""

    def __init__(self) -> None:
        self.progress = Progress()
        self._pending = ""

    def feed(self, text: str) -> tuple[list[str], bool]:
        """(complete lines that are not progress bars, whether the progress changed)."""
        self._pending += text
        lines: list[str] = []
        changed = False
        while True:
            cut = min(
                (i for i in (self._pending.find("\r"), self._pending.find("\n")) if i >= 0),
                default=-1,
            )
            if cut < 0:
                break
            segment, self._pending = self._pending[:cut], self._pending[cut + 1 :]
            if self._read(segment):
                changed = True
            elif segment.strip():
                lines.append(segment)
        if self._pending and _BAR.search(self._pending) and self._read(self._pending):
            changed = True
        return lines, changed

    def _read(self, segment: str) -> bool:
        """Fold one segment in; True when it was progress (epoch line or bar)."""
        p = self.progress
        epoch = _EPOCH.match(segment)
        if epoch:
            p.epoch, p.epochs = int(epoch.group(1)), int(epoch.group(2))
            return True
        bar = _BAR.search(segment)
        if not bar:
            return False
        p.step, p.total = int(bar.group(1)), int(bar.group(2))
        for value, unit in _RATE.findall(segment[bar.end() :]):
            number = float(value)
            if number > 0:
                p.seconds_per_step = number if unit == "s/it" else 1.0 / number
        loss = _LOSS.search(segment)
        if loss:
            with contextlib.suppress(ValueError):  # `avr_loss=nan` reads, `=-` does not
                p.loss = float(loss.group(1))
        return True
