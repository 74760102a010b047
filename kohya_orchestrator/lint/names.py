"""Names other tools write into a training TOML: the kohya_ss GUI's fields, lora-scripts' old
names, dataset config keys. Each is ignored by sd-scripts; `foreign_name` says whether that
changes the run (an error), probably not what was meant (a warning), or nothing (a note).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kohya_orchestrator.config.schema import SPECS
from kohya_orchestrator.lint.report import LintReport, shown
from kohya_orchestrator.sdscripts.contract import Contract

# kohya_ss GUI fields that are not our settings, and the sd-scripts key each one means
# ("": none; the GUI turns it into something else, see the hints below).
_GUI_ONLY: dict[str, str] = {
    "epochs": "max_train_epochs",
    "LoRA_type": "network_module",
    "learning_rate_te": "text_encoder_lr",
    "model_list": "pretrained_model_name_or_path",
    "network_rank": "network_dim",
    "train_dir": "train_data_dir",
    "reg_dir": "reg_data_dir",
    "conv_dim": "network_args",
    "conv_alpha": "network_args",
    "sdxl": "",
    "num_cpu_threads_per_process": "",
    "additional_parameters": "",
    "use_wandb": "log_with",
    "noise_offset_type": "",
}
# Names other tools write into a training TOML, what they are, and the sd-scripts key meant.
ELSEWHERE: dict[str, tuple[str, str]] = {
    "lr_restart_cycles": ("lora-scripts' old name", "lr_scheduler_num_cycles"),
    "batch_size": ("a dataset config key ([[datasets]])", "train_batch_size"),
    # lora-scripts' launcher picks the script from it; sd-scripts never needs it.
    "model_train_type": ("lora-scripts' model type", ""),
}
# Names the kohya_ss GUI saves in its own configs, and the sd-scripts key each one means:
# every setting whose GUI field is not its sd-scripts key (from the settings' one
# declaration), then the GUI's fields that are not our settings.
GUI_NAMES: dict[str, str] = {
    **{s.gui: s.arg for s in SPECS if s.gui and s.arg and s.gui != s.arg},
    **_GUI_ONLY,
}


def foreign_name(
    report: LintReport, key: str, value: Any, contract: Contract, flat: Mapping[str, Any]
) -> None:
    """A name the kohya_ss GUI (or another tool) writes: an error only where sd-scripts
    then trains something other than what the file says."""
    if key in ELSEWHERE:
        what, target = ELSEWHERE[key]
        message = f"'{key}' is {what}, not an sd-scripts option: sd-scripts ignores it"
        hint = f"use {target} = {shown(value)}"
    else:
        target = GUI_NAMES[key]
        message, hint = _gui_problem(key, value, contract)
    opt = contract.options.get(target)
    if key in ELSEWHERE and not target:
        report.note(
            key,
            f"{message}; the script that runs decides the model ({contract.script} here)",
            "keep it for lora-scripts, or remove it",
        )
    elif key == "noise_offset_type":
        report.warn(
            key,
            f"{message}; it applies noise_offset and multires_noise_iterations whenever "
            "they are set, whichever type this names",
            "remove it; set noise_offset (Original) or multires_noise_iterations (Multires)",
        )
    elif key == "epoch" and target not in flat and "max_train_steps" in flat:
        report.warn(
            key,
            f"{message} and runs max_train_steps = {shown(flat['max_train_steps'])} steps "
            "(the kohya_ss GUI computed them from it); the saved files are numbered by epoch",
            f"use max_train_epochs = {shown(value)} instead of max_train_steps",
        )
    elif _gui_target_set(key, value, target, flat):
        # A GUI config carries both names; sd-scripts uses its own and the run is right.
        report.note(key, message, f"remove it: {target} = {shown(flat[target])} is set")
    elif opt is not None and value == opt.default:
        used = (
            f"sd-scripts uses {target} = {shown(flat[target])}"
            if target in flat
            else "so nothing changes"
        )
        report.note(key, f"{message}; {shown(value)} is {target}'s default, {used}", "remove it")
    elif value is False or value == "":
        report.note(key, f"{message}; {shown(value)} changes nothing", "remove it")
    else:
        report.error(key, message, hint)


def _gui_target_set(key: str, value: Any, target: str, flat: Mapping[str, Any]) -> bool:
    """Whether the sd-scripts key the GUI name stands for is there, meaning the same."""
    if not target or target not in flat:
        return False
    if key == "LoRA_type":
        # Only the GUI's "Standard" is networks.lora; LyCORIS types need another module.
        return bool(value == "Standard" and flat[target] == "networks.lora")
    if target == "network_args":
        args = flat[target]
        return isinstance(args, list) and any(str(a).startswith(f"{key}=") for a in args)
    if key in ("model_list", "lr_warmup", "max_resolution"):
        # Not the same kind of value (a dropdown, a percentage, one side): the target rules.
        return True
    # `epoch = 3` beside max_train_epochs = 15 asks for a run sd-scripts will not do.
    return bool(flat[target] == value)


def _gui_problem(key: str, value: Any, contract: Contract) -> tuple[str, str]:
    target = GUI_NAMES[key]
    message = f"'{key}' is a kohya_ss GUI name, not an sd-scripts option: sd-scripts ignores it"
    tv = shown(value)
    if key == "lr_warmup":
        ratio = value / 100 if isinstance(value, int | float) and value > 1 else value
        return message, (
            f"use lr_warmup_steps = {shown(ratio)} (a ratio of the steps; "
            "the GUI's lr_warmup is a percentage)"
        )
    if key == "LoRA_type":
        return message, 'use network_module = "networks.lora" (the GUI\'s "Standard" LoRA)'
    if key in ("conv_dim", "conv_alpha"):
        return message, f'use network_args = ["{key}={value}"]'
    if key == "sdxl":
        return message, "choose the script instead: sdxl_train_network.py for SDXL"
    if key == "num_cpu_threads_per_process":
        return message, "it is an accelerate launch flag; remove it from the TOML"
    if key == "additional_parameters":
        return message, "write each parameter as its own key in the TOML"
    if key == "use_wandb":
        return message, 'use log_with = "wandb"'
    if key == "max_resolution" and not isinstance(value, str):
        return message, f'use resolution = "{value},{value}"'
    if target in contract.options:
        return message, f"use {target} = {tv}"
    return message, f"use {target}"
