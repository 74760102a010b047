"""The cross-key rules of the lint (facts from SD_SCRIPTS.md); registry.py runs them.

Each rule reads only values that already passed the type check, so one wrong type gives one
message, not a cascade.
"""

from __future__ import annotations

from kohya_orchestrator.lint.report import RuleInput, shown
from kohya_orchestrator.sdscripts import choices
from kohya_orchestrator.sdscripts.buckets import adjust_bucket_range, parse_resolution

REQUIRED = (
    ("pretrained_model_name_or_path", "sd-scripts needs the base model to train on"),
    ("output_dir", "sd-scripts needs a folder to save the LoRA files in"),
    ("network_module", "sd-scripts cannot build the LoRA network without it"),
)
REQUIRED_HINTS = {
    "pretrained_model_name_or_path": 'pretrained_model_name_or_path = "/path/to/model.safetensors"',
    "output_dir": 'output_dir = "/path/to/project/model"',
    "network_module": 'network_module = "networks.lora"',
}


def clip_skip(r: RuleInput) -> None:
    # Only SDXL's script is known to ignore it (sdxl_train_util logs it); Flux and SD3 are
    # not judged here.
    if r.trainer.family == "sdxl" and "clip_skip" in r.values:
        r.report.warn(
            "clip_skip",
            f"'clip_skip' = {r.values['clip_skip']} does nothing when training "
            f"{r.trainer.label} (sd-scripts only logs it)",
            "remove it; set clip skip at generation time (Forge) instead",
        )


def dataset_config(r: RuleInput) -> None:
    values = r.values
    if values.get("dataset_config") and ("train_data_dir" in values or "reg_data_dir" in values):
        r.report.warn(
            "train_data_dir",
            "'train_data_dir' and 'reg_data_dir' are ignored when dataset_config is set",
            "keep one of them: the folders or the dataset config",
        )


def caption_extension(r: RuleInput) -> None:
    ext = r.values.get("caption_extension")
    if isinstance(ext, str) and ext and not ext.startswith("."):
        r.report.warn(
            "caption_extension",
            f"'caption_extension' = {shown(ext)} has no leading dot: sd-scripts looks for "
            f"files named like image{ext}",
            f'write caption_extension = ".{ext}"',
        )


def sampling(r: RuleInput) -> None:
    values, report = r.values, r.report
    asks = [
        k
        for k in ("sample_every_n_epochs", "sample_every_n_steps", "sample_at_first")
        if values.get(k) and not (isinstance(values.get(k), int) and values[k] < 0)
    ]
    prompts = values.get("sample_prompts")
    if asks and not prompts:
        report.error(
            "sample_prompts",
            f"'{asks[0]}' is set but sample_prompts is not: sd-scripts crashes with a "
            "TypeError the first time it samples",
            'add sample_prompts = "/path/to/prompts.txt", or remove the sampling settings (a '
            "launcher that adds --sample_prompts: validate with --arg sample_prompts=FILE)",
        )
    elif isinstance(prompts, str) and prompts and not prompts.endswith((".txt", ".toml", ".json")):
        report.error(
            "sample_prompts",
            f"'sample_prompts' = {shown(prompts)} is not a .txt, .toml or .json file: "
            "sd-scripts crashes when it samples",
            "name the prompts file with one of those extensions",
        )


def required(r: RuleInput) -> None:
    flat, report = r.flat, r.report
    for key, why in REQUIRED:
        if key not in flat:
            report.error(key, f"'{key}' is not set: {why}", f"add {REQUIRED_HINTS[key]}")
    for key, when in choices.EMPTY_CRASHES.items():
        if flat.get(key) == "":
            hint = (
                f"add {REQUIRED_HINTS[key]}"
                if key in REQUIRED_HINTS
                else f"name a file, or remove the {key} line"
            )
            report.error(
                key,
                f"'{key}' = \"\" is empty: sd-scripts reads it as a path and crashes {when}",
                hint,
            )
    if "train_data_dir" not in flat and "dataset_config" not in flat:
        report.error(
            "train_data_dir",
            "'train_data_dir' is not set (nor dataset_config): sd-scripts has no images to "
            "train on",
            'add train_data_dir = "/path/to/project/img" (a launcher that adds '
            "--dataset_config: validate with --arg dataset_config=FILE)",
        )
    if "resolution" not in flat and "dataset_config" not in flat:
        report.error(
            "resolution",
            "'resolution' is not set: sd-scripts needs the training resolution",
            'add resolution = "512,512" (or "768,768" for more detail)',
        )


def schedule(r: RuleInput) -> None:
    values, report = r.values, r.report
    scheduler = values.get("lr_scheduler", "constant")
    warmup = values.get("lr_warmup_steps", 0)
    custom = values.get("lr_scheduler_type", "")
    if scheduler == "constant" and warmup and not custom:
        named = (
            f"lr_scheduler = {shown(scheduler)}"
            if "lr_scheduler" in values
            else 'lr_scheduler (default "constant")'
        )
        report.error(
            "lr_scheduler",
            f"{named} with lr_warmup_steps = {shown(warmup)} makes sd-scripts stop with a "
            "ValueError",
            'use lr_scheduler = "constant_with_warmup", or lr_warmup_steps = 0',
        )
    if custom and warmup:
        report.error(
            "lr_scheduler_type",
            f"lr_scheduler_type = {shown(custom)} with lr_warmup_steps = {shown(warmup)} makes "
            "sd-scripts stop with a ValueError (a custom scheduler takes no warmup steps)",
            "set lr_warmup_steps = 0, or remove lr_scheduler_type",
        )
    if isinstance(warmup, float) and warmup >= 1:
        report.error(
            "lr_warmup_steps",
            f"'lr_warmup_steps' = {warmup!r} is a float, read as a ratio of the total steps, "
            "and is 1 or more: the learning rate would never finish warming up",
            "write a ratio below 1 (0.05 = 5%) or a whole number of steps (100)",
        )
    elif isinstance(warmup, int | float) and warmup < 0:
        report.error(
            "lr_warmup_steps",
            f"'lr_warmup_steps' = {warmup!r} is negative",
            "write a ratio below 1 (0.05 = 5%) or a whole number of steps (100)",
        )
    if isinstance(scheduler, str) and not custom and not choices.is_scheduler(scheduler):
        report.error(
            "lr_scheduler",
            f"'lr_scheduler' = {shown(scheduler)} is not a scheduler sd-scripts knows: it "
            "stops with a ValueError after loading the model",
            choices.scheduler_hint(scheduler),
        )


def epochs(r: RuleInput) -> None:
    values, report = r.values, r.report
    epochs = values.get("max_train_epochs")
    if "max_train_steps" in values and epochs is None:
        # Beside the GUI's `epoch`, keys.py says what sd-scripts does instead.
        if "epoch" not in r.flat:
            report.warn(
                "max_train_steps",
                f"'max_train_steps' = {values['max_train_steps']} without max_train_epochs: "
                "the run length ignores the dataset size and the saved files are numbered by "
                "epoch",
                "set max_train_epochs (it overrides max_train_steps)",
            )
    elif "max_train_steps" not in values and epochs is None:
        report.warn(
            "max_train_epochs",
            "neither 'max_train_epochs' nor 'max_train_steps' is set: sd-scripts trains 1600 steps",
            "set max_train_epochs = 15",
        )
    for key in (
        "max_train_epochs",
        "train_batch_size",
        "gradient_accumulation_steps",
        "save_every_n_epochs",
        "network_dim",
        "max_train_steps",
    ):
        value = values.get(key)
        if isinstance(value, int) and value < 1:
            report.error(key, f"'{key}' = {value} must be 1 or more", f"set {key} to 1 or more")
    steps_every = values.get("save_every_n_steps")
    if steps_every == 0 and not isinstance(steps_every, bool):
        report.error(
            "save_every_n_steps",
            "'save_every_n_steps' = 0 makes sd-scripts stop with a ZeroDivisionError at the "
            "first step",
            "remove save_every_n_steps, or set it to 1 or more",
        )
    every = values.get("save_every_n_epochs")
    if isinstance(every, int) and isinstance(epochs, int) and every > epochs >= 1:
        report.warn(
            "save_every_n_epochs",
            f"'save_every_n_epochs' = {every} is more than max_train_epochs = {epochs}: only "
            "the final LoRA is saved",
            "set save_every_n_epochs = 1 to compare every epoch",
        )


def network(r: RuleInput) -> None:
    values, report = r.values, r.report
    dim = values.get("network_dim")
    alpha = values.get("network_alpha")
    if isinstance(dim, int) and isinstance(alpha, int | float) and alpha > dim:
        report.warn(
            "network_alpha",
            f"'network_alpha' = {alpha} is above network_dim = {dim}: the LoRA's updates are "
            f"scaled up {alpha / dim:g} times",
            f"use network_alpha = {dim / 2:g} (half the rank) or at most {dim}",
        )
    if "output_name" not in values and "output_dir" in values:
        report.warn(
            "output_name",
            "'output_name' is not set: the LoRA files are named epoch-000001 ... and last",
            'set output_name = "<your LoRA name>"',
        )
    if "network_dim" not in values and "network_module" in values:
        report.warn(
            "network_dim",
            "'network_dim' is not set: sd-scripts uses rank 4",
            "set network_dim = 16 (32 for fidelity, 8 if it overfits)",
        )


def optimizer(r: RuleInput) -> None:
    values, report = r.values, r.report
    opt = values.get("optimizer_type", "")
    if not isinstance(opt, str) or not opt or choices.is_optimizer(opt):
        return
    report.error(
        "optimizer_type",
        f"'optimizer_type' = {shown(opt)} is not an optimizer sd-scripts knows: it stops with "
        "an AttributeError after loading the model",
        choices.optimizer_hint(opt),
    )


def caching(r: RuleInput) -> None:
    values, report, family = r.values, r.report, r.trainer.family
    te_key = next(
        (
            k
            for k in ("cache_text_encoder_outputs", "cache_text_encoder_outputs_to_disk")
            if values.get(k)
        ),
        None,
    )
    if family in ("sdxl", "flux", "sd3") and te_key:
        # The SDXL, Flux and SD3 scripts turn cache_text_encoder_outputs on when only
        # cache_text_encoder_outputs_to_disk is set, then assert the same things.
        named = f"'{te_key}'" + (
            " (which turns on cache_text_encoder_outputs)" if te_key.endswith("disk") else ""
        )
        _cached_text_rules(r, named)
    if values.get("cache_latents") or values.get("cache_latents_to_disk"):
        for key in ("color_aug", "random_crop"):
            if values.get(key):
                report.error(
                    key,
                    f"'cache_latents' cannot be combined with {key}: cached latents are "
                    "computed once, before any augmentation",
                    f"turn off {key}, or cache_latents",
                )


def _cached_text_rules(r: RuleInput, named: str) -> None:
    values, report = r.values, r.report
    if values.get("shuffle_caption"):
        report.error(
            "shuffle_caption",
            f"{named} cannot be combined with shuffle_caption: cached outputs are computed "
            "once, from unshuffled captions (sd-scripts asserts it)",
            "turn off shuffle_caption, or the text encoder cache",
        )
    for key in ("caption_dropout_rate", "caption_tag_dropout_rate", "token_warmup_step"):
        value = values.get(key)
        if isinstance(value, int | float) and value > 0:
            report.error(
                key,
                f"{named} cannot be combined with {key} = {value} (sd-scripts asserts it)",
                f"set {key} = 0, or turn off the text encoder cache",
            )
    if r.trainer.family != "sdxl":
        return
    if not values.get("network_train_unet_only"):
        report.error(
            "network_train_unet_only",
            f"{named} requires network_train_unet_only = true (sd-scripts asserts it)",
            "add network_train_unet_only = true",
        )
        return
    te_lr = values.get("text_encoder_lr")
    te_lrs = te_lr if isinstance(te_lr, list) else [te_lr]
    if any(isinstance(v, int | float) and v > 0 for v in te_lrs):
        report.warn(
            "text_encoder_lr",
            f"'text_encoder_lr' = {shown(te_lr)} is not used: with {named} and "
            "network_train_unet_only, the text encoder is not trained",
            "remove text_encoder_lr",
        )


def resolution(r: RuleInput) -> None:
    values, report, family = r.values, r.report, r.trainer
    raw = values.get("resolution")
    reso = parse_resolution(raw) if raw is not None else None
    if raw is not None and reso is None:
        report.error(
            "resolution",
            f"'resolution' = {shown(raw)} is not a size sd-scripts can read",
            'write resolution = "512,512" (width,height) or "768"',
        )
    steps = values.get("bucket_reso_steps", 64)
    need = family.bucket_multiple
    if isinstance(steps, int) and steps > 0 and steps % need:
        report.error(
            "bucket_reso_steps",
            f"'bucket_reso_steps' = {steps} is not divisible by {need}: "
            f"{family.script} stops with an "
            "AssertionError",
            f"use bucket_reso_steps = {64 if steps > 48 else need}",
        )
    # sd-scripts checks the range whenever buckets are on, bucket_no_upscale or not, after
    # rounding min down and max up to bucket_reso_steps.
    if not values.get("enable_bucket"):
        return
    lo = values.get("min_bucket_reso", 256)
    hi = values.get("max_bucket_reso", 1024)
    if not (isinstance(lo, int) and isinstance(hi, int)):
        return
    step = steps if isinstance(steps, int) and steps > 0 else 64
    given_lo, given_hi = lo, hi
    lo, hi = adjust_bucket_range(lo, hi, step)
    if lo > hi:
        report.error(
            "min_bucket_reso",
            f"'min_bucket_reso' = {given_lo} is above max_bucket_reso = {given_hi}",
            "make min_bucket_reso the smaller one (256 and 1024 by default)",
        )
    if reso and min(reso) < lo:
        report.error(
            "min_bucket_reso",
            f"'min_bucket_reso' = {given_lo} is larger than the shorter side of "
            f"the resolution {reso[0]}x{reso[1]}: sd-scripts stops with an AssertionError",
            f"set min_bucket_reso = {max(step, min(reso) // step * step)}",
        )
    if reso and max(reso) > hi:
        report.error(
            "max_bucket_reso",
            f"'max_bucket_reso' = {given_hi} is smaller than the resolution "
            f"{reso[0]}x{reso[1]}: sd-scripts stops with an AssertionError",
            f"set max_bucket_reso = {max(2 * max(reso), 1024)}",
        )
