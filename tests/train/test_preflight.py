"""The preflight: every problem collected, found by real files on disk, probe included."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image

from kohya_orchestrator.errors import PreflightError
from kohya_orchestrator.sdscripts.checkout import (
    locate_python,
    locate_sd_scripts,
    sd_scripts_commit,
)
from kohya_orchestrator.sdscripts.lora_size import lora_file_bytes, state_bytes
from kohya_orchestrator.sdscripts.safetensors_header import write_header_only
from kohya_orchestrator.train.preflight import PreflightReport, disk_needed, run_preflight
from kohya_orchestrator.train.probe import (
    Probe,
    accelerate_default_configs,
    parse_probe_output,
    run_probe,
)
from kohya_orchestrator.train.steps import count_steps
from kohya_orchestrator.units import human_size

SCRIPT = "sdxl_train_network.py"
TB = 1 << 40


def make_model(path: Path, family: str = "sdxl") -> Path:
    key = {
        "sdxl": "conditioner.embedders.0.transformer.text_model.embeddings.position_ids",
        "sd1": "cond_stage_model.transformer.text_model.embeddings.position_ids",
        "lora": "lora_unet_down.lora_down.weight",
    }[family]
    write_header_only(path, {key: {"dtype": "F16", "shape": [1, 77]}}, {})
    with path.open("ab") as handle:  # the tensor's data, so the file is whole
        handle.write(bytes(2 * 77))
    return path


def make_sd_scripts(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / SCRIPT).write_text("# stand-in\n")
    (folder / "train_network.py").write_text("# stand-in\n")
    git = folder / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text("48d368fa557731ad0488c07304dfeba8c07910eb\n")
    return folder


def make_project(tmp_path: Path, captions: bool = True) -> dict[str, object]:
    concept = tmp_path / "proj" / "img" / "7_hakone"
    concept.mkdir(parents=True)
    for i in (1, 2):
        (concept / f"hakone_{i}.png").write_bytes(b"png")
        if captions or i == 1:
            (concept / f"hakone_{i}.txt").write_text("hakone, glasses")
    (tmp_path / "proj" / "model").mkdir()
    return {
        "pretrained_model_name_or_path": str(make_model(tmp_path / "base.safetensors")),
        "train_data_dir": str(tmp_path / "proj" / "img"),
        "output_dir": str(tmp_path / "proj" / "model"),
        "output_name": "hakone",
        "caption_extension": ".txt",
        "max_train_epochs": 3,
        "save_every_n_epochs": 1,
        "network_dim": 16,
        "mixed_precision": "no",
        "save_precision": "fp16",
    }


def fake_probe(**kwargs: object) -> object:
    def probe(python: str) -> Probe:
        base: dict[str, object] = {"torch": "2.13.0", "accelerate": "1.15.0", "device": "mps"}
        base.update(kwargs)
        return Probe(python=python, **base)  # type: ignore[arg-type]

    return probe


def preflight(tmp_path: Path, values: dict[str, object], **kwargs: object) -> PreflightReport:
    base: dict[str, object] = {
        "sd_scripts": tmp_path / "sd",
        "python": "/venv/bin/python",
        "environ": {},
        "home": tmp_path / "home",
        "probe": fake_probe(),
        "free_bytes": lambda p: TB,
    }
    base.update(kwargs)
    return run_preflight(values, SCRIPT, **base)  # type: ignore[arg-type]


def test_all_ok(tmp_path: Path) -> None:
    make_sd_scripts(tmp_path / "sd")
    report = preflight(tmp_path, make_project(tmp_path))
    assert report.problems == []
    assert report.warnings == []
    assert report.commit == "48d368fa557731ad0488c07304dfeba8c07910eb"
    names = [c.name for c in report.checks]
    assert names == [
        "sd-scripts",
        "python",
        "torch",
        "accelerate",
        "model",
        "captions",
        "dataset",
        "output",
        "disk",
    ]
    report.require_ok()


def test_every_problem_collected(tmp_path: Path) -> None:
    values = make_project(tmp_path, captions=False)
    values["pretrained_model_name_or_path"] = str(make_model(tmp_path / "l.safetensors", "lora"))
    (tmp_path / "proj" / "model" / "hakone.safetensors").write_bytes(b"x")
    probe = fake_probe(accelerate=None, errors={"accelerate": "ModuleNotFoundError: x"})
    report = preflight(
        tmp_path, values, probe=probe, free_bytes=lambda p: 1 << 20, sd_scripts=tmp_path / "no"
    )
    with pytest.raises(PreflightError) as info:
        report.require_ok()
    model = tmp_path / "proj" / "model"
    assert info.value.render() == "\n".join(
        [
            "training cannot start: the preflight found 6 problem(s).",
            f"  - sd-scripts not found: {tmp_path / 'no'} (from --sd-scripts) does not exist.",
            "  - /venv/bin/python cannot import accelerate: ModuleNotFoundError: x",
            f"  - {tmp_path / 'l.safetensors'} is a LoRA, not a base checkpoint.",
            f"  - 1 of 2 image(s) in {tmp_path / 'proj' / 'img'} have no .txt caption: "
            "hakone_2.png",
            f"  - {model / 'hakone.safetensors'} exists (a finished run of hakone): training "
            "would overwrite it; use --resume to continue, --force to overwrite, or change "
            "output_name.",
            "  - only 1.0 MiB free for about 327.2 MiB of LoRA files, states and latents",
            "  hint: Fix these and run again; `kohya-orch doctor DEST` shows the whole checklist.",
        ]
    )


def test_wrong_family_for_script(tmp_path: Path) -> None:
    make_sd_scripts(tmp_path / "sd")
    values = make_project(tmp_path)
    values["pretrained_model_name_or_path"] = str(make_model(tmp_path / "s.safetensors", "sd1"))
    report = preflight(tmp_path, values)
    assert report.problems == [
        f"{tmp_path / 's.safetensors'} is SD 1.x, which train_network.py trains, but the "
        "config is for sdxl_train_network.py."
    ]


def test_no_concept_folders(tmp_path: Path) -> None:
    make_sd_scripts(tmp_path / "sd")
    values = make_project(tmp_path)
    (tmp_path / "proj" / "img" / "7_hakone").rename(tmp_path / "proj" / "img" / "hakone")
    report = preflight(tmp_path, values)
    assert report.problems == [
        f"no images in {tmp_path / 'proj' / 'img'}: sd-scripts reads only folders named "
        "<repeats>_<name> with images inside (skipped: hakone)."
    ]


def test_force_and_resume(tmp_path: Path) -> None:
    make_sd_scripts(tmp_path / "sd")
    values = make_project(tmp_path)
    model = tmp_path / "proj" / "model"
    (model / "hakone-000001.safetensors").write_bytes(b"x")
    report = preflight(tmp_path, values)
    assert report.problems == [
        f"{model / 'hakone-000001.safetensors'} exists (an unfinished run of hakone): training "
        "would overwrite it; use --resume to continue, --force to overwrite, or change "
        "output_name."
    ]
    forced = preflight(tmp_path, values, force=True)
    assert forced.problems == []
    assert forced.warnings == [f"--force: 1 file(s) of hakone in {model} will be overwritten"]
    resumed = preflight(tmp_path, values, resume=True)
    assert resumed.problems == [
        f"--resume: no saved state (a '*-state' folder) in {model}; turn on save_state for "
        "the next run."
    ]
    (model / "hakone-000001-state").mkdir()
    assert preflight(tmp_path, values, resume=True).problems == []


def test_probe_findings(tmp_path: Path) -> None:
    make_sd_scripts(tmp_path / "sd")
    values = make_project(tmp_path)
    values["mixed_precision"] = "fp16"
    report = preflight(tmp_path, values, probe=fake_probe(missing=["voluptuous"]), gpus=2)
    assert report.problems == [
        "/venv/bin/python lacks sd-scripts' module(s) voluptuous: install its requirements.txt "
        "there.",
        "--gpus 2 but /venv/bin/python sees 0 GPU(s).",
    ]
    assert report.warnings == ["mixed_precision fp16 often fails on Apple Silicon; use no."]


def test_accelerate_default_config_warning(tmp_path: Path) -> None:
    make_sd_scripts(tmp_path / "sd")
    config = tmp_path / "hf" / "accelerate" / "default_config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("distributed_type: NO\n")
    report = preflight(tmp_path, make_project(tmp_path), environ={"HF_HOME": str(tmp_path / "hf")})
    assert report.warnings == [
        f"{config} exists: kohya-orch passes accelerate a config of its own, so this file is "
        "not used for the run; to use it on purpose, pass --accelerate-config."
    ]
    home_config = (
        tmp_path / "home" / ".cache" / "huggingface" / "accelerate" / "default_config.yaml"
    )
    home_config.parent.mkdir(parents=True)
    home_config.write_text("x: 1\n")
    assert accelerate_default_configs({}, tmp_path / "home") == [home_config]
    # accelerate never reads default_config.json (both of its default paths are the YAML one).
    home_config.unlink()
    home_config.with_suffix(".json").write_text("{}")
    assert accelerate_default_configs({}, tmp_path / "home") == []


def test_locate_sd_scripts_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    repo = tmp_path / "repo"
    gui = make_sd_scripts(home / "kohya_ss" / "sd-scripts")
    assert locate_sd_scripts(SCRIPT, None, {}, home, repo) == (gui, "the kohya_ss GUI install")
    vendor = make_sd_scripts(repo / "vendor" / "sd-scripts")
    # vendor/ counts only next to a source checkout of kohya-orch (its pin file there):
    # a pip install's site-packages/vendor is somebody else's.
    assert locate_sd_scripts(SCRIPT, None, {}, home, repo) == (gui, "the kohya_ss GUI install")
    (repo / "vendor" / "sd-scripts.pin").write_text("x")
    assert locate_sd_scripts(SCRIPT, None, {}, home, repo) == (
        vendor,
        "vendor/ (`make sd-scripts`)",
    )
    env = make_sd_scripts(tmp_path / "env")
    environ = {"KOHYA_SD_SCRIPTS": str(env)}
    assert locate_sd_scripts(SCRIPT, None, environ, home, repo) == (env, "$KOHYA_SD_SCRIPTS")
    explicit = tmp_path / "x"
    assert locate_sd_scripts(SCRIPT, explicit, environ, home, repo) == (explicit, "--sd-scripts")
    relative = locate_sd_scripts(SCRIPT, Path("rel"), environ, home, repo)
    assert relative == (Path("rel").absolute(), "--sd-scripts")  # every path is absolute
    assert locate_sd_scripts(SCRIPT, None, {}, tmp_path / "h2", tmp_path / "r2") == (
        None,
        f"{tmp_path / 'h2' / 'kohya_ss' / 'sd-scripts'}",
    )


def test_locate_python(tmp_path: Path) -> None:
    gui = tmp_path / "kohya_ss"
    sd = make_sd_scripts(gui / "sd-scripts")
    assert locate_python(None, sd) == (sys.executable, "the Python running kohya-orch")
    venv_python = gui / "venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.write_text("")
    assert locate_python(None, sd) == (str(venv_python), f"the venv at {gui / 'venv'}")
    assert locate_python("/p/python", sd) == ("/p/python", "--python")


def test_commit_from_packed_refs_and_detached(tmp_path: Path) -> None:
    sd = make_sd_scripts(tmp_path / "sd")
    (sd / ".git" / "refs" / "heads" / "main").unlink()
    (sd / ".git" / "packed-refs").write_text("# pack-refs\nabc123 refs/heads/main\n")
    assert sd_scripts_commit(sd) == "abc123"
    (sd / ".git" / "HEAD").write_text("def456\n")
    assert sd_scripts_commit(sd) == "def456"


def test_disk_needed_without_countable_images_leaves_out_the_latents() -> None:
    # The stand-in images have no readable header, so the dataset cannot be counted.
    values = {"network_dim": 16, "max_train_epochs": 3, "save_every_n_epochs": 1}
    one = lora_file_bytes("sdxl", 16, {"save_precision": "fp16"})
    assert disk_needed({**values, "save_precision": "fp16"}, SCRIPT) == 3 * one
    with_state = disk_needed({**values, "save_state": True}, SCRIPT)
    assert with_state == 3 * lora_file_bytes("sdxl", 16, {}) + 3 * state_bytes("sdxl", 16, {})


def test_doctor_and_plan_need_the_same_disk(tmp_path: Path) -> None:
    # Regression: the preflight had a size model of its own (3.5 M weights per rank, plus a
    # GiB) and said "about 2.6 GiB" where plan said 1.72 GB for the same run.
    make_sd_scripts(tmp_path / "sd")
    values = make_project(tmp_path)
    for i in (1, 2):
        Image.new("RGB", (640, 512)).save(
            tmp_path / "proj" / "img" / "7_hakone" / f"hakone_{i}.png"
        )
    values |= {"resolution": "512,512", "enable_bucket": True, "cache_latents_to_disk": True}
    planned = count_steps(values, script=SCRIPT)
    report = preflight(tmp_path, values, free_bytes=lambda p: 1 << 20)
    assert planned.disk_bytes == disk_needed(values, SCRIPT) > 3 * planned.lora_file_bytes
    assert report.problems == [
        f"only 1.0 MiB free for about {human_size(planned.disk_bytes)} of LoRA files, states "
        "and latents"
    ]


def test_real_probe_of_this_python() -> None:
    probe = run_probe(sys.executable)
    assert probe.python == sys.executable
    assert probe.python_version == sys.version.split()[0]
    assert set(probe.errors) <= {"torch", "torchvision", "accelerate"}
    if "torch" not in probe.errors:
        assert probe.device in ("cpu", "cuda", "mps")


def test_probe_unanswered() -> None:
    with pytest.raises(PreflightError) as info:
        parse_probe_output("/x/python", "Segmentation fault")
    assert info.value.problems == ["Segmentation fault"]


def test_broken_torchvision(tmp_path: Path) -> None:
    make_sd_scripts(tmp_path / "sd")
    error = "RuntimeError: operator torchvision::nms does not exist"
    report = preflight(
        tmp_path, make_project(tmp_path), probe=fake_probe(errors={"torchvision": error})
    )
    assert report.problems == [f"/venv/bin/python cannot import torchvision: {error}"]


def test_truncated_model(tmp_path: Path) -> None:
    make_sd_scripts(tmp_path / "sd")
    values = make_project(tmp_path)
    model = Path(str(values["pretrained_model_name_or_path"]))
    size = model.stat().st_size
    with model.open("r+b") as handle:
        handle.truncate(size - 10)
    report = preflight(tmp_path, values)
    assert report.problems == [
        f"{model} is truncated: its header describes {size} bytes, the file has {size - 10} "
        "(an interrupted download? download it again)."
    ]


def test_packages_are_compared_with_the_checkouts_pins(tmp_path: Path) -> None:
    # Regression: doctor called accelerate 1.15 "ok" while the checkout pins 1.6.0.
    sd = make_sd_scripts(tmp_path / "sd")
    (sd / "requirements.txt").write_text(
        "accelerate==1.6.0\ntransformers==4.54.1\ndiffusers[torch]==0.32.1  # pinned\n"
        "# torch is installed separately\nsafetensors==0.4.5\n"
    )
    versions = {"accelerate": "1.15.0", "transformers": "4.54.1", "diffusers": "0.35.0",
                "torch": "2.13.0+cpu"}  # fmt: skip
    report = preflight(tmp_path, make_project(tmp_path), probe=fake_probe(versions=versions))
    assert [c.detail for c in report.checks if c.name == "requirements"] == [
        f"accelerate 1.15.0 in /venv/bin/python, but {sd / 'requirements.txt'} pins 1.6.0: "
        "sd-scripts is tested with the pinned version (pip install accelerate==1.6.0)",
        f"diffusers 0.35.0 in /venv/bin/python, but {sd / 'requirements.txt'} pins 0.32.1: "
        "sd-scripts is tested with the pinned version (pip install diffusers==0.32.1)",
    ]
    assert all(c.status == "warn" for c in report.checks if c.name == "requirements")


def test_the_real_probe_reports_installed_versions() -> None:
    probe = run_probe(sys.executable)
    import importlib.metadata as md

    for name in ("torch", "accelerate"):
        try:
            assert probe.versions[name] == md.version(name)
        except md.PackageNotFoundError:
            assert name not in probe.versions
