"""The sd-scripts arguments a project's settings mean: one loop over the settings' declarations.

Each setting says (schema.py) which sd-scripts key it renders to and how; the paths come from
the project's layout, the network module and fixed keys from the trainer registry, and the
raw [sd_scripts] keys go last, as given.
"""

from __future__ import annotations

from typing import Any

from kohya_orchestrator.config.schema import SPECS, Settings
from kohya_orchestrator.config.spec import (
    AS_IS,
    CLIP_SKIP,
    FLAG,
    SAMPLING,
    TEXT_ENCODER_LR,
    WARMUP,
    Spec,
)
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.sdscripts.trainers import Trainer


def _rendered(spec: Spec, value: Any, settings: Settings, trainer: Trainer) -> dict[str, Any]:
    """The arguments one setting renders to (none, when it does not apply)."""
    if spec.render == FLAG:
        return {value: True}
    if spec.arg is None:
        return {}
    if spec.render == AS_IS:
        return {spec.arg: value}
    if spec.render == WARMUP:
        # A float below 1 is a ratio of the total steps for sd-scripts.
        return {spec.arg: value if value > 0 else 0}
    if spec.render == CLIP_SKIP:
        return {spec.arg: value} if trainer.uses_clip_skip else {}
    if spec.render == SAMPLING:
        return {spec.arg: value} if settings.sampling else {}
    if spec.render == TEXT_ENCODER_LR:
        # One number: every commit reads it (a list from 2025 on, for distinct rates per text
        # encoder; v0.9.1 crashes on a list minutes into the run). Distinct rates are a raw
        # [sd_scripts] text_encoder_lr = [a, b], checked against the commit's facts.
        return {spec.arg: value}
    raise AssertionError(f"unknown render rule {spec.render!r} of {spec.key}")


def layout_args(settings: Settings, layout: Layout) -> dict[str, Any]:
    """The paths of the project folder, as sd-scripts keys (absolute: it runs elsewhere)."""
    args: dict[str, Any] = {"train_data_dir": str(layout.img_dir)}
    if settings.reg:
        args["reg_data_dir"] = str(layout.reg_dir)
    args |= {"output_dir": str(layout.model_dir), "logging_dir": str(layout.log_dir)}
    if settings.sampling:
        args["sample_prompts"] = str(layout.sample_prompts_file)
    return args


def build_args(settings: Settings, layout: Layout, trainer: Trainer) -> dict[str, Any]:
    """The sd-scripts arguments the settings mean ([sd_scripts] last, so it wins)."""
    args = layout_args(settings, layout)
    for spec in SPECS:
        args |= _rendered(spec, getattr(settings, spec.key), settings, trainer)
    args["network_module"] = trainer.network_module
    args |= trainer.fixed_args
    args |= settings.sd_scripts
    return args
