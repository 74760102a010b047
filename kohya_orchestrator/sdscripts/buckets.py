"""sd-scripts' aspect-ratio buckets, computed the way library/model_util.py and BucketManager do.

make_bucket_resolutions mirrors model_util.make_bucket_resolutions; BucketSelector.select
mirrors BucketManager.select_bucket (with and without `bucket_no_upscale`), including its
float arithmetic and tie-breaking (the first bucket in sorted order wins a tie).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Reso = tuple[int, int]


def make_bucket_resolutions(
    max_reso: Reso, min_size: int = 256, max_size: int = 1024, divisible: int = 64
) -> list[Reso]:
    """The predefined bucket resolutions for a training resolution, sorted ascending."""
    max_width, max_height = max_reso
    max_area = max_width * max_height
    resos: set[Reso] = set()
    width = int(math.sqrt(max_area) // divisible) * divisible
    resos.add((width, width))
    width = min_size
    while width <= max_size:
        height = min(max_size, int((max_area // width) // divisible) * divisible)
        if height >= min_size:
            resos.add((width, height))
            resos.add((height, width))
        width += divisible
    return sorted(resos)


def adjust_bucket_range(min_size: int, max_size: int, steps: int) -> tuple[int, int]:
    """sd-scripts' adjust_min_max_bucket_reso_by_steps: min rounds down, max rounds up to `steps`.

    sd-scripts does this (with a warning) before its range assertions and before it makes the
    buckets, so a plan or a lint that skips it sees buckets and errors sd-scripts never has.
    """
    if steps <= 0:
        return min_size, max_size
    if min_size % steps:
        min_size -= min_size % steps
    if max_size % steps:
        max_size += steps - max_size % steps
    return min_size, max_size


def round_to_steps(x: float, steps: int) -> int:
    """BucketManager.round_to_steps: round half up, then down to a multiple of `steps`."""
    n = int(x + 0.5)
    return n - n % steps


@dataclass
class BucketSelector:
    """Assigns images to buckets as one sd-scripts dataset does.

    `enable_bucket=False` gives the single bucket of the training resolution.
    """

    resolution: Reso
    enable_bucket: bool = True
    no_upscale: bool = False
    min_size: int = 256
    max_size: int = 1024
    steps: int = 64

    def __post_init__(self) -> None:
        self.max_area = self.resolution[0] * self.resolution[1]
        if self.enable_bucket:
            self.min_size, self.max_size = adjust_bucket_range(
                self.min_size, self.max_size, self.steps
            )
        if not self.enable_bucket:
            self.predefined: list[Reso] = [self.resolution]
        elif self.no_upscale:
            self.predefined = []
        else:
            self.predefined = make_bucket_resolutions(
                self.resolution, self.min_size, self.max_size, self.steps
            )
        self._set = set(self.predefined)
        self._ratios = [w / h for w, h in self.predefined]
        self._cache: dict[Reso, Reso] = {}

    def select(self, width: int, height: int) -> Reso:
        """The bucket resolution of an image of this size."""
        key = (width, height)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._select(width, height)
            self._cache[key] = hit
        return hit

    def _select(self, width: int, height: int) -> Reso:
        aspect = width / height
        if not self.enable_bucket or not self.no_upscale:
            if (width, height) in self._set:
                return (width, height)
            best = 0
            best_err = abs(self._ratios[0] - aspect)
            for i in range(1, len(self._ratios)):
                err = abs(self._ratios[i] - aspect)
                if err < best_err:
                    best, best_err = i, err
            return self.predefined[best]
        if width * height > self.max_area:
            resized_width = math.sqrt(self.max_area * aspect)
            resized_height = self.max_area / resized_width
            b_width_rounded = round_to_steps(resized_width, self.steps)
            b_height_in_wr = round_to_steps(b_width_rounded / aspect, self.steps)
            ar_width_rounded = b_width_rounded / b_height_in_wr
            b_height_rounded = round_to_steps(resized_height, self.steps)
            b_width_in_hr = round_to_steps(b_height_rounded * aspect, self.steps)
            ar_height_rounded = b_width_in_hr / b_height_rounded
            if abs(ar_width_rounded - aspect) < abs(ar_height_rounded - aspect):
                resized = (b_width_rounded, int(b_width_rounded / aspect + 0.5))
            else:
                resized = (int(b_height_rounded * aspect + 0.5), b_height_rounded)
        else:
            resized = (width, height)
        return (resized[0] - resized[0] % self.steps, resized[1] - resized[1] % self.steps)

    @property
    def smallest(self) -> Reso | None:
        """The smallest predefined bucket by area (None with bucket_no_upscale)."""
        if not self.predefined:
            return None
        return min(self.predefined, key=lambda r: (r[0] * r[1], r))


def parse_resolution(value: object) -> Reso | None:
    """sd-scripts' reading of `resolution`: "768" or "768,768" (a string); None if unusable."""
    if not isinstance(value, str):
        return None
    parts = [p.strip() for p in value.split(",")]
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        return None
    if len(nums) == 1:
        nums = nums * 2
    if len(nums) != 2 or nums[0] <= 0 or nums[1] <= 0:
        return None
    return (nums[0], nums[1])
