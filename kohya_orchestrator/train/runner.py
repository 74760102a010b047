"""Run a LaunchSpec: live output teed to the log, Ctrl-C forwarded, the exit code returned.

The child runs in its own process group, so a Ctrl-C at the terminal reaches only us; we
forward SIGINT to the whole group (accelerate and the trainer it started) and give it time
to stop. A second Ctrl-C sends SIGTERM, and SIGKILL follows after a grace period. SIGTERM
or SIGHUP sent to us (kill, a closed terminal) goes on to the group as SIGTERM at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from kohya_orchestrator.errors import LaunchError
from kohya_orchestrator.fsutil import atomic_write_text
from kohya_orchestrator.train.launch import LaunchSpec

TAIL_BYTES = 64 * 1024
CHUNK = 65536


@dataclass(frozen=True)
class RunResult:
    """What a finished run left: exit code (negative: killed by that signal), log, output tail."""

    returncode: int
    log_path: Path
    tail: str
    interrupts: int
    started: float
    ended: float
    peak_rss_bytes: int | None

    def tail_lines(self, count: int = 30) -> list[str]:
        """The last `count` lines of output, each as the terminal last showed it (after \\r)."""
        lines = [line.rsplit("\r", 1)[-1] for line in self.tail.split("\n")]
        while lines and not lines[-1].strip():
            lines.pop()
        return lines[-count:]

    @property
    def exit_code(self) -> int:
        """The code a shell would report: 128 + signal number for a killed child."""
        return 128 - self.returncode if self.returncode < 0 else self.returncode


def _maxrss_bytes(value: int) -> int:
    # ru_maxrss is bytes on macOS and kilobytes on Linux.
    return value if sys.platform == "darwin" else value * 1024


def _default_sigint() -> None:
    """In the child before exec: Ctrl-C back to its default action.

    A process started in the background by a non-interactive shell (a CI job, `nohup cmd &`)
    inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler, so the
    trainer would never see the Ctrl-C we forward. Reset it so forwarding always works.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_launch(
    spec: LaunchSpec,
    *,
    on_output: Callable[[bytes], None] | None = None,
    grace_seconds: float = 10.0,
    base_env: dict[str, str] | None = None,
) -> RunResult:
    """Start `spec`, pass its output to `on_output` as it comes and into `spec.log_path`.

    Returns when the child has exited. `base_env` defaults to this process's environment;
    PYTHONUNBUFFERED=1 and then `spec.env` are laid over it.
    """
    env = dict(os.environ if base_env is None else base_env)
    # The trainer's stdout is our pipe, not a terminal: unbuffered, its prints arrive live.
    env["PYTHONUNBUFFERED"] = "1"
    env.update(spec.env)
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    if spec.accelerate_config_path is not None:
        spec.accelerate_config_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(spec.accelerate_config_path, spec.accelerate_config_text)
    started = time.time()
    try:
        proc = subprocess.Popen(
            spec.argv,
            cwd=spec.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_sigint,
        )
    except OSError as exc:
        raise LaunchError(
            f"could not start {spec.argv[0]}: {exc.strerror or exc}",
            hint="Check --python (or the venv beside sd-scripts) and --sd-scripts.",
        ) from exc

    interrupts = 0
    kill_timer: threading.Timer | None = None

    def signal_group(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupts, kill_timer
        interrupts += 1
        if interrupts == 1:
            signal_group(signal.SIGINT)
        else:
            signal_group(signal.SIGTERM)
            if kill_timer is None:
                kill_timer = threading.Timer(grace_seconds, signal_group, (signal.SIGKILL,))
                kill_timer.daemon = True
                kill_timer.start()

    def on_terminate(signum: int, frame: FrameType | None) -> None:
        # We are being stopped (kill, a closed terminal, a CI timeout): the child is in its own
        # session, so it would not get the signal and would train on, orphaned.
        nonlocal kill_timer
        signal_group(signal.SIGTERM)
        if kill_timer is None:
            kill_timer = threading.Timer(grace_seconds, signal_group, (signal.SIGKILL,))
            kill_timer.daemon = True
            kill_timer.start()

    in_main = threading.current_thread() is threading.main_thread()
    handlers = {signal.SIGINT: on_sigint, signal.SIGTERM: on_terminate, signal.SIGHUP: on_terminate}
    previous = {sig: signal.signal(sig, h) for sig, h in handlers.items()} if in_main else {}
    tail = bytearray()
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    try:
        with spec.log_path.open("wb") as log:
            while True:
                chunk = os.read(fd, CHUNK)
                if not chunk:
                    break
                log.write(chunk)
                log.flush()
                if on_output is not None:
                    on_output(chunk)
                tail += chunk
                if len(tail) > TAIL_BYTES:
                    del tail[: len(tail) - TAIL_BYTES]
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        proc.stdout.close()
        if proc.returncode is None:
            # We are leaving abnormally (an exception in the callback): do not orphan the trainer.
            signal_group(signal.SIGTERM)
            proc.wait()
        if kill_timer is not None:
            kill_timer.cancel()
        for sig, handler in previous.items():
            # getsignal gives None for a handler not installed from Python; keep the default.
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    return RunResult(
        returncode=proc.returncode,
        log_path=spec.log_path,
        tail=tail.decode("utf-8", errors="replace"),
        interrupts=interrupts,
        started=started,
        ended=time.time(),
        peak_rss_bytes=_maxrss_bytes(usage.ru_maxrss) if usage.ru_maxrss else None,
    )
