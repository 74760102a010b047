"""The `accelerate launch` command for one training run, built as data (argv, env, cwd, log).

`build_launch` is pure: it computes the command and touches nothing. The runner
(runner.py) writes the accelerate config the spec carries and starts it. Accelerate loads
`$HF_HOME/accelerate/default_config.yaml` whenever `--config_file` is absent and merges its
gpu_ids, debug and distributed_type into the run, so unless the user hands us their own
accelerate config with `--accelerate-config` (several machines, DeepSpeed, FSDP) we always
pass a generated one (written beside the log), plus the same settings as flags.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kohya_orchestrator.errors import LaunchError

ACCELERATE_MODULE = "accelerate.commands.launch"
# accelerate accepts these for --mixed_precision; sd-scripts' own setting wins inside the
# script, but accelerate must not be told something different.
MIXED_PRECISION_CHOICES = ("no", "fp16", "bf16", "fp8")
STATE_SUFFIX = "-state"


@dataclass(frozen=True)
class LaunchSpec:
    """One launch: the argv list, the variables we set (on top of the inherited environment),
    the working folder, the log file, and notes for the user."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    num_processes: int = 1
    notes: list[str] = field(default_factory=list)
    # The generated accelerate config: the runner writes this text to this path before starting.
    accelerate_config_path: Path | None = None
    accelerate_config_text: str = ""

    def shell_line(self) -> str:
        """The command as one copy-and-paste shell line, environment assignments first."""
        assignments = [f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items())]
        return " ".join([*assignments, shlex.join(self.argv)])


def default_cpu_threads(cpu_count: int | None, num_processes: int) -> int:
    """Threads per process: the CPUs shared by the processes, at least 1, at most 8."""
    return max(1, min(8, (cpu_count or 1) // max(1, num_processes)))


def accelerate_config_text(
    num_processes: int, mixed_precision: str, gpu_ids: Sequence[str] | None = None
) -> str:
    """The accelerate config (YAML) for one machine: what `accelerate config` would write.

    Every key accelerate reads from a config file is given, so nothing comes from the
    user's default_config.yaml. 'NO' and 'no' are quoted: unquoted, YAML reads them as false.
    """
    ids = ",".join(gpu_ids) if gpu_ids else "all"
    distributed = "MULTI_GPU" if num_processes > 1 else "NO"
    return "\n".join(
        [
            "# Written by kohya-orch for this run, so accelerate's default_config.yaml is unused.",
            "compute_environment: LOCAL_MACHINE",
            "debug: false",
            f"distributed_type: '{distributed}'",
            "downcast_bf16: 'no'",
            "enable_cpu_affinity: false",
            f"gpu_ids: '{ids}'",
            "machine_rank: 0",
            "main_training_function: main",
            f"mixed_precision: '{mixed_precision}'",
            "num_machines: 1",
            f"num_processes: {num_processes}",
            "rdzv_backend: static",
            "same_network: true",
            "tpu_env: []",
            "tpu_use_cluster: false",
            "tpu_use_sudo: false",
            "use_cpu: false",
            "",
        ]
    )


def generated_config_path(log_path: Path) -> Path:
    """Where the generated accelerate config goes: beside the log, as `<log>.accelerate.yaml`."""
    return log_path.with_name(f"{log_path.stem}.accelerate.yaml")


def parse_gpu_ids(gpu_ids: str) -> list[str]:
    """`"0,1"` -> `["0", "1"]`; raises LaunchError for anything but comma-separated integers."""
    ids = [part.strip() for part in gpu_ids.split(",") if part.strip()]
    if not ids or not all(i.isdigit() for i in ids):
        raise LaunchError(
            f"--gpu-ids {gpu_ids!r} is not a list of GPU numbers.",
            hint="Give comma-separated numbers, e.g. --gpu-ids 0,1.",
        )
    return ids


def resolve_processes(
    gpus: int | None, gpu_ids: str | None, accelerate_config: Path | None = None
) -> int:
    """The number of training processes --gpus / --gpu-ids ask for (1 by default, and with
    --accelerate-config, whose file decides); raises LaunchError for values that disagree."""
    if gpus is not None and gpus < 1:
        raise LaunchError(f"--gpus {gpus}: needs at least 1.", hint="Use --gpus 2 or more.")
    ids = parse_gpu_ids(gpu_ids) if gpu_ids is not None else None
    if gpus is not None and ids is not None and len(ids) != gpus:
        raise LaunchError(
            f"--gpus {gpus} but --gpu-ids {gpu_ids} names {len(ids)} GPU(s).",
            hint="Give as many GPU ids as --gpus, or only --gpu-ids.",
        )
    if accelerate_config is not None and (gpus is not None or ids is not None):
        raise LaunchError(
            "--accelerate-config cannot be combined with --gpus or --gpu-ids.",
            hint="Set the number of processes and GPUs in the accelerate config file.",
        )
    return gpus if gpus is not None else (len(ids) if ids is not None else 1)


def newest_state(model_dir: Path) -> Path:
    """The newest `*-state` folder in `model_dir` (by modification time, then name)."""
    states = (
        [p for p in model_dir.iterdir() if p.is_dir() and p.name.endswith(STATE_SUFFIX)]
        if model_dir.is_dir()
        else []
    )
    if not states:
        raise LaunchError(
            f"--resume: no saved state (a '*{STATE_SUFFIX}' folder) in {model_dir}.",
            hint="Saved states exist only when the run had save_state on: set "
            "'save_state = true' in kohya-orch.toml (or --set save_state=true) and train again.",
        )
    return max(states, key=lambda p: (p.stat().st_mtime_ns, p.name))


def build_launch(
    *,
    python: str,
    sd_scripts: Path,
    script: str,
    config_file: Path,
    log_path: Path,
    mixed_precision: str = "no",
    num_cpu_threads: int = 2,
    gpus: int | None = None,
    gpu_ids: str | None = None,
    accelerate_config: Path | None = None,
    resume: Path | None = None,
    extra_args: Sequence[str] = (),
    apple_silicon: bool = False,
    extra_env: Mapping[str, str] | None = None,
) -> LaunchSpec:
    """The command that trains: accelerate launching `script` with `--config_file`.

    `resume` is the state folder to continue from (see `newest_state`). `extra_args` go
    last, so they override the config file (sd-scripts lets the command line win).
    """
    if mixed_precision not in MIXED_PRECISION_CHOICES:
        raise LaunchError(
            f"mixed_precision {mixed_precision!r} is not one accelerate knows.",
            hint="Use one of: no, fp16, bf16 ('no' on Apple Silicon).",
        )
    num_processes = resolve_processes(gpus, gpu_ids, accelerate_config)
    ids = parse_gpu_ids(gpu_ids) if gpu_ids is not None else None
    notes: list[str] = []

    argv = [python, "-m", ACCELERATE_MODULE]
    generated: Path | None = None
    generated_text = ""
    if accelerate_config is not None:
        argv += ["--config_file", str(accelerate_config)]
        notes.append(
            f"accelerate settings (processes, machines, precision) come from {accelerate_config}; "
            "kohya-orch passes none of its own."
        )
    else:
        generated = generated_config_path(log_path)
        generated_text = accelerate_config_text(num_processes, mixed_precision, ids)
        argv += ["--config_file", str(generated)]
        if num_processes > 1:
            argv.append("--multi_gpu")
        if ids is not None:
            argv += ["--gpu_ids", ",".join(ids)]
        argv += [
            "--num_processes",
            str(num_processes),
            "--num_machines",
            "1",
            "--mixed_precision",
            mixed_precision,
            "--dynamo_backend",
            "no",
            "--num_cpu_threads_per_process",
            str(num_cpu_threads),
        ]
    argv += [str(sd_scripts / script), "--config_file", str(config_file)]
    if resume is not None:
        argv += ["--resume", str(resume)]
        notes.append(f"resuming from {resume}")
    argv += list(extra_args)

    env: dict[str, str] = {}
    if apple_silicon:
        # Operators MPS lacks fall back to the CPU instead of stopping the run.
        env["PYTORCH_ENABLE_MPS_FALLBACK"] = "1"
    env.update(extra_env or {})
    return LaunchSpec(
        argv=argv,
        env=env,
        cwd=sd_scripts,
        log_path=log_path,
        num_processes=num_processes,
        notes=notes,
        accelerate_config_path=generated,
        accelerate_config_text=generated_text,
    )
