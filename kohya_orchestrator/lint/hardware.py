"""The hardware rules of `validate.lint`: what fails on Apple Silicon (MPS) or without CUDA.

Under the "apple-silicon" profile these are errors; "cpu" keeps the NVIDIA-only ones as
errors; "cuda" drops them; no profile (a config from elsewhere) reports them as warnings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kohya_orchestrator.lint.report import RuleInput, shown


def is_8bit(values: Mapping[str, Any]) -> str | None:
    """The option that asks for bitsandbytes (NVIDIA only), if any."""
    opt = values.get("optimizer_type", "")
    if isinstance(opt, str) and (opt.lower().endswith("8bit") or opt.lower().startswith("paged")):
        return f"'optimizer_type' = {shown(opt)}"
    if values.get("use_8bit_adam"):
        return "'use_8bit_adam' = true"
    return None


def data_loader(r: RuleInput) -> None:
    """torch's DataLoader refuses persistent workers without workers, on every machine."""
    values, report = r.values, r.report
    workers = values.get("max_data_loader_n_workers")
    if values.get("persistent_data_loader_workers") is True and workers == 0:
        report.error(
            "persistent_data_loader_workers",
            "'persistent_data_loader_workers' = true with max_data_loader_n_workers = 0: "
            "torch's DataLoader stops with a ValueError (persistent workers need workers)",
            "set persistent_data_loader_workers = false, or max_data_loader_n_workers = 2",
        )


def platform(r: RuleInput) -> None:
    values, report, profile = r.values, r.report, r.profile
    if profile == "cuda":
        return
    found: list[tuple[str, str, str, bool]] = []  # key, message, hint, fails on cpu too
    if values.get("xformers"):
        found.append(
            (
                "xformers",
                "'xformers' = true needs the xformers package, which is NVIDIA-only "
                "(ImportError on a Mac)",
                "use sdpa = true",
                True,
            )
        )
    eight = is_8bit(values)
    if eight:
        key = eight.split("'")[1]
        found.append(
            (
                key,
                f"{eight} needs bitsandbytes, which is NVIDIA-only",
                'use optimizer_type = "AdamW"',
                True,
            )
        )
    mp = values.get("mixed_precision")
    if mp in ("fp16", "bf16"):
        found.append(
            (
                "mixed_precision",
                f"'mixed_precision' = {shown(mp)} fails on Apple Silicon (MPS)",
                'use mixed_precision = "no"',
                mp == "fp16",
            )
        )
    for key in ("full_fp16", "full_bf16", "fp8_base", "fp8_base_unet"):
        if values.get(key):
            found.append(
                (
                    key,
                    f"'{key}' = true fails on Apple Silicon (MPS)",
                    f"remove {key}",
                    key == "full_fp16",
                )
            )
    split = values.get("validation_split")
    if isinstance(split, int | float) and split > 0:
        found.append(
            (
                "validation_split",
                f"'validation_split' = {split} crashes on Apple Silicon: sd-scripts calls a "
                "CUDA-only random function there",
                "use validation_split = 0",
                False,
            )
        )
    for key, message, hint, on_cpu in found:
        if profile == "apple-silicon" or (profile == "cpu" and on_cpu):
            report.error(key, message, f"{hint} (profile {profile})")
        elif profile is None:
            report.warn(key, message, f"{hint} on a Mac; fine on NVIDIA")
