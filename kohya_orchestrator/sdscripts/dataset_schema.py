"""What sd-scripts accepts in a dataset config (`--dataset_config`): the keys of each level.

From library/config_util.py's ConfigSanitizer at the pin (6721028c): `[general]` takes the
dataset and subset keys; each `[[datasets]]` the same plus `[[datasets.subsets]]`; a subset
is DreamBooth-style (`image_dir`, captions by file), fine-tuning (`metadata_file`), or, only
with the training config's masked_loss, a mask subset (`conditioning_data_dir`). voluptuous
checks the types exactly (an int is not a float) and refuses every other key, so sd-scripts
stops before training on any of them.
"""

from __future__ import annotations

# The type each key needs, in voluptuous' words: "int", "float", "number" (int or float),
# "bool", "str", "table", "pair of floats", "int or pair of ints".
SUBSET_SHARED: dict[str, str] = {
    "color_aug": "bool",
    "face_crop_aug_range": "pair of floats",
    "flip_aug": "bool",
    "num_repeats": "int",
    "random_crop": "bool",
    "shuffle_caption": "bool",
    "keep_tokens": "int",
    "keep_tokens_separator": "str",
    "secondary_separator": "str",
    "caption_separator": "str",
    "enable_wildcard": "bool",
    "token_warmup_min": "int",
    "token_warmup_step": "number",
    "caption_prefix": "str",
    "caption_suffix": "str",
    "custom_attributes": "table",
    "resize_interpolation": "str",
    "caption_dropout_every_n_epochs": "int",
    "caption_dropout_rate": "number",
    "caption_tag_dropout_rate": "number",
}
DREAMBOOTH_SHARED: dict[str, str] = {
    "caption_extension": "str",
    "class_tokens": "str",
    "cache_info": "bool",
}
DREAMBOOTH_OWN: dict[str, str] = {"image_dir": "str", "is_reg": "bool", "alpha_mask": "bool"}
FINETUNE_OWN: dict[str, str] = {"metadata_file": "str", "image_dir": "str", "alpha_mask": "bool"}
MASK_SHARED: dict[str, str] = {"caption_extension": "str", "cache_info": "bool"}
MASK_OWN: dict[str, str] = {"image_dir": "str", "conditioning_data_dir": "str"}
DATASET_OWN: dict[str, str] = {
    "batch_size": "int",
    "bucket_no_upscale": "bool",
    "bucket_reso_steps": "int",
    "enable_bucket": "bool",
    "max_bucket_reso": "int",
    "min_bucket_reso": "int",
    "validation_seed": "int",
    "validation_split": "float",
    "resolution": "int or pair of ints",
    "network_multiplier": "float",
    "resize_interpolation": "str",
    "skip_image_resolution": "int or pair of ints",
}
# What each subset style requires.
REQUIRED = {
    "dreambooth": ("image_dir",),
    "fine-tuning": ("metadata_file",),
    "mask": ("image_dir", "conditioning_data_dir"),
}
# Training-config keys sd-scripts takes as the default of a dataset key it lacks
# (ConfigSanitizer.ARGPARSE_OPTNAME_TO_CONFIG_OPTNAME; the others share their names).
FROM_TRAINING = {"train_batch_size": "batch_size", "dataset_repeats": "num_repeats"}


def general_keys(masked_loss: bool) -> dict[str, str]:
    """The keys `[general]` takes."""
    return {
        **DATASET_OWN,
        **SUBSET_SHARED,
        **DREAMBOOTH_SHARED,
        **(MASK_SHARED if masked_loss else {}),
    }


def dataset_keys(style: str) -> dict[str, str]:
    """The keys a `[[datasets]]` table of this subset style takes (besides `subsets`)."""
    shared = {"dreambooth": DREAMBOOTH_SHARED, "mask": MASK_SHARED}.get(style, {})
    return {**DATASET_OWN, **SUBSET_SHARED, **shared}


def subset_keys(style: str) -> dict[str, str]:
    """The keys a `[[datasets.subsets]]` table of this style takes."""
    if style == "fine-tuning":
        return {**SUBSET_SHARED, **FINETUNE_OWN}
    if style == "mask":
        return {**SUBSET_SHARED, **MASK_OWN, **MASK_SHARED}
    return {**SUBSET_SHARED, **DREAMBOOTH_OWN, **DREAMBOOTH_SHARED}


def type_ok(kind: str, value: object) -> bool:
    """Whether voluptuous accepts `value` for a key of `kind` (bool counts as int there)."""
    if kind == "int":
        return isinstance(value, int)
    if kind == "float":
        return isinstance(value, float)
    if kind == "number":
        return isinstance(value, int | float)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "table":
        return isinstance(value, dict)
    if kind == "pair of floats":
        return (
            isinstance(value, list) and len(value) == 2 and all(isinstance(v, float) for v in value)
        )
    # "int or pair of ints"
    return isinstance(value, int) or (
        isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)
    )
