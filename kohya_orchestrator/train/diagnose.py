"""Known training failures: the error text sd-scripts, torch or accelerate prints -> cause and fix.

The patterns are the messages these programs really print (sd-scripts' library/train_util.py
and train_network.py, torch's allocators, accelerate's Accelerator), so a failure buried
in a long log becomes one line a person can act on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# The part of a log that is searched: the error is near the end, the log can be huge.
SCAN_BYTES = 256 * 1024


@dataclass(frozen=True)
class Diagnosis:
    """One known failure: a short key, its cause, and the fix."""

    key: str
    cause: str
    fix: str

    def line(self) -> str:
        return f"{self.cause} Fix: {self.fix}"


@dataclass(frozen=True)
class _Rule:
    key: str
    pattern: re.Pattern[str]
    cause: str
    fix: str


def _rule(key: str, pattern: str, cause: str, fix: str) -> _Rule:
    return _Rule(key, re.compile(pattern, re.IGNORECASE), cause, fix)


# The latest match wins; on the same line, the rule listed first (so specific rules first:
# bitsandbytes and xformers before "missing module").
_RULES: tuple[_Rule, ...] = (
    _rule(
        "mixed-precision-mps",
        r"(fp16|bf16) mixed precision with MPS device requires"
        r"|mixed precision requires a device in .*\(not 'mps'\)"
        r"|BFloat16 is not supported on MPS"
        r"|Attempting to unscale FP16 gradients"
        r"|MPS.*(float16|bfloat16|half).*not supported",
        "fp16/bf16 mixed precision failed on Apple Silicon (MPS).",
        'set mixed_precision = "no" in kohya-orch.toml (or --set mixed_precision=no).',
    ),
    _rule(
        "bitsandbytes",
        r"No bitsandbytes / |No module named 'bitsandbytes'"
        r"|bitsandbytes was compiled without GPU support|bitsandbytes.*(CUDA|GPU).*not",
        "the 8-bit optimizer needs bitsandbytes, which works only on NVIDIA GPUs.",
        'use optimizer = "AdamW" (not AdamW8bit) in kohya-orch.toml.',
    ),
    _rule(
        "xformers",
        r"No xformers / |No module named 'xformers'",
        "xformers attention is on, but xformers is not installed (it is NVIDIA-only).",
        'set attention = "sdpa" in kohya-orch.toml (or --set attention=sdpa).',
    ),
    _rule(
        "oom-mps",
        r"MPS backend out of memory",
        "the Mac ran out of GPU memory (MPS).",
        "lower batch_size or resolution, turn on gradient_checkpointing and cache_latents, "
        "or set network_train_unet_only; close other apps.",
    ),
    _rule(
        "oom-cuda",
        r"CUDA out of memory|OutOfMemoryError",
        "the GPU ran out of memory (CUDA).",
        "lower batch_size or resolution, turn on gradient_checkpointing and cache_latents.",
    ),
    _rule(
        "no-data",
        r"No data found\. Please verify",
        "sd-scripts found no images: train_data_dir must hold folders named "
        "<repeats>_<name> (e.g. img/7_yumoto_hakone) with the images inside.",
        "run `kohya-orch prepare` again, or rename the folder to <repeats>_<name>.",
    ),
    _rule(
        "image-too-large",
        r"image too large, but cropping and bucketing are disabled|image size is small / ",
        "with buckets off every image must be exactly the training resolution.",
        "turn buckets on (enable_bucket = true) or resize the images to the resolution.",
    ),
    _rule(
        "constant-warmup",
        r"does not require `num_warmup_steps`",
        "the constant scheduler does not take warmup steps.",
        'use lr_scheduler = "constant_with_warmup", or set warmup_ratio = 0.',
    ),
    _rule(
        "model-damaged",
        r"SafetensorError: Error while deserializing header",
        "a .safetensors file (usually the base model) is damaged or incomplete, "
        "e.g. an interrupted download.",
        "download the checkpoint again and check its size; `kohya-orch doctor DEST` reads "
        "its header.",
    ),
    _rule(
        "torchvision-mismatch",
        r"operator torchvision::nms does not exist",
        "torchvision was built for another torch than the one installed.",
        "install the torchvision release that matches torch (pip install torchvision==<its "
        "pair>) in sd-scripts' environment.",
    ),
    _rule(
        "tokenizer-offline",
        r"couldn't connect to 'https://huggingface\.co'|Can't load tokenizer for"
        r"|LocalEntryNotFoundError|offline mode is enabled|HF_HUB_OFFLINE",
        "the CLIP tokenizers could not be downloaded (no network) and are not cached.",
        "run once with network, or pass tokenizer_cache_dir with the tokenizer folders "
        "(`kohya-orch tokenizers build DIR` builds them offline, then --set "
        "sd_scripts.tokenizer_cache_dir=DIR).",
    ),
)

_MISSING_MODULE = re.compile(r"ModuleNotFoundError: No module named '([^']+)'")


def _last_line_start(pattern: re.Pattern[str], text: str) -> tuple[int, re.Match[str] | None]:
    """Where the line holding the pattern's last match begins, and that match (-1, None)."""
    matches = list(pattern.finditer(text))
    if not matches:
        return -1, None
    return text.rfind("\n", 0, matches[-1].start()) + 1, matches[-1]


def diagnose_text(text: str) -> Diagnosis | None:
    """The known failure whose last mention in `text` (a log or its tail) comes latest.

    The error that stopped the run is near the end; an earlier harmless warning (bitsandbytes
    without GPU support, printed at import) must not win over it. When two rules match on the
    same line, the one listed first (the more specific) wins. None if nothing is known.
    """
    best: Diagnosis | None = None
    best_at = -1
    for rule in _RULES:
        at, _ = _last_line_start(rule.pattern, text)
        if at > best_at:
            best, best_at = Diagnosis(rule.key, rule.cause, rule.fix), at
    at, missing = _last_line_start(_MISSING_MODULE, text)
    if missing is not None and at > best_at:
        return Diagnosis(
            "missing-module",
            f"the Python running sd-scripts lacks the module '{missing.group(1)}'.",
            "install sd-scripts' requirements into it (pip install -r requirements.txt in the "
            "sd-scripts folder), or point --python at the right environment.",
        )
    return best


def diagnose_log(path: Path) -> Diagnosis | None:
    """`diagnose_text` over the last SCAN_BYTES of the log file (None if it is unreadable)."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - SCAN_BYTES))
            data = handle.read()
    except OSError:
        return None
    return diagnose_text(data.decode("utf-8", errors="replace"))
