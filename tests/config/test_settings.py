"""Project settings: defaults, profiles, precedence, --set, derived values, the file."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest
import toml

from kohya_orchestrator.config.profiles import PROFILES
from kohya_orchestrator.config.schema import PROFILE_KEYS, SPECS
from kohya_orchestrator.config.settings import (
    Settings,
    bucket_range,
    load_settings,
    resolve_settings,
)
from kohya_orchestrator.config.settings_file import initial_settings_text, write_initial_settings
from kohya_orchestrator.config.tomlquote import toml_value
from kohya_orchestrator.errors import SettingsError
from kohya_orchestrator.layout import Layout

BASE: dict[str, Any] = {
    "name": "yumoto_hakone",
    "trigger": "yumoto_hakone",
    "images": "/data/yumoto",
    "model": "/models/pony.safetensors",
}


def _settings(overrides: tuple[str, ...] = (), **doc: Any) -> Settings:
    return resolve_settings({**BASE, **doc}, overrides)


def _error(overrides: tuple[str, ...] = (), **doc: Any) -> str:
    with pytest.raises(SettingsError) as err:
        _settings(overrides, **doc)
    return err.value.render()


def test_workflow_defaults() -> None:
    s = _settings()
    assert (s.batch_size, s.epochs, s.save_every_n_epochs) == (4, 15, 1)
    assert s.caption_extension == ".txt"
    assert (s.learning_rate, s.unet_lr, s.text_encoder_lr) == (2.5e-5, 2.5e-5, 2.5e-5)
    assert (s.optimizer, s.warmup_ratio, s.resolution) == ("AdamW", 0.05, "512,512")
    assert (s.enable_bucket, s.network_dim, s.network_alpha) == (True, 16, 8.0)
    assert (s.shuffle_caption, s.flip_aug, s.attention) == (True, True, "sdpa")
    assert (s.mixed_precision, s.profile, s.repeats, s.clip_skip) == ("no", "apple-silicon", 7, 2)
    assert (s.min_bucket_reso, s.max_bucket_reso, s.bucket_reso_steps) == (256, 1024, 64)
    assert s.sampling is False
    assert s.sd_scripts == {}


def test_spec_and_dataclass_agree() -> None:
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert fields - {"sd_scripts", "origins", "notes", "path"} == {s.key for s in SPECS}
    for profile in PROFILES.values():
        assert set(profile) == set(PROFILE_KEYS)


@pytest.mark.parametrize(
    ("profile", "mixed", "workers"),
    [("apple-silicon", "no", 0), ("cuda", "bf16", 2), ("cpu", "no", 0)],
)
def test_profiles(profile: str, mixed: str, workers: int) -> None:
    s = _settings(profile=profile)
    assert (s.mixed_precision, s.max_data_loader_n_workers) == (mixed, workers)
    assert s.gradient_checkpointing and s.cache_latents and s.attention == "sdpa"
    assert s.origins["mixed_precision"] == "profile"


def test_precedence_defaults_profile_file_set() -> None:
    s = _settings(profile="cuda")
    assert s.mixed_precision == "bf16"
    s = _settings(profile="cuda", mixed_precision="no")
    assert (s.mixed_precision, s.origins["mixed_precision"]) == ("no", "file")
    s = _settings(("mixed_precision=fp16",), profile="cuda", mixed_precision="no")
    assert (s.mixed_precision, s.origins["mixed_precision"]) == ("fp16", "--set")
    s = _settings(("profile=cuda",))
    assert (s.mixed_precision, s.persistent_data_loader_workers) == ("bf16", True)


def test_keep_tokens_from_trigger() -> None:
    s = _settings(trigger="takeru_higa, takeru higa, takeru, higa")
    assert (s.keep_tokens, s.origins["keep_tokens"]) == (4, "derived")
    assert s.notes[0] == (
        'keep_tokens = 4: the trigger "takeru_higa, takeru higa, takeru, higa" has 4 '
        "comma-separated token(s), kept first when captions are shuffled."
    )
    assert _settings(trigger="a, b", keep_tokens=0).keep_tokens == 0


def test_alpha_is_half_the_rank_unless_set() -> None:
    assert _settings(("network_dim=32",)).network_alpha == 16.0
    assert _settings(network_dim=32, network_alpha=32).network_alpha == 32.0
    assert "network_alpha = 16: rank 32 / 2." in _settings(("network_dim=32",)).notes


def test_constant_with_warmup() -> None:
    s = _settings()
    assert s.lr_scheduler == "constant_with_warmup"
    assert (
        "lr_scheduler = constant_with_warmup: sd-scripts stops with a ValueError when "
        "'constant' meets a warmup (0.05 of the steps); set warmup_ratio = 0 to keep plain "
        "constant."
    ) in s.notes
    s = _settings(("warmup_ratio=0",))
    assert s.lr_scheduler == "constant"
    assert not any("lr_scheduler" in n for n in s.notes)
    assert _settings(lr_scheduler="cosine").lr_scheduler == "cosine"


@pytest.mark.parametrize(
    ("item", "key", "value"),
    [
        ("learning_rate=0,000025", "learning_rate", 2.5e-5),
        ("unet_lr=1e-4", "unet_lr", 1e-4),
        ("text_encoder_lr=0,00005", "text_encoder_lr", 5e-5),
        ("resolution=768,768", "resolution", "768,768"),
        ("resolution=1024", "resolution", "1024,1024"),
        ("shuffle_caption=no", "shuffle_caption", False),
        ("flip_aug=off", "flip_aug", False),
        ("epochs=10", "epochs", 10),
        ("lr_scheduler=cosine", "lr_scheduler", "cosine"),
        ('name="with space"', "name", "with space"),
        ("trigger=a, b", "trigger", "a, b"),
    ],
)
def test_set_values(item: str, key: str, value: Any) -> None:
    assert getattr(_settings((item,)), key) == value


def test_set_raw_sd_scripts_keys() -> None:
    s = _settings(
        ("sd_scripts.max_grad_norm=0,5", 'sd_scripts.network_args=["conv_dim=4"]'),
        sd_scripts={"noise_offset": 0.05},
    )
    assert s.sd_scripts == {
        "noise_offset": 0.05,
        "max_grad_norm": 0.5,
        "network_args": ["conv_dim=4"],
    }


def test_decimal_comma_in_the_file(tmp_path: Path) -> None:
    text = (
        initial_settings_text(**BASE)
        .replace("learning_rate = 2.5e-05", "learning_rate = 0,0001")
        .replace("unet_lr = 2.5e-05", 'unet_lr = "0,00002"')
    )
    (tmp_path / "kohya-orch.toml").write_text(text)
    s = load_settings(Layout(tmp_path))
    assert (s.learning_rate, s.unet_lr) == (1e-4, 2e-5)


def test_bare_comma_value_is_read_by_the_settings_kind(tmp_path: Path) -> None:
    # `768,768` is a size, not 768.768; in [sd_scripts] only a float option reads `0,5` as 0.5.
    text = initial_settings_text(**BASE).replace('resolution = "512,512"', "resolution = 768,768")
    assert "resolution = 768,768" in text
    text += "sd_scripts.max_grad_norm = 0,5\nsd_scripts.scale_weight_norms = 0,1  # x\n"
    text += "sd_scripts.log_prefix = 1,5\n"
    (tmp_path / "kohya-orch.toml").write_text(text)
    s = load_settings(Layout(tmp_path))
    assert s.resolution == "768,768"
    assert s.sd_scripts == {"max_grad_norm": 0.5, "scale_weight_norms": 0.1, "log_prefix": "1,5"}
    s = load_settings(
        Layout(tmp_path),
        ("resolution=640,640", "sd_scripts.max_grad_norm=0,25", "sd_scripts.log_prefix=2,5"),
    )
    assert s.resolution == "640,640"
    assert (s.sd_scripts["max_grad_norm"], s.sd_scripts["log_prefix"]) == (0.25, "2,5")
    bad = "\n".join(
        "repeats = 1,5" if ln.startswith("repeats =") else ln for ln in text.split("\n")
    )
    (tmp_path / "kohya-orch.toml").write_text(bad)
    with pytest.raises(SettingsError) as err:
        load_settings(Layout(tmp_path))
    assert err.value.problems == [
        f'{tmp_path / "kohya-orch.toml"}: repeats = "1,5" must be a whole number, not a decimal'
    ]


def test_no_workers_means_no_persistent_workers() -> None:
    # The cuda profile keeps workers alive between epochs; with 0 workers torch's DataLoader
    # raises a ValueError, so the profile's true gives way unless the user set it.
    s = _settings(("max_data_loader_n_workers=0",), profile="cuda")
    assert (s.persistent_data_loader_workers, s.origins["persistent_data_loader_workers"]) == (
        False,
        "derived",
    )
    assert (
        "persistent_data_loader_workers = false: max_data_loader_n_workers = 0, and torch's "
        "DataLoader refuses persistent workers without workers." in s.notes
    )
    assert _settings(profile="cuda").persistent_data_loader_workers is True
    s = _settings(
        ("max_data_loader_n_workers=0", "persistent_data_loader_workers=true"), profile="cuda"
    )
    assert s.persistent_data_loader_workers is True


def test_bucket_range_fits_the_resolution() -> None:
    assert bucket_range((512, 512), 64) == (256, 1024)
    assert bucket_range((768, 768), 64) == (384, 1536)
    assert bucket_range((1024, 1024), 64) == (512, 2048)
    # sd-scripts asserts min(resolution) >= min_bucket_reso: half the longer side is too big here.
    assert bucket_range((2048, 512), 64) == (512, 4096)
    assert bucket_range((1536, 600), 64) == (576, 3072)
    s = _settings(("resolution=768,768",))
    assert (s.min_bucket_reso, s.max_bucket_reso, s.sample_size) == (384, 1536, "768,768")


def test_all_problems_at_once() -> None:
    assert _error(
        ("epoch=3", "batch_size=x", "shuffle_caption=maybe", "optimzer=AdamW"),
        lr_scheduler="cosin",
        learning_rate="fast",
        resolution=512.5,
    ) == (
        "7 problems in the settings:\n"
        '  - settings: lr_scheduler = "cosin" must be one of linear, cosine, '
        "cosine_with_restarts, polynomial, constant, constant_with_warmup, inverse_sqrt, "
        "reduce_lr_on_plateau, cosine_with_min_lr, cosine_warmup_with_min_lr, "
        "warmup_stable_decay, piecewise_constant (did you mean 'cosine'?)\n"
        '  - settings: learning_rate = "fast" must be a number such as 2.5e-5 or 0,000025\n'
        '  - settings: resolution = 512.5 must be "WIDTH,HEIGHT" such as "512,512"\n'
        "  - --set: unknown setting 'epoch' (did you mean 'epochs'?)\n"
        '  - --set: batch_size = "x" must be a whole number (without quotes)\n'
        '  - --set: shuffle_caption = "maybe" must be true or false (without quotes)\n'
        "  - --set: unknown setting 'optimzer' (did you mean 'optimizer'?)\n"
        "  hint: Fix them in kohya-orch.toml or in the --set values; `kohya-orch settings` lists "
        "every setting with its kohya_ss GUI name."
    )


def test_types_in_the_file() -> None:
    assert _error(epochs="15", flip_aug="true", repeats=0, profile="mac") == (
        "4 problems in the settings:\n"
        '  - settings: epochs = "15" must be a whole number (without quotes)\n'
        '  - settings: flip_aug = "true" must be true or false (without quotes)\n'
        "  - settings: repeats = 0 must be at least 1\n"
        '  - settings: profile = "mac" must be one of apple-silicon, cuda, cpu\n'
        "  hint: Fix them in kohya-orch.toml or in the --set values; `kohya-orch settings` lists "
        "every setting with its kohya_ss GUI name."
    )


def test_gui_names_suggest_ours() -> None:
    assert "unknown setting 'train_batch_size' (did you mean 'batch_size'?)" in _error(
        train_batch_size=4
    )
    assert "unknown setting 'optimizer_type' (did you mean 'optimizer'?)" in _error(
        optimizer_type="AdamW"
    )


def test_missing_required() -> None:
    with pytest.raises(SettingsError) as err:
        resolve_settings({"name": "x"}, source="f.toml")
    assert err.value.problems == [
        'f.toml: trigger is missing; add trigger = "..." (the trigger captions start with; '
        "comma-separated tokens set keep_tokens)",
        'f.toml: images is missing; add images = "..." (the folder of training images '
        "(linked into img/))",
        'f.toml: model is missing; add model = "..." (base checkpoint .safetensors; its '
        "keys say SDXL or SD 1.x/2.x)",
    ]


def test_bad_set_syntax() -> None:
    assert _error(("epochs",)) == (
        "1 problem in the settings:\n"
        "  - --set 'epochs': expected KEY=VALUE, e.g. --set epochs=10\n"
        "  hint: Fix them in kohya-orch.toml or in the --set values; `kohya-orch settings` lists "
        "every setting with its kohya_ss GUI name."
    )


def test_missing_and_broken_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(Layout(tmp_path))
    assert err.value.render() == (
        f"No settings file: {tmp_path / 'kohya-orch.toml'}\n"
        "  hint: Run `kohya-orch prepare NAME --images DIR --dest DEST --model FILE` first."
    )
    (tmp_path / "kohya-orch.toml").write_text('name = "x"\nlr_scheduler = cosine\n')
    with pytest.raises(SettingsError) as err:
        load_settings(Layout(tmp_path))
    assert err.value.message.startswith(f"{tmp_path / 'kohya-orch.toml'} is not valid TOML:")
    assert err.value.hint == 'Fix that line; text values need quotes, e.g. lr_scheduler = "cosine".'


def test_initial_file_round_trips_and_comments_every_setting(tmp_path: Path) -> None:
    result = write_initial_settings(Layout(tmp_path), **BASE, repeats=5)
    assert result.written and result.path == tmp_path / "kohya-orch.toml"
    text = result.path.read_text()
    assert tomllib.loads(text) == toml.loads(text)
    for spec in SPECS:
        line = next(ln for ln in text.splitlines() if ln.lstrip("# ").startswith(spec.key + " "))
        assert f"# {spec.comment}" in line
    s = load_settings(Layout(tmp_path))
    assert (s.name, s.repeats, s.model, s.reg) == ("yumoto_hakone", 5, BASE["model"], None)
    assert s.values() == _settings(repeats=5).values()


def test_initial_file_with_reg_and_overrides(tmp_path: Path) -> None:
    write_initial_settings(
        Layout(tmp_path),
        **BASE,
        reg="/data/reg",
        reg_repeats=2,
        class_prompt="1boy, man",
        overrides=("epochs=10", "learning_rate=0,0001", "sd_scripts.max_grad_norm=1.0"),
    )
    text = (tmp_path / "kohya-orch.toml").read_text()
    assert "epochs = 10  # passes over the dataset" in text
    assert "learning_rate = 0.0001  # base learning rate" in text
    assert text.endswith(
        'sd_scripts.network_args = ["conv_dim=4"]\nsd_scripts.max_grad_norm = 1.0\n'
    )
    s = load_settings(Layout(tmp_path))
    assert (s.reg, s.reg_repeats, s.class_prompt, s.epochs) == ("/data/reg", 2, "1boy, man", 10)


def test_initial_file_is_never_overwritten(tmp_path: Path) -> None:
    write_initial_settings(Layout(tmp_path), **BASE)
    path = tmp_path / "kohya-orch.toml"
    edited = path.read_text().replace("repeats = 7", "repeats = 3")
    path.write_text(edited)
    result = write_initial_settings(Layout(tmp_path), **BASE, repeats=7)
    assert not result.written
    assert path.read_text() == edited
    assert result.notes == [
        f"{path} exists and was kept as is (it is yours to edit).",
        "repeats: the settings file says 3, this command said 7; the file wins (edit it or "
        "use --set repeats=...).",
    ]


def test_bad_overrides_write_nothing(tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        write_initial_settings(Layout(tmp_path), **BASE, overrides=("epoch=3",))
    assert not (tmp_path / "kohya-orch.toml").exists()


HOSTILE = [
    'x"\n[evil]',
    'a\\b"c',
    "]=[",
    "tab\there",
    "ünïcødé 名前 🎨",
    "\x00\x1f\x7f",
    "'single'",
]


# Of those, the ones that can also be a name, a trigger and a class prompt (see below).
USABLE_AS_NAMES = {"]=[", "ünïcødé 名前 🎨", "'single'"}


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_strings_round_trip_in_the_settings_file(tmp_path: Path, value: str) -> None:
    named = value if value in USABLE_AS_NAMES else "hero"
    write_initial_settings(
        Layout(tmp_path),
        name=named,
        trigger=named,
        images=value,
        model=value,
        reg=value,
        reg_repeats=1,
        class_prompt=named,
        overrides=(f"sd_scripts.training_comment={toml_value(value)}",),
    )
    text = (tmp_path / "kohya-orch.toml").read_text()
    doc = tomllib.loads(text)
    assert doc == toml.loads(text)
    benign = initial_settings_text(
        **BASE, reg="r", reg_repeats=1, class_prompt="c", sd_scripts={"training_comment": "c"}
    )
    assert set(doc) == set(tomllib.loads(benign))
    s = load_settings(Layout(tmp_path))
    assert (s.name, s.trigger, s.class_prompt) == (named,) * 3
    assert (s.images, s.model, s.reg) == (value,) * 3
    assert s.sd_scripts == {"training_comment": value}


def test_name_trigger_and_class_prompt_that_cannot_be_used_are_refused_at_once() -> None:
    # The name becomes file names (<name>-000001.safetensors), the trigger the start of
    # every caption line: a line break or a quote there would break both.
    doc = {**BASE, "name": 'x"\n[evil]', "trigger": "hero\x07", "class_prompt": "1boy/man"}
    assert _error(("trigger=a\nb",), **doc) == (
        "3 problems in the settings:\n"
        "  - settings: Invalid name 'x\"\\n[evil]': it contains control characters (U+000A); "
        'it contains characters not allowed in file names on Windows or macOS (").\n'
        "  - --set: The trigger 'a\\nb' contains a line break.\n"
        "  - settings: Invalid class prompt '1boy/man': it contains a path separator ('/').\n"
        "  hint: Fix them in kohya-orch.toml or in the --set values; `kohya-orch settings` lists "
        "every setting with its kohya_ss GUI name."
    )
    assert _error((), **{**BASE, "trigger": "hero\x07"}) == (
        "1 problem in the settings:\n"
        "  - settings: The trigger 'hero\\x07' contains the control character U+0007 (BEL).\n"
        "  hint: Fix them in kohya-orch.toml or in the --set values; `kohya-orch settings` lists "
        "every setting with its kohya_ss GUI name."
    )
    with pytest.raises(SettingsError):
        write_initial_settings(Layout(Path("/nonexistent")), **{**BASE, "name": "a/b"})


def test_a_value_sd_scripts_parser_would_misread_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        write_initial_settings(Layout(tmp_path), **{**BASE, "trigger": '""\''})
    assert err.value.render() == (
        "Cannot write trigger into kohya-orch.toml:\n"
        "  - '\"\"\\'' starts with a double quote and holds a quote or control character: "
        "sd-scripts' TOML parser (toml 0.10.2) would misread it\n"
        "  hint: Use another value."
    )
    assert not (tmp_path / "kohya-orch.toml").exists()
