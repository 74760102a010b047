"""The kohya_ss GUI fields that need more than their setting's kind to come over.

A GUI field that is one of our settings is named on the setting itself (`gui=` in
schema.py) and converted by the setting's kind; the rows here are the others, one per GUI
field (or key of a TOML the GUI generated): a conversion a kind cannot do (`lr_warmup` is a
percentage, the CrossAttention dropdown is `attention`), a field the GUI reads together
with another (`epoch` and `max_train_epochs`), or one dropped and why. Fields in neither
place become raw sd-scripts keys when sd-scripts has an option of that name (gui_import.py).
From kohya_ss's kohya_gui/lora_gui.py (save_configuration, train_model) and its
presets/lora/*.json.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Conversion:
    """What one GUI field becomes: settings, raw sd-scripts keys, or nothing (dropped),
    why, and whether the user should look at it (`warn`)."""

    settings: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    why: str = ""
    warn: bool = False


Handler = Callable[[Any, Mapping[str, Any]], Conversion]


def empty(value: Any) -> bool:
    """The GUI's "not set": an empty text, 0, false or an empty list."""
    if isinstance(value, str):
        return value.strip() == ""
    return value is None or value is False or value == 0 or value == []


def number(value: Any) -> float | None:
    """A GUI number, which the GUI often saves as text ("1", "0,5" never: it is English)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def drop(why: str, warn: bool = False) -> Conversion:
    return Conversion(why=why, warn=warn)


def to(setting: str, value: Any, why: str) -> Conversion:
    return Conversion(settings={setting: value}, why=why)


def _warmup_percent(value: Any, doc: Mapping[str, Any]) -> Conversion:
    steps = number(doc.get("lr_warmup_steps"))
    if steps and steps >= 1:
        return drop("lr_warmup_steps is set, and the GUI uses it instead of the percentage")
    percent = number(value)
    if percent is None:
        return drop(f"{value!r} is not a percentage", warn=True)
    return to("warmup_ratio", percent / 100, f"{percent:g} % of the steps -> a ratio")


def _warmup_steps(value: Any, doc: Mapping[str, Any]) -> Conversion:
    steps = number(value)
    if steps is None or steps == 0:
        if "lr_warmup" in doc:
            return drop("0: the percentage (lr_warmup) decides")
        return to("warmup_ratio", 0.0, "0: no warmup")
    if steps < 1:
        return to("warmup_ratio", steps, "below 1: already a share of the steps")
    total = number(doc.get("max_train_steps"))
    if total:
        return to("warmup_ratio", steps / total, f"{steps:g} of max_train_steps {total:g}")
    return drop(
        f"{steps:g} steps: kohya-orch sets the warmup as a share of the steps; set "
        "warmup_ratio (`kohya-orch plan` shows the steps)",
        warn=True,
    )


def _cross_attention(value: Any, doc: Mapping[str, Any]) -> Conversion:
    # The GUI's CrossAttention dropdown ("none", "sdpa", "xformers"); older presets and the
    # GUI's TOML have a switch `xformers = true` instead.
    if value is True or value == "xformers":
        return to("attention", "xformers", "CrossAttention xformers")
    if value == "sdpa":
        return to("attention", "sdpa", "CrossAttention sdpa")
    return drop("no CrossAttention in the preset: the profile's (sdpa) is used")


def _switch(choice: str) -> Handler:
    def convert(value: Any, doc: Mapping[str, Any]) -> Conversion:
        if value is True:
            return to("attention", choice, f"{choice} = true")
        return drop("off in the preset")

    return convert


def _epoch(value: Any, doc: Mapping[str, Any]) -> Conversion:
    if number(doc.get("max_train_epochs")):
        return drop("max_train_epochs is set, and wins over epoch in the GUI")
    epochs = number(value)
    if not epochs:
        return drop("no epochs in the preset")
    return to("epochs", int(epochs), "")


def _max_train_epochs(value: Any, doc: Mapping[str, Any]) -> Conversion:
    epochs = number(value)
    if not epochs:
        return drop("0: the GUI's epoch decides")
    return to("epochs", int(epochs), "wins over epoch, as in the GUI")


def _text_encoder_lr(value: Any, doc: Mapping[str, Any]) -> Conversion:
    lrs = value if isinstance(value, list) else [value]
    rate = number(lrs[0]) if lrs else None
    if rate:
        why = "the first of the list (one rate serves both encoders)" if len(lrs) > 1 else ""
        return to("text_encoder_lr", rate, why)
    if number(doc.get("unet_lr")):
        return Conversion(
            raw={"network_train_unet_only": True},
            why="0 with a U-Net LR: the GUI trains the U-Net only",
            warn=True,
        )
    base = number(doc.get("learning_rate"))
    if base:
        return to("text_encoder_lr", base, "0: the GUI uses the learning rate")
    return drop("no text encoder LR in the preset")


def _unet_lr(value: Any, doc: Mapping[str, Any]) -> Conversion:
    rate = number(value)
    if rate:
        return to("unet_lr", rate, "")
    base = number(doc.get("learning_rate"))
    if base:
        return to("unet_lr", base, "0: the GUI uses the learning rate")
    return drop("no U-Net LR in the preset")


def _keep_tokens(value: Any, doc: Mapping[str, Any]) -> Conversion:
    count = number(value)
    if not count:
        return drop(
            "0 (the GUI's default): kohya-orch keeps the trigger's tokens first; set "
            "keep_tokens = 0 to keep none"
        )
    return to("keep_tokens", int(count), "")


def _save_state(value: Any, doc: Mapping[str, Any]) -> Conversion:
    if value is True:
        return to("save_state", True, "")
    return drop(
        "off in the preset: kohya-orch keeps resumable state for the last epoch (set "
        "save_state = false to turn it off)"
    )


def _last_states(value: Any, doc: Mapping[str, Any]) -> Conversion:
    count = number(value)
    if not count:
        return drop("0 (the GUI's default, all states): kohya-orch keeps the last one")
    return to("save_last_n_epochs_state", int(count), "")


def _seed(value: Any, doc: Mapping[str, Any]) -> Conversion:
    seed = number(value)
    if not seed:
        return drop("no seed in the preset: kohya-orch's fixed seed keeps runs repeatable")
    return to("seed", int(seed), "")


def _max_token_length(value: Any, doc: Mapping[str, Any]) -> Conversion:
    length = number(value)
    if length in (150, 225):
        return Conversion(raw={"max_token_length": int(length)}, why="a raw sd-scripts key")
    return drop("75 tokens is sd-scripts' own default")


def _rename(key: str, what: str) -> Handler:
    def convert(value: Any, doc: Mapping[str, Any]) -> Conversion:
        if value is True:
            return Conversion(raw={key: True}, why=f"{what}: the raw sd-scripts key {key}")
        return drop("off in the preset")

    return convert


def _split_args(key: str) -> Handler:
    def convert(value: Any, doc: Mapping[str, Any]) -> Conversion:
        items = value if isinstance(value, list) else str(value or "").replace('"', "").split()
        if not items:
            return drop("empty in the preset")
        return Conversion(raw={key: [str(i) for i in items]}, why="split as the GUI does")

    return convert


def _noise(key: str, kind: str) -> Handler:
    """noise_offset counts only with the GUI's noise offset type Original, multires_noise_*
    only with Multires (a GUI TOML has no type: Original)."""

    def convert(value: Any, doc: Mapping[str, Any]) -> Conversion:
        if doc.get("noise_offset_type", "Original") != kind or empty(value):
            return drop(f"the GUI uses it only with noise offset type {kind}")
        return Conversion(raw={key: value}, why="a raw sd-scripts key")

    return convert


def _lora_type(value: Any, doc: Mapping[str, Any]) -> Conversion:
    if value in ("Standard", "", None):
        return drop("the standard LoRA (networks.lora) is what kohya-orch trains")
    return drop(
        f"{value}: kohya-orch trains the standard LoRA; for LyCORIS set "
        'sd_scripts.network_module = "lycoris.kohya" and sd_scripts.network_args yourself',
        warn=True,
    )


def _network_module(value: Any, doc: Mapping[str, Any]) -> Conversion:
    if value in ("networks.lora", "", None):
        return drop("the standard LoRA (networks.lora) is what kohya-orch trains")
    return drop(f"{value}: kohya-orch trains the standard LoRA (networks.lora)", warn=True)


def _filled(why: str) -> Handler:
    """Dropped; worth a look when the preset fills it in."""

    def convert(value: Any, doc: Mapping[str, Any]) -> Conversion:
        return drop("empty in the preset") if empty(value) else drop(why, warn=True)

    return convert


def _always(why: str) -> Handler:
    return lambda value, doc: drop(why)


_ACCELERATE = "accelerate's settings: kohya-orch passes them (train --gpus, --gpu-ids)"
_LAYOUT = "kohya-orch's folders: DEST/model and DEST/log"
_FAMILY = "the checkpoint's own keys say SDXL or SD 1.x/2.x; kohya-orch reads them"
_SECRET = "a secret: never copied into a settings file"

# GUI field -> (the conversion in words, the handler). Order: as the GUI saves them.
FIELDS: dict[str, tuple[str, Handler]] = {
    "LoRA_type": ("standard LoRA only", _lora_type),
    "network_module": ("standard LoRA only", _network_module),
    "sdxl": ("from the checkpoint", _always(_FAMILY)),
    "v2": ("from the checkpoint", _always(_FAMILY)),
    "flux1_checkbox": ("from the checkpoint", _always(_FAMILY)),
    "sd3_checkbox": ("from the checkpoint", _always(_FAMILY)),
    "model_list": ("GUI-only", _always("the GUI's model dropdown")),
    "save_model_as": ("always safetensors", _always("kohya-orch saves .safetensors files")),
    "output_dir": ("DEST/model", _always(_LAYOUT)),
    "logging_dir": ("DEST/log", _always(_LAYOUT)),
    "dataset_config": (
        "folders instead",
        _filled("kohya-orch uses the folder layout of `prepare` (--images DIR:REPEATS)"),
    ),
    "epoch": ("-> epochs (unless max_train_epochs)", _epoch),
    "max_train_epochs": ("-> epochs, wins over epoch", _max_train_epochs),
    "max_train_steps": (
        "dropped",
        _filled("sd-scripts ignores it when max_train_epochs is set, as kohya-orch always does"),
    ),
    "lr_warmup": ("% -> warmup_ratio", _warmup_percent),
    "lr_warmup_steps": ("steps -> warmup_ratio", _warmup_steps),
    "xformers": ("CrossAttention -> attention", _cross_attention),
    "sdpa": ("-> attention", _switch("sdpa")),
    "mem_eff_attn": ("-> attention", _switch("mem_eff_attn")),
    "text_encoder_lr": ("0 = U-Net only, or the LR", _text_encoder_lr),
    "unet_lr": ("0 = the learning rate", _unet_lr),
    "keep_tokens": ("0 -> derived from the trigger", _keep_tokens),
    "save_state": ("off -> kohya-orch's default (on)", _save_state),
    "save_last_n_epochs_state": ("0 -> kohya-orch's default (1)", _last_states),
    "seed": ("empty -> kohya-orch's seed", _seed),
    "max_token_length": ("75 = default", _max_token_length),
    "sdxl_no_half_vae": ("-> no_half_vae", _rename("no_half_vae", "no half VAE")),
    "sdxl_cache_text_encoder_outputs": (
        "-> cache_text_encoder_outputs",
        _rename("cache_text_encoder_outputs", "cache text encoder outputs"),
    ),
    "optimizer_args": ("text -> list", _split_args("optimizer_args")),
    "lr_scheduler_args": ("text -> list", _split_args("lr_scheduler_args")),
    "noise_offset_type": ("GUI-only", _always("picks noise_offset or multires_noise_*")),
    "noise_offset": ("only with Original", _noise("noise_offset", "Original")),
    "multires_noise_iterations": (
        "only with Multires",
        _noise("multires_noise_iterations", "Multires"),
    ),
    "multires_noise_discount": (
        "only with Multires",
        _noise("multires_noise_discount", "Multires"),
    ),
    "stop_text_encoder_training": (
        "dropped",
        _always("the GUI itself ignores it (not supported)"),
    ),
    "additional_parameters": (
        "after --",
        _filled("extra command-line arguments: give them as `kohya-orch train DEST -- ...`"),
    ),
    "sample_prompts": (
        "templates",
        _filled(
            "kohya-orch renders the sample prompts from its templates (sample_prompts_preset; "
            "`kohya-orch templates cp sample_prompts.txt.j2 DEST` to write your own)"
        ),
    ),
    "resume": ("train --resume", _filled("use `kohya-orch train DEST --resume`")),
    "wandb_api_key": ("never copied", _always(_SECRET)),
    "huggingface_token": ("never copied", _always(_SECRET)),
    "wandb_run_name": ("dropped", _always("only used with log_with = wandb")),
    **{
        name: ("accelerate", _always(_ACCELERATE))
        for name in (
            "num_cpu_threads_per_process",
            "num_processes",
            "num_machines",
            "multi_gpu",
            "gpu_ids",
            "main_process_port",
            "dynamo_backend",
            "dynamo_mode",
            "dynamo_use_fullgraph",
            "dynamo_use_dynamic",
            "extra_accelerate_launch_args",
        )
    },
}
