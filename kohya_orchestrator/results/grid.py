"""`kohya-orch grid`: an epoch x prompt contact sheet of sd-scripts' sample images.

sd-scripts (train_util.sample_image_inference) writes per-epoch samples to
`<output_dir>/sample/<output_name>_e<epoch:06d>_<prompt index:02d>_<YYYYmmddHHMMSS>[_<seed>].png`
(no `<output_name>_` prefix when output_name is unset; epoch 0 with sample_at_first;
`<steps:06d>` instead of `e<epoch>` for step-based samples, which the grid leaves out).
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kohya_orchestrator.errors import ResultsError
from kohya_orchestrator.fsutil import (
    ABSENT,
    FileChangedError,
    atomic_write_bytes,
    read_regular_text,
)
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.locking import folder_lock

if TYPE_CHECKING:
    from PIL import Image as PILImage
    from PIL import ImageDraw, ImageFont

SAMPLE_NAME = re.compile(
    r"(?:(?P<name>.*)_)?e(?P<epoch>\d{6})_(?P<index>\d{2,})_(?P<time>\d{14})(?:_(?P<seed>-?\d+))?\.png"
)
CELL_MAX = 256  # px: a cell is at most this wide (samples are scaled down, never up)
CELL_MIN = 48
WIDTH_CAP = 4096  # px: the whole sheet; more epochs make narrower cells
LABEL_WIDTH = 180
HEADER_HEIGHT = 28
PAD = 4
BACKGROUND = (255, 255, 255)
MISSING_FILL = (210, 210, 210)
MISSING_CROSS = (140, 140, 140)
TEXT = (20, 20, 20)
FONT_SIZE = 14


@dataclass(frozen=True)
class Sample:
    """One sample image, as its name describes it."""

    path: Path
    name: str | None
    epoch: int
    index: int
    time: str
    seed: int | None


@dataclass
class GridPlan:
    """Which image goes in which cell, the sheet's geometry, and notes for the user."""

    columns: list[int]  # epochs, left to right
    rows: list[int]  # prompt indices, top to bottom
    cells: dict[tuple[int, int], Path]  # (row index, epoch) -> image
    labels: dict[int, str]  # prompt index -> row label text
    cell_width: int
    cell_height: int
    notes: list[str] = field(default_factory=list)

    @property
    def width(self) -> int:
        return LABEL_WIDTH + len(self.columns) * (self.cell_width + PAD) + PAD

    @property
    def height(self) -> int:
        return HEADER_HEIGHT + len(self.rows) * (self.cell_height + PAD) + PAD

    @property
    def missing(self) -> list[tuple[int, int]]:
        return [(r, e) for r in self.rows for e in self.columns if (r, e) not in self.cells]

    def cell_box(self, row: int, epoch: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of a cell, right/bottom exclusive."""
        x = LABEL_WIDTH + PAD + self.columns.index(epoch) * (self.cell_width + PAD)
        y = HEADER_HEIGHT + PAD + self.rows.index(row) * (self.cell_height + PAD)
        return x, y, x + self.cell_width, y + self.cell_height


def parse_sample_name(path: Path) -> Sample | None:
    match = SAMPLE_NAME.fullmatch(path.name)
    if match is None:
        return None
    seed = match.group("seed")
    return Sample(
        path=path,
        name=match.group("name"),
        epoch=int(match.group("epoch")),
        index=int(match.group("index")),
        time=match.group("time"),
        seed=int(seed) if seed is not None else None,
    )


def read_prompts(path: Path) -> list[str]:
    """Prompts of a .txt sample prompts file, as sd-scripts numbers them.

    sd-scripts keeps a line when its stripped text is non-empty and its first character
    (unstripped) is not `#`; per-line options start at " --".
    """
    try:
        lines = read_regular_text(path).splitlines()
    except (FileNotFoundError, IsADirectoryError):
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"Cannot read the sample prompts {path}: {exc}") from None
    return [ln.strip().split(" --")[0] for ln in lines if ln.strip() and ln[0] != "#"]


def find_samples(sample_dir: Path) -> list[Sample]:
    if not sample_dir.is_dir():
        return []
    found = (parse_sample_name(p) for p in sorted(sample_dir.iterdir()) if p.is_file())
    return [s for s in found if s is not None]


def latest_run_start(samples: list[Sample]) -> str:
    """The time of the latest run's first sample: the newest at the lowest epoch and prompt.

    Each run samples its first epoch before the later ones, prompt by prompt, so the newest
    sample of the lowest (epoch, prompt) present is the first one the latest run wrote. A
    resumed run starts past that epoch and its samples are newer still.
    """
    epoch, index = min((s.epoch, s.index) for s in samples)
    return max(s.time for s in samples if (s.epoch, s.index) == (epoch, index))


def drop_earlier_runs(samples: list[Sample]) -> tuple[list[Sample], int]:
    """The samples of the latest run (and runs resumed from it), and how many were older.

    sd-scripts never deletes old samples: after a new run with fewer epochs (`train
    --force`), the earlier run's later epochs would otherwise fill columns of their own.
    """
    if not samples:
        return samples, 0
    start = latest_run_start(samples)
    kept = [s for s in samples if s.time >= start]
    return kept, len(samples) - len(kept)


def plan_grid(layout: Layout, name: str | None = None) -> GridPlan:
    """Collect DEST's samples into a grid plan; `name` picks one output name's samples."""
    from PIL import Image

    samples = find_samples(layout.sample_dir)
    notes: list[str] = []
    if name is None:
        names = Counter(s.name for s in samples)
        if len(names) > 1:
            name = max(sorted(names, key=str), key=lambda n: names[n])
            notes.append(f"samples of {len(names)} output names; showing {name}")
        elif names:
            name = next(iter(names))
    samples = [s for s in samples if s.name == name]
    if not samples:
        raise ResultsError(
            f"No sample images in {layout.sample_dir}.",
            "Turn on sampling in the settings (sample_every_n_epochs) before training; "
            "sd-scripts then writes one image per prompt and epoch there.",
        )
    samples, earlier = drop_earlier_runs(samples)
    if earlier:
        notes.append(f"{earlier} sample(s) of an earlier run left out")
    newest: dict[tuple[int, int], Sample] = {}
    for s in samples:
        old = newest.get((s.index, s.epoch))
        if old is None or (s.time, s.path.stat().st_mtime) > (old.time, old.path.stat().st_mtime):
            newest[(s.index, s.epoch)] = s
    prompts = read_prompts(layout.sample_prompts_file)
    rows = sorted({s.index for s in samples} | set(range(len(prompts))))
    columns = sorted({s.epoch for s in samples})
    labels = {i: prompts[i] if i < len(prompts) else f"prompt {i}" for i in rows}
    ratio = 1.0
    for s in newest.values():
        try:
            with Image.open(s.path) as im:
                ratio = max(ratio, im.height / im.width)
        except (OSError, Image.DecompressionBombError):
            pass  # drawn as a missing cell later, with a note
    usable = WIDTH_CAP - LABEL_WIDTH - PAD * (len(columns) + 1)
    cell_w = max(CELL_MIN, min(CELL_MAX, usable // len(columns)))
    return GridPlan(
        columns=columns,
        rows=rows,
        cells={key: s.path for key, s in newest.items()},
        labels=labels,
        cell_width=cell_w,
        cell_height=round(cell_w * ratio),
        notes=notes,
    )


def render_grid(plan: GridPlan) -> tuple[PILImage.Image, list[str]]:
    """Draw the sheet; unreadable images become marked empty cells (listed in the notes)."""
    from PIL import Image, ImageDraw

    sheet = Image.new("RGB", (plan.width, plan.height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = _font()
    notes: list[str] = []
    for epoch in plan.columns:
        left, _, right, _ = plan.cell_box(plan.rows[0], epoch)
        text = _column_label(epoch, right - left, draw, font)
        width = draw.textlength(text, font=font)
        draw.text((left + (right - left - width) / 2, 6), text, fill=TEXT, font=font)
    for row in plan.rows:
        _, top, _, bottom = plan.cell_box(row, plan.columns[0])
        lines = _wrap(plan.labels[row], LABEL_WIDTH - 2 * PAD, bottom - top, draw, font)
        draw.multiline_text((PAD, top), "\n".join(lines), fill=TEXT, font=font, spacing=2)
        for epoch in plan.columns:
            box = plan.cell_box(row, epoch)
            path = plan.cells.get((row, epoch))
            if path is None or not _paste(sheet, path, box):
                if path is not None:
                    notes.append(f"{path.name}: unreadable, shown as missing")
                draw_missing(draw, box)
    return sheet, notes


def draw_missing(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int]) -> None:
    """A grey box with a cross: no sample for this epoch and prompt."""
    left, top, right, bottom = box
    draw.rectangle((left, top, right - 1, bottom - 1), fill=MISSING_FILL)
    draw.line((left, top, right - 1, bottom - 1), fill=MISSING_CROSS, width=3)
    draw.line((left, bottom - 1, right - 1, top), fill=MISSING_CROSS, width=3)


def default_grid_path(layout: Layout) -> Path:
    return layout.compare_dir / "grid.png"


def write_grid(
    dest: Path, out: Path | None = None, *, force: bool = False
) -> tuple[Path, GridPlan, list[str]]:
    """Plan, draw and atomically write the sheet; returns (path, plan, notes).

    The default DEST/compare/grid.png is this tool's own output and is replaced; any other
    existing file is only replaced with `force`.
    """
    layout = Layout.at(dest)
    target = out if out is not None else default_grid_path(layout)
    if out is not None and target.exists() and not force:
        raise ResultsError(
            f"{target} already exists.", "Use --force to replace it, or give another --out."
        )
    if target.suffix.lower() != ".png":
        raise ResultsError(f"{target}: the grid is a PNG; give a file name ending in .png.")
    if not layout.dest.is_dir():
        raise ResultsError(f"Not a project folder: {layout.dest}")
    with folder_lock(layout.dest, "grid"):
        plan = plan_grid(layout)
        sheet, notes = render_grid(plan)
        buf = io.BytesIO()
        sheet.save(buf, format="PNG", optimize=False)
        target.parent.mkdir(parents=True, exist_ok=True)
        # An --out file that appeared while drawing is not ours to replace without --force.
        expect = ABSENT if out is not None and not force and not target.exists() else None
        try:
            atomic_write_bytes(target, buf.getvalue(), expect=expect)
        except FileChangedError:
            raise ResultsError(
                f"{target} appeared while the grid was drawn; not overwritten.",
                "Use --force to replace it, or give another --out.",
            ) from None
    return target, plan, plan.notes + notes


def _paste(sheet: PILImage.Image, path: Path, box: tuple[int, int, int, int]) -> bool:
    from PIL import Image

    left, top, right, bottom = box
    try:
        with Image.open(path) as im:
            im.load()
            thumb = im.convert("RGB")
    except (OSError, Image.DecompressionBombError):
        # A size Pillow refuses to open (a decompression bomb) is never decoded either.
        return False
    thumb.thumbnail((right - left, bottom - top), Image.Resampling.LANCZOS)
    x = left + (right - left - thumb.width) // 2
    y = top + (bottom - top - thumb.height) // 2
    sheet.paste(thumb, (x, y))
    return True


def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except (OSError, TypeError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _column_label(
    epoch: int,
    width: int,
    draw: ImageDraw.ImageDraw,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
) -> str:
    if epoch == 0:
        return "start"
    long = f"epoch {epoch}"
    return long if draw.textlength(long, font=font) <= width else str(epoch)


def _wrap(
    text: str,
    width: int,
    height: int,
    draw: ImageDraw.ImageDraw,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
) -> list[str]:
    """The prompt's first words, wrapped to the label column, cut with … at the cell height."""
    max_lines = max(1, height // (FONT_SIZE + 4))
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and draw.textlength(candidate, font=font) > width:
            lines.append(current)
            candidate = word
        current = candidate
    if current:
        lines.append(current)
    cut = len(lines) > max_lines
    lines = lines[:max_lines]
    # A single long word, or text past the cell's height, ends in an ellipsis.
    for i, line in enumerate(lines):
        if draw.textlength(line, font=font) > width or (cut and i == len(lines) - 1):
            lines[i] = _ellipsize(line, width, draw, font)
    return lines


def _ellipsize(
    line: str,
    width: int,
    draw: ImageDraw.ImageDraw,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
) -> str:
    while line and draw.textlength(line + "…", font=font) > width:
        line = line[:-1]
    return line + "…"
