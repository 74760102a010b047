"""build_launch: the whole argv, environment and working folder for each kind of run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kohya_orchestrator.errors import LaunchError
from kohya_orchestrator.train.launch import (
    LaunchSpec,
    accelerate_config_text,
    build_launch,
    default_cpu_threads,
    newest_state,
    resolve_processes,
)

PY = "/opt/venv/bin/python"
SD = Path("/opt/sd-scripts")
DEST = Path("/data/proj")
CONFIG = DEST / "config.toml"
LOG = DEST / "log" / "train-20260101-120000.log"
GENERATED = "/data/proj/log/train-20260101-120000.accelerate.yaml"


def launch(**kwargs: object) -> LaunchSpec:
    base: dict[str, object] = {
        "python": PY,
        "sd_scripts": SD,
        "script": "sdxl_train_network.py",
        "config_file": CONFIG,
        "log_path": LOG,
        "num_cpu_threads": 4,
    }
    base.update(kwargs)
    return build_launch(**base)  # type: ignore[arg-type]


def single(precision: str = "no") -> list[str]:
    return [
        "--config_file",
        GENERATED,
        "--num_processes",
        "1",
        "--num_machines",
        "1",
        "--mixed_precision",
        precision,
        "--dynamo_backend",
        "no",
        "--num_cpu_threads_per_process",
        "4",
    ]


def test_apple_silicon_sdxl() -> None:
    spec = launch(apple_silicon=True)
    assert spec.argv == [
        PY,
        "-m",
        "accelerate.commands.launch",
        *single(),
        "/opt/sd-scripts/sdxl_train_network.py",
        "--config_file",
        "/data/proj/config.toml",
    ]
    assert spec.env == {"PYTORCH_ENABLE_MPS_FALLBACK": "1"}
    assert spec.cwd == SD
    assert spec.log_path == LOG
    assert spec.num_processes == 1
    assert spec.notes == []


def test_cuda_sd15_bf16() -> None:
    spec = launch(script="train_network.py", mixed_precision="bf16", apple_silicon=False)
    assert spec.argv == [
        PY,
        "-m",
        "accelerate.commands.launch",
        *single("bf16"),
        "/opt/sd-scripts/train_network.py",
        "--config_file",
        "/data/proj/config.toml",
    ]
    assert spec.env == {}
    assert spec.cwd == SD


def test_cuda_sdxl_fp16_with_extra_args_last() -> None:
    spec = launch(mixed_precision="fp16", extra_args=["--max_train_steps", "10", "--xformers"])
    assert spec.argv == [
        PY,
        "-m",
        "accelerate.commands.launch",
        *single("fp16"),
        "/opt/sd-scripts/sdxl_train_network.py",
        "--config_file",
        "/data/proj/config.toml",
        "--max_train_steps",
        "10",
        "--xformers",
    ]
    assert spec.env == {}


def test_apple_silicon_sd15_with_extra_args() -> None:
    spec = launch(script="train_network.py", apple_silicon=True, extra_args=["--seed", "7"])
    assert spec.argv[-5:] == [
        "/opt/sd-scripts/train_network.py",
        "--config_file",
        "/data/proj/config.toml",
        "--seed",
        "7",
    ]
    assert spec.env == {"PYTORCH_ENABLE_MPS_FALLBACK": "1"}


def test_multi_gpu() -> None:
    spec = launch(gpus=2, mixed_precision="bf16")
    assert spec.argv == [
        PY,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        GENERATED,
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "bf16",
        "--dynamo_backend",
        "no",
        "--num_cpu_threads_per_process",
        "4",
        "/opt/sd-scripts/sdxl_train_network.py",
        "--config_file",
        "/data/proj/config.toml",
    ]
    assert spec.num_processes == 2
    assert spec.env == {}
    assert spec.cwd == SD


def test_gpu_ids_alone_count_the_processes() -> None:
    spec = launch(gpu_ids="1,3")
    assert spec.argv[5:11] == [
        "--multi_gpu",
        "--gpu_ids",
        "1,3",
        "--num_processes",
        "2",
        "--num_machines",
    ]
    assert spec.num_processes == 2


def test_one_gpu_id_is_not_multi_gpu() -> None:
    spec = launch(gpus=1, gpu_ids="1")
    assert spec.argv[5:9] == ["--gpu_ids", "1", "--num_processes", "1"]


def test_resume() -> None:
    state = DEST / "model" / "x-000002-state"
    spec = launch(resume=state, extra_args=["--seed", "1"])
    assert spec.argv == [
        PY,
        "-m",
        "accelerate.commands.launch",
        *single(),
        "/opt/sd-scripts/sdxl_train_network.py",
        "--config_file",
        "/data/proj/config.toml",
        "--resume",
        "/data/proj/model/x-000002-state",
        "--seed",
        "1",
    ]
    assert spec.notes == ["resuming from /data/proj/model/x-000002-state"]


def test_accelerate_config_replaces_our_flags() -> None:
    spec = launch(accelerate_config=Path("/home/u/fsdp.yaml"), apple_silicon=True)
    assert spec.argv == [
        PY,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        "/home/u/fsdp.yaml",
        "/opt/sd-scripts/sdxl_train_network.py",
        "--config_file",
        "/data/proj/config.toml",
    ]
    assert spec.env == {"PYTORCH_ENABLE_MPS_FALLBACK": "1"}
    assert spec.notes == [
        "accelerate settings (processes, machines, precision) come from /home/u/fsdp.yaml; "
        "kohya-orch passes none of its own."
    ]


def test_generated_accelerate_config() -> None:
    spec = launch(gpu_ids="1,3", mixed_precision="bf16")
    assert spec.accelerate_config_path == Path(GENERATED)
    assert spec.accelerate_config_text == accelerate_config_text(2, "bf16", ["1", "3"])
    text = accelerate_config_text(2, "bf16", ["1", "3"])
    assert "distributed_type: 'MULTI_GPU'\n" in text
    assert "gpu_ids: '1,3'\n" in text
    assert "debug: false\n" in text
    assert "mixed_precision: 'bf16'\n" in text
    assert "num_processes: 2\n" in text
    one = accelerate_config_text(1, "no")
    assert "distributed_type: 'NO'\n" in one
    assert "gpu_ids: 'all'\n" in one


def test_generated_config_read_back_by_accelerate(tmp_path: Path) -> None:
    pytest.importorskip("accelerate")
    from accelerate.commands.config.config_args import ClusterConfig

    path = tmp_path / "a.yaml"
    path.write_text(accelerate_config_text(1, "no"))
    config = ClusterConfig.from_yaml_file(yaml_file=str(path))
    assert config.distributed_type == "NO"
    assert config.debug is False
    assert config.mixed_precision == "no"
    assert config.gpu_ids == "all"
    assert config.num_processes == 1


def test_user_accelerate_config_has_no_generated_one() -> None:
    spec = launch(accelerate_config=Path("/home/u/fsdp.yaml"))
    assert spec.accelerate_config_path is None
    assert spec.accelerate_config_text == ""


def test_shell_line_quotes() -> None:
    spec = launch(config_file=Path("/data/my proj/config.toml"), apple_silicon=True)
    assert spec.shell_line() == (
        "PYTORCH_ENABLE_MPS_FALLBACK=1 /opt/venv/bin/python -m accelerate.commands.launch "
        f"--config_file {GENERATED} --num_processes 1 --num_machines 1 --mixed_precision no "
        "--dynamo_backend no "
        "--num_cpu_threads_per_process 4 /opt/sd-scripts/sdxl_train_network.py "
        "--config_file '/data/my proj/config.toml'"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mixed_precision": "fp32"}, "mixed_precision 'fp32' is not one accelerate knows."),
        ({"gpus": 0}, "--gpus 0: needs at least 1."),
        ({"gpu_ids": "0,x"}, "--gpu-ids '0,x' is not a list of GPU numbers."),
        ({"gpus": 3, "gpu_ids": "0,1"}, "--gpus 3 but --gpu-ids 0,1 names 2 GPU(s)."),
        (
            {"gpus": 2, "accelerate_config": Path("/a.yaml")},
            "--accelerate-config cannot be combined with --gpus or --gpu-ids.",
        ),
    ],
)
def test_bad_launch_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LaunchError) as info:
        launch(**kwargs)
    assert info.value.message == message


def test_resolve_processes() -> None:
    assert resolve_processes(None, None) == 1
    assert resolve_processes(3, None) == 3
    assert resolve_processes(None, "0, 2") == 2
    assert resolve_processes(2, "0,1") == 2
    assert resolve_processes(None, None, Path("/a.yaml")) == 1
    with pytest.raises(LaunchError) as info:
        resolve_processes(None, "0,x")
    assert info.value.message == "--gpu-ids '0,x' is not a list of GPU numbers."


def test_newest_state(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "x.safetensors").write_bytes(b"")
    older = model / "x-000001-state"
    newer = model / "x-000002-state"
    older.mkdir()
    newer.mkdir()
    os.utime(older, ns=(1_000_000_000, 1_000_000_000))
    os.utime(newer, ns=(2_000_000_000, 2_000_000_000))
    assert newest_state(model) == newer


def test_newest_state_none(tmp_path: Path) -> None:
    with pytest.raises(LaunchError) as info:
        newest_state(tmp_path / "model")
    assert info.value.render() == (
        f"--resume: no saved state (a '*-state' folder) in {tmp_path / 'model'}.\n"
        "  hint: Saved states exist only when the run had save_state on: set "
        "'save_state = true' in kohya-orch.toml (or --set save_state=true) and train again."
    )


def test_default_cpu_threads() -> None:
    assert default_cpu_threads(16, 1) == 8
    assert default_cpu_threads(8, 2) == 4
    assert default_cpu_threads(None, 4) == 1
