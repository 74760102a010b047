"""Rendering DEST/config.toml: golden files, parse-back checks, hostile values, the CLI."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
import toml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from testpaths import FACTS, GOLDEN, TEMPLATES

from kohya_orchestrator.cli import cli
from kohya_orchestrator.config.settings_file import write_initial_settings
from kohya_orchestrator.config.templates import ENV_VAR
from kohya_orchestrator.config.tomlquote import TomlValueError, toml_value
from kohya_orchestrator.dataset.names import validate_file_prefix
from kohya_orchestrator.errors import (
    ConfigError,
    InputError,
    ModelError,
    SettingsError,
    TemplateError,
)
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.project.render import build_config, write_config
from kohya_orchestrator.sdscripts.safetensors_header import write_header_only

UPDATE = os.environ.get("KOHYA_ORCH_UPDATE_GOLDEN") == "1"

KEYS = {
    "sdxl": [
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
        "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
        "model.diffusion_model.label_emb.0.0.weight",
    ],
    "sd1": [
        "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
        "model.diffusion_model.input_blocks.0.0.weight",
    ],
    "sd2": [
        "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight",
        "model.diffusion_model.input_blocks.0.0.weight",
    ],
    "sd3": ["model.diffusion_model.joint_blocks.0.context_block.attn.qkv.weight"],
}
SCRIPT = {"sdxl": "sdxl_train_network.py", "sd1": "train_network.py", "sd2": "train_network.py"}


@pytest.fixture(autouse=True)
def _no_env_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def make_project(
    root: Path,
    family: str = "sdxl",
    overrides: tuple[str, ...] = (),
    model_name: str = "pony.safetensors",
    **values: Any,
) -> Path:
    """A prepared project: a header-only checkpoint, one captioned image, the settings."""
    model = root / "models" / model_name
    model.parent.mkdir(parents=True, exist_ok=True)
    write_header_only(model, {k: {"dtype": "F16", "shape": [4, 4]} for k in KEYS[family]}, {})
    dest = root / "proj"
    concept = dest / "img" / "7_yumoto_hakone"
    concept.mkdir(parents=True)
    (dest / "model").mkdir()
    (dest / "log").mkdir()
    Image.new("RGB", (512, 768), (200, 120, 40)).save(concept / "yumoto_hakone_1.png")
    (concept / "yumoto_hakone_1.txt").write_text("yumoto_hakone, glasses, suit\n")
    args: dict[str, Any] = {
        "name": "yumoto_hakone",
        "trigger": "yumoto_hakone",
        "images": str(root / "images"),
        "model": str(model),
        "repeats": 7,
        **values,
    }
    write_initial_settings(Layout(dest), **args, overrides=overrides)
    return dest


def _flat(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not isinstance(v, dict)}


@pytest.mark.parametrize("profile", ["apple-silicon", "cuda", "cpu"])
@pytest.mark.parametrize("family", ["sdxl", "sd1"])
def test_golden_defaults(tmp_path: Path, family: str, profile: str) -> None:
    dest = make_project(tmp_path, family, (f"profile={profile}",))
    rendered = build_config(Layout.at(dest))
    text = rendered.text.replace(str(tmp_path), "/TMP")
    golden = GOLDEN / f"{family}_{profile}.toml"
    if UPDATE:
        golden.write_text(text)
    assert text == golden.read_text()
    assert tomllib.loads(rendered.text) == toml.loads(rendered.text) == rendered.values
    assert rendered.script == SCRIPT[family]
    assert rendered.report.ok, rendered.report.messages()
    assert rendered.report.warnings == []


@pytest.mark.parametrize("family", ["sdxl", "sd1", "sd2"])
def test_every_key_is_one_the_script_knows(tmp_path: Path, family: str) -> None:
    dest = make_project(tmp_path, family, ("sample_every_n_epochs=1",), reg=str(tmp_path))
    values = build_config(Layout.at(dest)).values
    facts = json.loads((FACTS / f"{SCRIPT[family].removesuffix('.py')}.48d368fa.json").read_text())
    known = {o["dest"] for o in facts["options"]}
    assert set(values) <= known
    assert not {"epoch", "epochs"} & set(values)


def test_sdxl_config_contents(tmp_path: Path) -> None:
    dest = make_project(tmp_path)
    rendered = build_config(Layout.at(dest))
    v = rendered.values
    assert v["max_train_epochs"] == 15 and v["save_every_n_epochs"] == 1
    assert v["caption_extension"] == ".txt" and v["resolution"] == "512,512"
    assert (v["enable_bucket"], v["min_bucket_reso"], v["max_bucket_reso"]) == (True, 256, 1024)
    assert v["bucket_reso_steps"] % 32 == 0
    assert v["network_module"] == "networks.lora"
    assert (v["network_dim"], v["network_alpha"]) == (16, 8.0)
    assert v["text_encoder_lr"] == 2.5e-5  # one number: every shipped commit reads it
    assert (v["lr_scheduler"], v["lr_warmup_steps"]) == ("constant_with_warmup", 0.05)
    assert (v["train_data_dir"], v["output_dir"]) == (str(dest / "img"), str(dest / "model"))
    assert (v["logging_dir"], v["seed"], v["sdpa"]) == (str(dest / "log"), 42, True)
    assert "clip_skip" not in v and "reg_data_dir" not in v and "sample_prompts" not in v
    assert rendered.notes[-1] == (
        "clip_skip = 2 is not written: SDXL training ignores it; use it in Forge when generating."
    )


def test_sd15_and_sd2_get_clip_skip(tmp_path: Path) -> None:
    sd1 = build_config(Layout.at(make_project(tmp_path / "a", "sd1"))).values
    sd2 = build_config(Layout.at(make_project(tmp_path / "b", "sd2"))).values
    assert (sd1["clip_skip"], "v2" in sd1) == (2, False)
    assert (sd2["clip_skip"], sd2["v2"]) == (2, True)


def test_reg_data_dir_only_with_reg(tmp_path: Path) -> None:
    dest = make_project(tmp_path, reg=str(tmp_path / "reg_images"), reg_repeats=1)
    assert build_config(Layout.at(dest)).values["reg_data_dir"] == str(dest / "reg")


def test_set_and_raw_sd_scripts_keys(tmp_path: Path) -> None:
    dest = make_project(tmp_path, overrides=("sd_scripts.noise_offset=0.05",))
    rendered = build_config(
        Layout.at(dest),
        ("learning_rate=0,0001", "sd_scripts.max_grad_norm=1,0", "seed=7"),
    )
    v = rendered.flat
    assert (v["learning_rate"], v["noise_offset"], v["max_grad_norm"], v["seed"]) == (
        1e-4,
        0.05,
        1.0,
        7,
    )
    assert rendered.text.endswith(
        "# --- Raw sd-scripts keys from [sd_scripts] in kohya-orch.toml\n[sd_scripts]\n"
        "noise_offset = 0.05\nmax_grad_norm = 1.0\n"
    )


HOSTILE = ['x"\n[evil]', 'a\\b"c', "]=[", "name = 1", "tab\there", "ünï 名前 🎨", "\x01\x7f", "'q'"]


# The name, trigger and class prompt must also be usable as file names and caption text
# (settings refuse the others, see test_settings); these of HOSTILE are.
USABLE_AS_NAMES = {"]=[", "name = 1", "ünï 名前 🎨", "'q'"}


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_parse_back_exactly_and_add_no_key(tmp_path: Path, value: str) -> None:
    plain = build_config(Layout.at(make_project(tmp_path / "plain"))).flat
    named = value if value in USABLE_AS_NAMES else "hero"
    dest = make_project(
        tmp_path / "hostile",
        model_name=value.replace("/", "_").replace("\x00", "") + ".safetensors",
        name=named,
        trigger=named,
        class_prompt=named,
        reg=value,
        reg_repeats=1,
        # Quoted as TOML so that --set passes the exact string (bare text is taken as is too).
        overrides=(
            f"caption_extension={toml_value(value)}",
            f"optimizer={toml_value(value)}",
            f"sd_scripts.training_comment={toml_value(value)}",
        ),
    )
    rendered = build_config(Layout.at(dest))
    v = rendered.flat
    assert tomllib.loads(rendered.text) == toml.loads(rendered.text)
    assert set(v) == set(plain) | {"reg_data_dir", "training_comment"}
    assert v["output_name"] == named
    assert (v["caption_extension"], v["optimizer_type"]) == (value,) * 2
    assert v["training_comment"] == value
    assert v["pretrained_model_name_or_path"] == rendered.settings.model


def test_a_template_without_the_filter_is_caught(tmp_path: Path) -> None:
    dest = make_project(tmp_path)
    mine = dest / "templates"
    mine.mkdir()
    shipped = (TEMPLATES / "sdxl_lora.toml.j2").read_text()
    (mine / "sdxl_lora.toml.j2").write_text(
        shipped.replace(
            "caption_extension = {{ args.caption_extension | toml }}",
            'caption_extension = "{{ args.caption_extension }}"',
        )
    )
    with pytest.raises(TemplateError) as err:
        build_config(Layout.at(dest), ('caption_extension=say "hi"',))
    assert err.value.message.startswith(f"{mine / 'sdxl_lora.toml.j2'} rendered invalid TOML:")


SHIPPED_SDXL = TEMPLATES / "sdxl_lora.toml.j2"


def _template_copy(root: Path, old: str, new: str) -> Path:
    folder = root / "t"
    folder.mkdir()
    text = SHIPPED_SDXL.read_text()
    assert old in text
    (folder / "sdxl_lora.toml.j2").write_text(text.replace(old, new))
    return folder


def test_a_template_that_renders_a_wrong_value_is_caught(tmp_path: Path) -> None:
    dest = make_project(tmp_path)
    line = "max_train_epochs = {{ args.max_train_epochs | toml }}"
    folder = _template_copy(tmp_path, line, line.replace("| toml", "| string | toml"))
    with pytest.raises(TemplateError) as err:
        build_config(Layout.at(dest), templates_dir=folder)
    assert err.value.message == (
        f"{folder / 'sdxl_lora.toml.j2'}: the rendered values differ from the settings:\n"
        "  max_train_epochs (setting 'epochs'): intended 15, parsed back \"15\""
    )


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        # A copy that drops a line: sd-scripts would train without flip_aug's value, silently.
        (
            "flip_aug = {{ args.flip_aug | toml }}",
            "",
            "flip_aug: intended true, missing after parsing",
        ),
        # A copy that hard-codes a value the template never reads from `args`.
        (
            "seed = {{ args.seed | toml }}",
            "seed = 7",
            "seed: intended 42, parsed back 7",
        ),
    ],
)
def test_a_template_copy_that_drops_or_hardcodes_a_setting_is_caught(
    tmp_path: Path, old: str, new: str, problem: str
) -> None:
    dest = make_project(tmp_path)
    folder = _template_copy(tmp_path, old, new)
    with pytest.raises(TemplateError) as err:
        build_config(Layout.at(dest), templates_dir=folder)
    assert err.value.message == (
        f"{folder / 'sdxl_lora.toml.j2'}: the rendered values differ from the settings:\n"
        f"  {problem}"
    )
    assert err.value.hint == (
        "Write every key from `args` through the `toml` filter, "
        "`key = {{ args.key | toml }}`, and keep every key of the packaged template."
    )


def test_raw_key_the_template_hardcodes(tmp_path: Path) -> None:
    dest = make_project(tmp_path, overrides=("sd_scripts.max_grad_norm=2.0",))
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "sdxl_lora.toml.j2").write_text("max_grad_norm = 1.0\n")
    with pytest.raises(TemplateError) as err:
        build_config(Layout.at(dest), templates_dir=tmp_path / "t")
    assert err.value.message == (
        f"{tmp_path / 't' / 'sdxl_lora.toml.j2'} writes max_grad_norm itself, so [sd_scripts] "
        "in kohya-orch.toml cannot override it."
    )


def test_sampling_writes_prompts(tmp_path: Path) -> None:
    dest = make_project(
        tmp_path,
        trigger="yumoto_hakone, glasses",
        overrides=("sample_every_n_epochs=2", "resolution=768,768"),
    )
    rendered = build_config(Layout.at(dest))
    assert rendered.values["sample_every_n_epochs"] == 2
    assert rendered.values["sample_prompts"] == str(dest / "sample_prompts.txt")
    assert rendered.report.ok, rendered.report.messages()
    write_config(rendered, Layout.at(dest))
    lines = [
        ln
        for ln in (dest / "sample_prompts.txt").read_text().splitlines()
        if ln and not ln.startswith("#")
    ]
    assert len(lines) == 3
    seeds = []
    for line in lines:
        # sd-scripts' own parsing (train_util.line_to_prompt_dict): split on " --".
        prompt, *options = line.split(" --")
        assert prompt.startswith("yumoto_hakone, glasses, ")
        opts = dict(o.split(" ", 1) for o in options)
        assert (opts["w"], opts["h"], opts["s"], opts["l"]) == ("768", "768", "28", "7.0")
        assert opts["n"].startswith("lowres")
        seeds.append(opts["d"])
    assert seeds == ["1234", "1235", "1236"]


def test_the_pony_preset_puts_the_score_tags_before_the_trigger_and_class(
    tmp_path: Path,
) -> None:
    dest = make_project(
        tmp_path,
        trigger="yumoto_hakone, glasses",
        class_prompt="1boy, man",
        overrides=("sample_every_n_epochs=1", "sample_prompts_preset=pony"),
    )
    rendered = build_config(Layout.at(dest))
    assert rendered.sample_template is not None
    assert rendered.sample_template.name == "sample_prompts_pony.txt.j2"
    assert rendered.sample_prompts is not None
    lines = [ln for ln in rendered.sample_prompts.splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == (
        "score_9, score_8_up, score_7_up, source_anime, rating_safe, yumoto_hakone, glasses, "
        "1boy, man, portrait, upper body, looking at viewer, simple background --d 1234 --w 512 "
        "--h 512 --s 28 --l 7.0 --n score_4, score_5, score_6, lowres, bad anatomy, bad hands, "
        "blurry, jpeg artifacts, watermark, text, nsfw"
    )
    neutral = build_config(Layout.at(dest), ("sample_prompts_preset=neutral",))
    assert neutral.sample_prompts is not None
    assert "score_9" not in neutral.sample_prompts  # the neutral default stays the default


def test_sampling_refuses_a_trigger_that_breaks_prompt_lines(tmp_path: Path) -> None:
    dest = make_project(tmp_path, trigger="x --n evil", overrides=("sample_every_n_epochs=1",))
    with pytest.raises(TemplateError) as err:
        build_config(Layout.at(dest))
    packaged = TEMPLATES / "sample_prompts.txt.j2"
    assert err.value.message == (
        f"{packaged}: 'x --n evil' cannot go into a sample prompt line: it contains \" --\", "
        "which starts an option"
    )


def test_write_config_refuses_lint_errors(tmp_path: Path) -> None:
    dest = make_project(tmp_path)
    rendered = build_config(Layout.at(dest), ("sd_scripts.epoch=3",))
    with pytest.raises(ConfigError) as err:
        write_config(rendered, Layout.at(dest))
    assert err.value.problems == [
        "'epoch' is a kohya_ss GUI name, not an sd-scripts option: sd-scripts ignores it\n"
        "    hint: use max_train_epochs = 3\n"
        "    (from --set sd_scripts.epoch; kohya-orch's setting for it is 'epochs')"
    ]
    assert not (dest / "config.toml").exists()


def test_model_problems(tmp_path: Path) -> None:
    dest = make_project(tmp_path, "sd3")
    with pytest.raises(ModelError) as err:
        build_config(Layout.at(dest))
    model = tmp_path / "models" / "pony.safetensors"
    assert err.value.message == (
        f"{model} is an SD3 checkpoint; this tool trains SDXL and SD 1.x/2.x LoRAs."
    )
    model.unlink()
    with pytest.raises(ModelError) as err:
        build_config(Layout.at(dest))
    assert err.value.message == f"Model file not found: {model}"


# -- CLI ---------------------------------------------------------------------------------


def test_cli_config_writes(runner: CliRunner, tmp_path: Path) -> None:
    dest = make_project(tmp_path)
    result = runner.invoke(cli, ["config", str(dest)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"Wrote {dest / 'config.toml'} (SDXL: sdxl_train_network.py; template "
        "sdxl_lora.toml.j2 from packaged).\n"
    )
    assert "note: network_alpha = 8: rank 16 / 2.\n" in result.stderr
    assert (dest / "config.toml").read_text() == build_config(Layout.at(dest)).text


def test_cli_config_dry_run_writes_nothing(runner: CliRunner, tmp_path: Path) -> None:
    dest = make_project(tmp_path)
    result = runner.invoke(
        cli, ["config", str(dest), "--dry-run", "--set", "epochs=3"], catch_exceptions=False
    )
    assert result.exit_code == 0
    assert toml.loads(result.stdout)["max_train_epochs"] == 3
    assert not (dest / "config.toml").exists()


def test_cli_config_errors(runner: CliRunner, tmp_path: Path) -> None:
    dest = make_project(tmp_path)
    result = runner.invoke(cli, ["config", str(dest), "--set", "epoch=3"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: 1 problem in the settings:\n"
        "  - --set: unknown setting 'epoch' (did you mean 'epochs'?)\n"
        "  hint: Fix them in kohya-orch.toml or in the --set values; `kohya-orch settings` lists "
        "every setting with its kohya_ss GUI name.\n"
    )
    result = runner.invoke(cli, ["config", str(dest), "--set", "epochs"])
    assert result.exit_code == 2
    assert (
        "Invalid value for '--set': 'epochs' is not KEY=VALUE (e.g. --set epochs=10)."
        in result.stderr
    )
    result = runner.invoke(cli, ["config", str(dest), "--set", "sd_scripts.epoch=3"])
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "Error: The rendered config has errors; nothing was written:\n"
        "  - 'epoch' is a kohya_ss GUI name, not an sd-scripts option: sd-scripts ignores it\n"
        "    hint: use max_train_epochs = 3\n"
        "    (from --set sd_scripts.epoch; kohya-orch's setting for it is 'epochs')\n"
        "  hint: Fix the settings (kohya-orch.toml or --set) or the template.\n"
    )


def test_cli_dry_run_names_the_setting(runner: CliRunner, tmp_path: Path) -> None:
    dest = make_project(tmp_path)
    result = runner.invoke(cli, ["config", str(dest), "--dry-run", "--set", "optimizer=AdamW8bit"])
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "Error: The rendered config has errors:\n"
        "  - 'optimizer_type' = \"AdamW8bit\" needs bitsandbytes, which is NVIDIA-only\n"
        '    hint: use optimizer_type = "AdamW" (profile apple-silicon)\n'
        "    (setting 'optimizer', from --set)\n"
        "  hint: Fix the settings (kohya-orch.toml or --set) or the template.\n"
    )
    assert not (dest / "config.toml").exists()


def test_cli_templates_ls_and_cp(runner: CliRunner, tmp_path: Path) -> None:
    dest = make_project(tmp_path)
    result = runner.invoke(
        cli, ["templates", "cp", "sdxl_lora.toml.j2", str(dest)], catch_exceptions=False
    )
    target = dest / "templates" / "sdxl_lora.toml.j2"
    assert result.output == f"Copied sdxl_lora.toml.j2 to {target}\n"
    result = runner.invoke(cli, ["templates", "cp", "sdxl_lora.toml.j2", str(dest)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {target} already exists; not overwritten.\n"
        "  hint: Use --force to replace it with a fresh copy.\n"
    )
    result = runner.invoke(cli, ["templates", "ls", str(dest), "--json"], catch_exceptions=False)
    rows = [(r["name"], r["layer"], r["active"]) for r in json.loads(result.output)]
    assert rows == [
        ("sdxl_lora.toml.j2", "project", True),
        ("sample_prompts.txt.j2", "packaged", True),
        ("sample_prompts_pony.txt.j2", "packaged", True),
        ("sd15_lora.toml.j2", "packaged", True),
        ("sdxl_lora.toml.j2", "packaged", False),
    ]
    result = runner.invoke(cli, ["templates", "ls"], catch_exceptions=False)
    assert result.output.splitlines()[0].split() == ["NAME", "LAYER", "PATH"]
    assert len(result.output.splitlines()) == 5
    # the project copy is what config renders now
    target.write_text(target.read_text().replace("# --- Network", "# --- Network (mine)"))
    assert "# --- Network (mine)" in build_config(Layout.at(dest)).text


def test_relative_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dest = make_project(tmp_path)
    settings = dest / "kohya-orch.toml"
    model = tmp_path / "models" / "pony.safetensors"
    settings.write_text(settings.read_text().replace(f'"{model}"', '"../models/pony.safetensors"'))
    monkeypatch.chdir(tmp_path)
    rendered = build_config(Layout.at(Path("proj")))
    assert rendered.values["pretrained_model_name_or_path"] == str(
        dest / "../models/pony.safetensors"
    )
    assert rendered.values["train_data_dir"] == str(dest / "img")


def test_note_when_repeats_and_folder_differ(tmp_path: Path) -> None:
    dest = make_project(tmp_path)
    assert not any("repeats" in n for n in build_config(Layout.at(dest)).notes)
    notes = build_config(Layout.at(dest), ("repeats=10",)).notes
    assert (
        "repeats = 10 but there is no img/10_yumoto_hakone (found: 7_yumoto_hakone); "
        "sd-scripts takes the repeats from the folder name, so run `kohya-orch prepare` "
        "again to apply the settings."
    ) in notes


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.text(min_size=1, max_size=20))
def test_any_name_renders_exactly(tmp_path: Path, value: str) -> None:
    dest = tmp_path / "proj"
    if not dest.exists():
        make_project(tmp_path)
    try:
        literal = toml_value(value)
    except TomlValueError:
        return  # refused up front (sd-scripts' parser would misread it), covered elsewhere
    try:
        validate_file_prefix(value, what="name")
    except InputError as exc:
        # A name that cannot be a file name is refused by the settings, saying why.
        with pytest.raises(SettingsError) as err:
            build_config(Layout.at(dest), (f"name={literal}",))
        assert err.value.problems == [f"--set: {exc.message}"]
        name = "hero"
    else:
        name = value
    rendered = build_config(
        Layout.at(dest), (f"name={toml_value(name)}", f"caption_extension={literal}")
    )
    assert tomllib.loads(rendered.text) == toml.loads(rendered.text) == rendered.values
    assert rendered.values["output_name"] == name
    assert rendered.values["caption_extension"] == value
