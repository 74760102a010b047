"""The machine we run on: operating system, macOS version, Apple Silicon or not."""

from __future__ import annotations

import platform
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class PlatformInfo:
    system: str
    release: str
    machine: str
    macos_version: str | None
    apple_silicon: bool

    def describe(self) -> str:
        if self.macos_version:
            chip = "Apple Silicon" if self.apple_silicon else "Intel"
            return f"macOS {self.macos_version} ({chip})"
        return f"{self.system} {self.release} ({self.machine})"


def _translated() -> bool:
    # An x86 Python under Rosetta reports x86_64 on an Apple Silicon Mac.
    try:
        proc = subprocess.run(
            ["sysctl", "-n", "sysctl.proc_translated"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.stdout.strip() == "1"


def detect_platform() -> PlatformInfo:
    """This machine's platform (asks sysctl only on an Intel-looking Mac)."""
    system = platform.system()
    machine = platform.machine()
    mac = platform.mac_ver()[0] if system == "Darwin" else ""
    apple = system == "Darwin" and (machine == "arm64" or _translated())
    return PlatformInfo(system, platform.release(), machine, mac or None, apple)
