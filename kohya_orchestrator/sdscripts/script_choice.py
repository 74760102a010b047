"""Which training script a config is for, when `--script` does not say: from the config itself.

In order: the script kohya-orch's header names; a network_module only one script takes
(`networks.lora_flux`, `networks.lora_sd3`); the launchers' own switches (the kohya_ss GUI's
`sdxl`, lora-scripts' `model_train_type`, `v2`); keys only one family's script has (Flux's
`ae`, SD3's `clip_g`, SDXL's text-encoder cache turned on); the model's own tensor names when
the file is on this machine; the model's file name (`...XL...`, `flux`, `sd3`). A config
that says none of these is judged as "SD 1.x or SDXL" (trainers.UNDETERMINED). Pure except
for reading the model's header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kohya_orchestrator.sdscripts.trainers import (
    TRAINERS,
    UNDETERMINED,
    Trainer,
    for_network_module,
    for_script,
)

# Keys that only these families' scripts read (from the shipped facts: in flux_train_network
# and not sdxl_train_network, and so on), and a value that is not off.
FLUX_KEYS = ("ae", "guidance_scale", "timestep_sampling", "model_prediction_type", "model_type")
SD3_KEYS = ("clip_g", "training_shift", "save_t5xxl", "apply_lg_attn_mask")
FLUX_OR_SD3_KEYS = ("t5xxl", "clip_l", "t5xxl_max_token_length", "weighting_scheme")
SDXL_KEYS = ("cache_text_encoder_outputs", "cache_text_encoder_outputs_to_disk")
# lora-scripts' model_train_type values.
_LORA_SCRIPTS_TYPES = {
    "sd-lora": "sd1",
    "sdxl-lora": "sdxl",
    "flux-lora": "flux",
    "sd3-lora": "sd3",
}
_NAME_HINTS = (
    (re.compile(r"flux", re.I), "flux"),
    (re.compile(r"sd3|stable-diffusion-3", re.I), "sd3"),
    (re.compile(r"(?:^|[^a-z])xl|xl(?:[^a-z]|$)|sdxl", re.I), "sdxl"),
    (re.compile(r"(?:^|[^a-z0-9])(?:sd|v)-?1[._-]?5|stable-diffusion-v1", re.I), "sd1"),
)


HEADER_REASON = "named in the file's header"


@dataclass(frozen=True)
class ScriptChoice:
    """The trainer a config is judged as, and the reason in words (`validate` prints it)."""

    trainer: Trainer
    reason: str

    @property
    def script(self) -> str:
        return self.trainer.script

    @property
    def known(self) -> bool:
        return self.trainer is not UNDETERMINED


def _on(value: Any) -> bool:
    return value not in (None, False, "", 0, [])


def _family(family: str, flat: Mapping[str, Any]) -> Trainer:
    if family == "sd1" and flat.get("v2") is True:
        return TRAINERS["sd2"]
    return TRAINERS[family]


def choose_script(
    flat: Mapping[str, Any], *, header_script: str | None = None, model_family: str | None = None
) -> ScriptChoice:
    """The script for the flattened config `flat` (see the module docstring for the order).

    `model_family` is what the model's own header says (checkpoint.family_from_keys), when
    the caller could read it.
    """
    if header_script:
        return ScriptChoice(for_script(header_script, v2=flat.get("v2") is True), HEADER_REASON)
    module = flat.get("network_module")
    if isinstance(module, str) and (found := for_network_module(module)) is not None:
        return ScriptChoice(found, f'network_module = "{module}"')
    for key in ("model_train_type", "train_type"):
        value = flat.get(key)
        if isinstance(value, str) and value in _LORA_SCRIPTS_TYPES:
            family = _LORA_SCRIPTS_TYPES[value]
            return ScriptChoice(_family(family, flat), f'{key} = "{value}" (lora-scripts)')
    if isinstance(flat.get("sdxl"), bool):
        family = "sdxl" if flat["sdxl"] else "sd1"
        return ScriptChoice(
            _family(family, flat), f"sdxl = {str(flat['sdxl']).lower()} (the kohya_ss GUI)"
        )
    if flat.get("v2") is True:
        return ScriptChoice(TRAINERS["sd2"], "v2 = true (SD 2.x)")
    for keys, family in ((SD3_KEYS, "sd3"), (FLUX_KEYS, "flux")):
        key = next((k for k in keys if _on(flat.get(k))), "")
        if key:
            return ScriptChoice(TRAINERS[family], f"'{key}' is a {TRAINERS[family].label} key")
    key = next((k for k in FLUX_OR_SD3_KEYS if _on(flat.get(k))), "")
    if key:
        return ScriptChoice(TRAINERS["flux"], f"'{key}' is a Flux (or SD3) key, and no SD3 key")
    key = next((k for k in SDXL_KEYS if flat.get(k) is True), "")
    if key:
        return ScriptChoice(TRAINERS["sdxl"], f"'{key}' = true is SDXL-only")
    if model_family in TRAINERS:
        return ScriptChoice(
            _family(model_family, flat),
            f"the model file's tensors are {TRAINERS[model_family].label}'s",
        )
    model = flat.get("pretrained_model_name_or_path")
    if isinstance(model, str) and model:
        name = re.split(r"[\\/]", model.rstrip("/\\"))[-1]
        for pattern, family in _NAME_HINTS:
            if pattern.search(name):
                return ScriptChoice(
                    _family(family, flat),
                    f"the model's name ({name}) says {TRAINERS[family].label}",
                )
    return ScriptChoice(
        UNDETERMINED,
        "nothing in the file says SD 1.x or SDXL: checked with sdxl_train_network.py's "
        "options (they include train_network.py's), without the rules in which the two "
        "differ; pass --script to choose",
    )


def model_family_of(flat: Mapping[str, Any]) -> str | None:
    """The family the model file's own header says, when it is a readable .safetensors."""
    from kohya_orchestrator.errors import OrchError
    from kohya_orchestrator.sdscripts.checkpoint import detect_family

    raw = flat.get("pretrained_model_name_or_path")
    if not isinstance(raw, str) or not raw.lower().endswith(".safetensors"):
        return None
    path = Path(raw).expanduser()
    if not path.is_file():
        return None
    try:
        family = detect_family(path).family
    except (OrchError, OSError):
        return None
    return family if family in TRAINERS else None
