"""Build a full-size SDXL checkpoint with random weights, for end-to-end tests without downloads.

sd-scripts hard-codes SDXL's shapes, so a test checkpoint must be full size. Nothing of
sd-scripts is copied here: its own loader
`library.sdxl_model_util.load_models_from_sdxl_checkpoint` builds every model (its U-Net
class, both text encoders with its configs, the VAE) with four of its helpers swapped at
run time so that nothing is read: no file (`load_file`), no meta-device shortcut
(`init_empty_weights`: the models get PyTorch's own random init), no state dict loaded
(`_load_state_dict_on_device`), no VAE keys converted. The models are then cast to
fp16 and written with sd-scripts' own `save_stable_diffusion_checkpoint`.

Needs sd-scripts' environment (torch, transformers, diffusers, accelerate). Takes about
90 s and 14 GB of memory on 2 cores; the file is about 6.9 GB.

Usage:
    python scripts/make_random_sdxl.py --sd-scripts DIR OUT.safetensors [--seed 0]
    python scripts/make_random_sdxl.py --sd-scripts DIR --check
(--check runs the whole path on PyTorch's meta device: seconds, no memory, nothing written.)
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

PATCHED = ("load_file", "init_empty_weights", "_load_state_dict_on_device")


def import_sd_scripts(folder: Path) -> tuple[Any, Any]:
    """sd-scripts' `library.sdxl_model_util` and `library.model_util`, imported from `folder`."""
    if not (folder / "library" / "sdxl_model_util.py").is_file():
        sys.exit(f"make_random_sdxl: {folder} is not an sd-scripts checkout (no library/)")
    sys.path.insert(0, str(folder))
    from library import model_util, sdxl_model_util  # type: ignore[import-not-found]

    missing = [n for n in PATCHED if not hasattr(sdxl_model_util, n)]
    missing += [n for n in ("convert_ldm_vae_checkpoint",) if not hasattr(model_util, n)]
    missing += [
        n
        for n in ("load_models_from_sdxl_checkpoint", "save_stable_diffusion_checkpoint")
        if not hasattr(sdxl_model_util, n)
    ]
    if missing:
        sys.exit(f"make_random_sdxl: this sd-scripts lacks {', '.join(missing)}")
    return sdxl_model_util, model_util


@contextlib.contextmanager
def swapped(module: Any, **replacements: Any) -> Any:
    """Swap attributes of an sd-scripts module for the duration of a block."""
    saved = {name: getattr(module, name) for name in replacements}
    for name, value in replacements.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


def load_without_reading(sdxl_model_util: Any, model_util: Any, *, real: bool) -> Any:
    """sd-scripts' SDXL loader with nothing read: random weights (real) or meta tensors."""
    swaps = {
        "load_file": lambda *args, **kwargs: {},
        "_load_state_dict_on_device": lambda *args, **kwargs: "nothing loaded",
    }
    if real:
        swaps["init_empty_weights"] = contextlib.nullcontext
    with (
        swapped(sdxl_model_util, **swaps),
        swapped(model_util, convert_ldm_vae_checkpoint=lambda checkpoint, config: {}),
    ):
        return sdxl_model_util.load_models_from_sdxl_checkpoint(
            "sdxl_base_v1-0", "random.safetensors", "cpu"
        )


def save(sdxl_model_util: Any, models: Any, out: str, save_file: Any = None) -> int:
    import torch

    te1, te2, vae, unet, _, _ = models
    logit_scale = torch.tensor(math.log(100.0), dtype=torch.float16)
    metadata = {"kohya_orch": "random weights for end-to-end tests; not a usable model"}
    swaps = {"save_file": save_file} if save_file is not None else {}
    with swapped(sdxl_model_util, **swaps):
        count: int = sdxl_model_util.save_stable_diffusion_checkpoint(
            out, te1, te2, unet, 0, 0, None, vae, logit_scale, metadata, None
        )
    return count


def check(sdxl_model_util: Any, model_util: Any) -> str:
    """The whole path on the meta device (no memory): build, save's key set, load it back."""
    models = load_without_reading(sdxl_model_util, model_util, real=False)
    captured: dict[str, Any] = {}
    count = save(
        sdxl_model_util, models, "x.safetensors", lambda sd, path, metadata: captured.update(sd)
    )
    params = sum(v.numel() for v in captured.values())
    # sd-scripts' real loader raises on any missing or unexpected key.
    with swapped(sdxl_model_util, load_file=lambda *args, **kwargs: dict(captured)):
        sdxl_model_util.load_models_from_sdxl_checkpoint("sdxl_base_v1-0", "x.safetensors", "meta")
    return f"{count} tensors, {params / 1e9:.2f} billion parameters, all keys matched on load"


def build(sdxl_model_util: Any, model_util: Any, out: Path, seed: int) -> int:
    import torch

    torch.manual_seed(seed)
    models = load_without_reading(sdxl_model_util, model_util, real=True)
    # Cast in place, one model at a time, so fp32 and fp16 copies never coexist in full.
    for model in models[:4]:
        model.to(torch.float16)
    tmp = out.with_name(out.name + ".partial.safetensors")
    count = save(sdxl_model_util, models, str(tmp))
    os.replace(tmp, out)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, nargs="?", help="the .safetensors file to write")
    parser.add_argument("--sd-scripts", type=Path, required=True, help="an sd-scripts checkout")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true", help="dry check on the meta device")
    args = parser.parse_args()
    sdxl_model_util, model_util = import_sd_scripts(args.sd_scripts.resolve())
    if args.check:
        print(f"make_random_sdxl: check passed: {check(sdxl_model_util, model_util)}")
        return
    if args.out is None or args.out.suffix != ".safetensors":
        parser.error("give the output file, ending in .safetensors")
    if args.out.exists():
        sys.exit(f"make_random_sdxl: {args.out} exists; remove it first")
    started = time.time()
    count = build(sdxl_model_util, model_util, args.out, args.seed)
    size = args.out.stat().st_size / (1 << 30)
    elapsed = time.time() - started
    print(f"make_random_sdxl: wrote {args.out} ({count} tensors, {size:.1f} GiB, {elapsed:.0f} s)")


if __name__ == "__main__":
    main()
