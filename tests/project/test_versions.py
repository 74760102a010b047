"""The sd-scripts in use chooses the facts and the rendering: v0.9.1, the kohya_ss pins, a
commit kohya-orch ships nothing for. Every command says which facts it used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from checkouts import fake_checkout, write_head
from click.testing import CliRunner

from kohya_orchestrator.cli import cli
from kohya_orchestrator.config.profiles import PROFILES
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.lint.linter import lint, lint_file
from kohya_orchestrator.project.render import build_config
from kohya_orchestrator.sdscripts.checkout import sd_scripts_commit
from kohya_orchestrator.sdscripts.contract import load_contract
from kohya_orchestrator.sdscripts.facts import choose_facts
from kohya_orchestrator.sdscripts.versions import RELEASES

from .test_render import make_project

V091 = "8f4ee8fc343b047965cd8976fca65c3a35b7593a"
UNKNOWN = "0123456789abcdef0123456789abcdef01234567"
# The user's workflow (WORKFLOW.md): lr 0,000025 for U-Net and text encoder, rank 16/8.
SEED = ("learning_rate=0,000025", "unet_lr=0,000025", "text_encoder_lr=0,000025")


@pytest.mark.parametrize("family", ["sdxl", "sd1"])
@pytest.mark.parametrize("profile", list(PROFILES))
def test_rendered_configs_pass_the_facts_of_every_shipped_commit(
    tmp_path: Path, family: str, profile: str
) -> None:
    dest = make_project(tmp_path, family, (*SEED, f"profile={profile}", "network_dim=16"))
    rendered = build_config(Layout.at(dest))
    assert rendered.flat["text_encoder_lr"] == 2.5e-05
    for release in RELEASES:
        contract = load_contract(rendered.script, commit=release.label)
        report = lint(rendered.flattened, contract=contract, profile=profile)
        assert [p.render() for p in report.errors] == [], (release.label, profile)
        assert set(rendered.flat) <= set(contract.options), release.label


def test_the_commit_is_read_from_git_files_without_git(tmp_path: Path) -> None:
    loose = fake_checkout(tmp_path / "a", V091, real_parser=False)
    packed = tmp_path / "b"
    packed.mkdir()
    write_head(packed, V091, packed=True)
    submodule = tmp_path / "kohya_ss" / "sd-scripts"
    submodule.mkdir(parents=True)
    write_head(submodule, UNKNOWN, gitdir=True)
    detached = tmp_path / "c"
    (detached / ".git").mkdir(parents=True)
    (detached / ".git" / "HEAD").write_text(V091 + "\n")
    assert [sd_scripts_commit(p) for p in (loose, packed, submodule, detached)] == [
        V091,
        V091,
        UNKNOWN,
        V091,
    ]
    assert sd_scripts_commit(tmp_path / "none") is None


def test_v0_9_1_checkout_chooses_its_facts(tmp_path: Path) -> None:
    sd = fake_checkout(tmp_path / "sd-scripts", V091, real_parser=False)
    choice = choose_facts("sdxl_train_network.py", sd_scripts=sd)
    assert choice.contract.commit == V091
    assert choice.warning is None
    assert choice.line() == f"sd-scripts 8f4ee8fc (sd-scripts v0.9.1), at {sd}"


def test_commands_choose_v0_9_1_and_render_a_number(runner: CliRunner, tmp_path: Path) -> None:
    # Regression: with a v0.9.1 checkout, validate said "checked against 48d368fa", config
    # rendered text_encoder_lr = [2.5e-05] (v0.9.1 crashes on it minutes into the run), and
    # train --dry-run exited 0.
    sd = fake_checkout(tmp_path / "sd-scripts", V091, real_parser=False)
    dest = make_project(tmp_path, "sdxl", SEED)
    facts = f"facts: sd-scripts 8f4ee8fc (sd-scripts v0.9.1), at {sd}"

    config = runner.invoke(cli, ["config", str(dest), "--sd-scripts", str(sd)])
    assert config.exit_code == 0, config.output
    assert config.stderr.splitlines()[0] == f"note: checked against {facts[7:]}"
    assert "\ntext_encoder_lr = 2.5e-05  #" in (dest / "config.toml").read_text()

    validate = runner.invoke(cli, ["validate", str(dest), "--sd-scripts", str(sd)])
    assert validate.stdout.splitlines()[:2] == [
        f"{dest / 'config.toml'}: checked against sdxl_train_network.py at sd-scripts 8f4ee8fc "
        "(sd-scripts v0.9.1): 180 options (shipped sdxl_train_network.v0.9.1.json), "
        "profile apple-silicon",
        facts,
    ]

    dry = runner.invoke(cli, ["train", str(dest), "--dry-run", "--sd-scripts", str(sd)])
    assert f"note: checked against {facts[7:]}\n" in dry.stderr

    plan = runner.invoke(cli, ["plan", str(dest), "--sd-scripts", str(sd)])
    assert facts in plan.stdout.splitlines()


def test_a_list_is_refused_by_the_facts_of_v0_9_1(tmp_path: Path) -> None:
    # A raw [sd_scripts] text_encoder_lr is refused in a project (it is a setting), so the
    # list is written into a config file of its own and linted with each commit's facts.
    sd = fake_checkout(tmp_path / "sd-scripts", V091, real_parser=False)
    dest = make_project(tmp_path, "sdxl")
    config = build_config(Layout.at(dest)).text.replace(
        "text_encoder_lr = 2.5e-05", "text_encoder_lr = [1e-5, 2e-5]"
    )
    assert "text_encoder_lr = [1e-5, 2e-5]" in config
    path = tmp_path / "config.toml"
    path.write_text(config)
    report = lint_file(path, sd_scripts=sd, check_files=False)
    assert [p.message for p in report.errors] == [
        "'text_encoder_lr' must be a number, not a list ([1e-05, 2e-05])"
    ]
    assert lint_file(path, check_files=False).errors == []


def test_an_unknown_commit_warns_and_names_the_fix(runner: CliRunner, tmp_path: Path) -> None:
    sd = fake_checkout(tmp_path / "sd-scripts", UNKNOWN, real_parser=False)
    dest = make_project(tmp_path, "sdxl")
    result = runner.invoke(cli, ["validate", str(dest), "--sd-scripts", str(sd), "--json"])
    data = json.loads(result.stdout)
    assert data["facts"] == (
        "sd-scripts 6721028c (kohya_ss v26 pin) (facts of the pinned commit: see the warning)"
    )
    (warning,) = [w for w in data["warnings"] if w["key"] == ""]
    assert warning["message"].startswith(
        f"{sd} is at sd-scripts 0123456789, a commit kohya-orch ships no facts for, and "
        "reading its parser failed: reading sdxl_train_network.py's parser in "
    )
    assert warning["message"].endswith("checked against the facts of 6721028c (kohya_ss v26 pin)")
    assert warning["hint"].startswith(
        f"run `kohya-orch contract refresh --sd-scripts {sd} --python "
    )

    dry = runner.invoke(cli, ["train", str(dest), "--dry-run", "--sd-scripts", str(sd)])
    assert (
        f"warning: {sd} is at sd-scripts 0123456789, a commit kohya-orch ships no facts for, "
        "and kohya-orch did not start its Python (--dry-run): checked against the facts of "
        "6721028c (kohya_ss v26 pin)\n"
        f"    hint: run `kohya-orch contract refresh --sd-scripts {sd}` once (it reads that "
        "checkout's own options and keeps them)\n"
    ) in dry.stderr


def test_an_unknown_commit_is_read_once_and_kept(tmp_path: Path) -> None:
    import sys

    sd = fake_checkout(tmp_path / "sd-scripts", UNKNOWN)  # our tiny parser, really run
    first = choose_facts("sdxl_train_network.py", sd_scripts=sd, python=sys.executable)
    assert (first.warning, first.contract.commit) == (None, UNKNOWN)
    assert first.line() == f"sd-scripts 01234567, facts read from its own parser, at {sd}"
    (sd / "sdxl_train_network.py").write_text("raise SystemExit('not read again')\n")
    again = choose_facts("sdxl_train_network.py", sd_scripts=sd, python=sys.executable)
    assert again.contract.names == first.contract.names


def test_a_setting_the_commit_lacks_is_an_error_naming_both(tmp_path: Path) -> None:
    from kohya_orchestrator.errors import ConfigError
    from kohya_orchestrator.sdscripts.contract import user_contract_file

    sd = fake_checkout(tmp_path / "sd-scripts", UNKNOWN, real_parser=False)
    shipped = load_contract("sdxl_train_network.py")
    options = [
        {"dest": o.dest, "option_strings": list(o.option_strings), "kind": o.kind, "type": o.type,
         "default": o.default, "choices": None, "nargs": o.nargs}
        for o in shipped.options.values() if o.dest != "flip_aug"
    ]  # fmt: skip
    path = user_contract_file("sdxl_train_network.py", UNKNOWN)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"script": "sdxl_train_network.py", "sd_scripts_commit": UNKNOWN,
                                "options": options}))  # fmt: skip
    dest = make_project(tmp_path, "sdxl")
    with pytest.raises(ConfigError) as info:
        build_config(Layout.at(dest), sd_scripts=sd)
    assert info.value.render() == (
        "sd-scripts 01234567 has no option for what the settings ask:\n"
        "  - flip_aug (setting 'flip_aug')\n"
        "  hint: Update sd-scripts (`make sd-scripts`), or change those settings back to their "
        "defaults."
    )
