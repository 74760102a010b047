"""Find sd-scripts and its Python, and probe that Python once in a subprocess: versions, device.

The probe imports torch and accelerate in *that* interpreter (which may be another venv than
ours), imports torchvision (sd-scripts needs it; a wheel built for another torch fails
right there), looks up sd-scripts' other requirements without importing them, and prints one JSON
object. The sd-scripts commit is read here from its git folder.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kohya_orchestrator.errors import PreflightError

# Modules sd-scripts' training scripts import at start (its requirements.txt); only looked up.
REQUIRED_MODULES = (
    "transformers",
    "diffusers",
    "safetensors",
    "toml",
    "voluptuous",
    "einops",
    "imagesize",
    "cv2",
    "huggingface_hub",
)

PROBE_CODE = r"""
import importlib.util, json, platform, sys
out = {"python": sys.version.split()[0], "executable": sys.executable,
       "machine": platform.machine(), "system": platform.system(), "errors": {}}
try:
    import torch
    out["torch"] = torch.__version__
    out["cuda"] = bool(torch.cuda.is_available())
    out["gpu_count"] = torch.cuda.device_count() if out["cuda"] else 0
    out["gpus"] = [torch.cuda.get_device_name(i) for i in range(out["gpu_count"])]
    mps = getattr(torch.backends, "mps", None)
    out["mps"] = bool(mps is not None and mps.is_available())
    out["device"] = "cuda" if out["cuda"] else ("mps" if out["mps"] else "cpu")
except Exception as exc:
    out["errors"]["torch"] = f"{type(exc).__name__}: {exc}"
try:
    import torchvision
    out["torchvision"] = torchvision.__version__
except Exception as exc:
    out["errors"]["torchvision"] = f"{type(exc).__name__}: {exc}"
try:
    import accelerate
    out["accelerate"] = accelerate.__version__
except Exception as exc:
    out["errors"]["accelerate"] = f"{type(exc).__name__}: {exc}"
out["missing"] = [m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]
# Installed versions without importing (transformers and diffusers take seconds to import).
import importlib.metadata as md
out["versions"] = {}
for dist in ("torch", "accelerate", "transformers", "diffusers"):
    try:
        out["versions"][dist] = md.version(dist)
    except md.PackageNotFoundError:
        pass
print("KOHYA_ORCH_PROBE " + json.dumps(out))
"""


@dataclass(frozen=True)
class Probe:
    """What the trainer's Python reported about itself."""

    python: str
    python_version: str | None = None
    torch: str | None = None
    torchvision: str | None = None
    accelerate: str | None = None
    device: str | None = None
    gpus: list[str] = field(default_factory=list)
    gpu_count: int = 0
    machine: str | None = None
    system: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    # Installed distribution versions (torch, accelerate, transformers, diffusers).
    versions: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "python_version": self.python_version,
            "torch": self.torch,
            "torchvision": self.torchvision,
            "accelerate": self.accelerate,
            "device": self.device,
            "gpus": self.gpus,
            "gpu_count": self.gpu_count,
            "machine": self.machine,
            "system": self.system,
            "errors": self.errors,
            "missing": self.missing,
            "versions": self.versions,
        }


def parse_probe_output(python: str, stdout: str) -> Probe:
    """The Probe from the probe's stdout (its JSON line may follow other import noise)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("KOHYA_ORCH_PROBE "):
            data = json.loads(line.split(" ", 1)[1])
            return Probe(
                python=python,
                python_version=data.get("python"),
                torch=data.get("torch"),
                torchvision=data.get("torchvision"),
                accelerate=data.get("accelerate"),
                device=data.get("device"),
                gpus=list(data.get("gpus") or []),
                gpu_count=int(data.get("gpu_count") or 0),
                machine=data.get("machine"),
                system=data.get("system"),
                errors=dict(data.get("errors") or {}),
                missing=list(data.get("missing") or []),
                versions=dict(data.get("versions") or {}),
            )
    raise PreflightError(
        f"the Python {python} did not answer the probe.",
        [stdout.strip()[-500:] or "(no output)"],
        hint="Check that --python points at a working Python 3 interpreter.",
    )


def run_probe(python: str, timeout: float = 120.0) -> Probe:
    """Run the probe in `python` (importing torch takes seconds); PreflightError if it cannot."""
    try:
        proc = subprocess.run(
            [python, "-c", PROBE_CODE, *REQUIRED_MODULES],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PreflightError(
            f"the Python {python} could not be run.",
            [str(exc)],
            hint="Point --python at the interpreter of sd-scripts' environment.",
        ) from exc
    return parse_probe_output(python, proc.stdout + "\n" + proc.stderr[-2000:])


def accelerate_default_configs(environ: Mapping[str, str], home: Path) -> list[Path]:
    """accelerate's default config file, if it exists: `accelerate launch` reads it whenever
    no --config_file is given. Only the YAML one: accelerate never reads default_config.json."""
    hf_home = environ.get("HF_HOME") or str(
        Path(environ.get("XDG_CACHE_HOME") or home / ".cache") / "huggingface"
    )
    folder = Path(hf_home).expanduser() / "accelerate"
    path = folder / "default_config.yaml"
    return [path] if path.is_file() else []
