"""Fault-injection helpers: a generated dataset, tree hashing, image data, kill loop, shims.

Used by test_faults.py and test_hostile.py (and bench_prepare.py for the dataset).

- `make_dataset(folder, images)`: real JPEG/PNG/WebP files from imagefactory (small, every
  content distinct) under varied names (spaces, upper-case extensions, non-ASCII), with
  `.txt` / `.caption` / `.npz` sidecars and an unrelated file.
- `tree(folder)`: {relative path: ("file", sha256) | ("link", target) | ("dir", "")}.
- `image_data(data)`: the compressed image data of a JPEG/PNG/WebP, read here the simplest
  way and independently of the library: JPEG from the first SOS on, PNG's IDAT/fdAT
  payloads, WebP's VP8/VP8L/ALPH/ANMF chunks. Captioning must never change it.
- `kill_after(argv, delay)`: start a real subprocess and SIGKILL it after `delay` seconds.
- `shim_env(tmp, mode, ...)`: environment for a subprocess whose Python injects ENOSPC
  after N bytes, or EACCES for writes under one folder, through a sitecustomize module.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from imagefactory import image_bytes

# Formats the dataset mixes; each gives real encoder output with metadata of its own.
DATASET_KINDS = (
    "jpeg_baseline",
    "jpeg_progressive",
    "jpeg_exif_le",
    "jpeg_a1111",
    "png_rgb",
    "png_rgba",
    "png_palette",
    "png_a1111",
    "webp_lossy",
    "webp_lossless",
    "webp_alpha",
    "webp_a1111",
)
_EXT = {"jpeg": (".jpg", ".JPG", ".jpeg"), "png": (".png", ".PNG"), "webp": (".webp", ".WEBP")}
_NAMES = ("IMG_{:04d}", "photo {}", "shot-{}", "写真_{}", "Pic{}", "café {}")
TRIGGER = "fault_trigger"
PYTHON = sys.executable
CLI = [PYTHON, "-m", "kohya_orchestrator"]


def _fmt(kind: str) -> str:
    return kind.split("_")[0]


def make_dataset(folder: Path, images: int, *, seed: int = 0) -> Path:
    """Fill `folder` with `images` distinct small images and their sidecars; return it."""
    folder.mkdir(parents=True, exist_ok=True)
    seen: set[bytes] = set()
    n = 0
    index = 0
    while n < images:
        kind = DATASET_KINDS[index % len(DATASET_KINDS)]
        size = (32 + (index * 7 + seed) % 17, 32 + (index * 3) % 13)
        index += 1
        data = image_bytes(kind, size)
        if data in seen:
            continue
        seen.add(data)
        exts = _EXT[_fmt(kind)]
        stem = _NAMES[n % len(_NAMES)].format(n + 1)
        (folder / f"{stem}{exts[n % len(exts)]}").write_bytes(data)
        if n % 5 in (0, 1, 2):
            (folder / f"{stem}.txt").write_text(_caption(n), encoding="utf-8")
        elif n % 5 == 3:
            (folder / f"{stem}.caption").write_text(f"tags for {n}", encoding="utf-8")
        if n % 11 == 0:
            (folder / f"{stem}.npz").write_bytes(b"latents %d" % n)
        n += 1
    (folder / "notes.md").write_text("not an image\n", encoding="utf-8")
    return folder


def _caption(n: int) -> str:
    if n % 3 == 0:
        return f"{TRIGGER}, glasses, tag{n}"
    if n % 3 == 1:
        return f"black hair, {TRIGGER}, suit,, tag{n}\n"
    return f"1boy, smile, tag{n}"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


Entry = tuple[str, str]


def tree(folder: Path, *, follow: bool = False) -> dict[str, Entry]:
    """Every entry under `folder` by relative path: file hash, link target, or dir."""
    out: dict[str, Entry] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink() and not follow:
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir", "")
            else:
                out[rel] = ("file", sha(path.read_bytes()))
    return out


def tree_with_modes(folder: Path) -> dict[str, tuple[str, str, int]]:
    """`tree` plus each entry's permission bits: what "byte-identical source" means."""
    return {
        rel: (*entry, os.lstat(folder / rel).st_mode & 0o7777)
        for rel, entry in tree(folder).items()
    }


def image_format(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def image_data(data: bytes) -> bytes:
    """The compressed image data (see the module docstring); ValueError if unreadable."""
    fmt = image_format(data)
    if fmt == "jpeg":
        pos = 2
        while pos + 4 <= len(data):
            if data[pos] != 0xFF:
                raise ValueError(f"JPEG marker expected at {pos}")
            if data[pos + 1] == 0xDA:
                return data[pos:]
            pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        raise ValueError("JPEG without a scan")
    if fmt == "png":
        out = io.BytesIO()
        pos = 8
        while pos + 8 <= len(data):
            length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
            if ctype in (b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"fdAT", b"acTL", b"fcTL"):
                out.write(ctype + data[pos + 8 : pos + 8 + length])
            pos += 12 + length
            if ctype == b"IEND":
                return out.getvalue()
        raise ValueError("PNG without IEND")
    if fmt == "webp":
        out = io.BytesIO()
        end = 8 + struct.unpack("<I", data[4:8])[0]
        pos = 12
        while pos + 8 <= min(end, len(data)):
            fourcc, length = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
            if fourcc in (b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF"):
                out.write(fourcc + data[pos + 8 : pos + 8 + length])
            pos += 8 + length + (length & 1)
        return out.getvalue()
    raise ValueError("not a JPEG, PNG or WebP file")


_DECODED: dict[str, bool] = {}


def decodes(data: bytes) -> bool:
    """True when Pillow decodes every frame (cached by content: same bytes, same result)."""
    key = sha(data)
    if key not in _DECODED:
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as im:
                for frame in range(getattr(im, "n_frames", 1)):
                    im.seek(frame)
                    im.load()
            _DECODED[key] = True
        except Exception:
            _DECODED[key] = False
    return _DECODED[key]


@dataclass
class Killed:
    """How a killed run ended: killed by us, or finished before the signal."""

    delay: float
    killed: bool
    returncode: int


def run(argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload, no-any-return]


def timed(argv: Sequence[str]) -> float:
    """Wall time of one uninterrupted run (it must succeed)."""
    start = time.monotonic()
    done = run(argv)
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    return elapsed


def kill_after(argv: Sequence[str], delay: float, env: dict[str, str] | None = None) -> Killed:
    """Start `argv`, SIGKILL it `delay` seconds later (unless it finished), wait for it."""
    proc = subprocess.Popen(
        list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    try:
        proc.wait(timeout=delay)
        return Killed(delay, False, proc.returncode)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return Killed(delay, True, proc.returncode)


# A sitecustomize that the subprocess's Python imports at start-up. KOHYA_FAULT=enospc:N
# lets N bytes be written, then every write, copy, link or mkdir fails with ENOSPC;
# KOHYA_FAULT=eacces:DIR makes every write-ish call under DIR fail with EACCES (a read-only
# folder, for when chmod cannot deny root).
_SHIM = r'''
import builtins, errno, io, os

_mode, _, _arg = os.environ.get("KOHYA_FAULT", "").partition(":")
if _mode == "enospc":
    _left = [int(_arg)]

    def _spend(n):
        if _left[0] < n:
            _left[0] = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        _left[0] -= n

    class _Counted:
        """A file object whose writes spend the byte budget."""

        def __init__(self, f):
            self._f = f

        def write(self, b):
            raw = b if isinstance(b, (bytes, bytearray, memoryview)) else str(b).encode()
            _spend(len(raw))
            return self._f.write(b)

        def __enter__(self):
            self._f.__enter__()
            return self

        def __exit__(self, *a):
            return self._f.__exit__(*a)

        def __iter__(self):
            return iter(self._f)

        def __getattr__(self, name):
            return getattr(self._f, name)

    _open, _fdopen, _write, _sendfile = builtins.open, os.fdopen, os.write, os.sendfile

    def _wrap(f, mode):
        if isinstance(mode, str) and any(c in mode for c in "wax+"):
            return _Counted(f)
        return f

    def open(file, mode="r", *a, **k):
        return _wrap(_open(file, mode, *a, **k), mode)

    def fdopen(fd, mode="r", *a, **k):
        return _wrap(_fdopen(fd, mode, *a, **k), mode)

    def sendfile(out_fd, in_fd, offset, count):
        if _left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        sent = _sendfile(out_fd, in_fd, offset, min(count, _left[0]))
        _left[0] -= sent
        return sent

    def write(fd, data):
        _spend(len(data))
        return _write(fd, data)

    def _no_space(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def _guard(real):
        def call(*a, **k):
            if _left[0] <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(a[0]) if a else None)
            return real(*a, **k)
        return call

    builtins.open = open
    io.open = open
    os.fdopen = fdopen
    os.write = write
    os.sendfile = sendfile
    os.copy_file_range = _no_space
    os.symlink = _guard(os.symlink)
    os.link = _guard(os.link)
    os.mkdir = _guard(os.mkdir)

elif _mode == "eacces":
    _root = os.path.realpath(_arg)

    def _under(p):
        try:
            real = os.path.realpath(os.fspath(p))
        except TypeError:
            return False
        return real == _root or real.startswith(_root + os.sep)

    def _deny(p):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(p))

    _open, _os_open = builtins.open, os.open
    _WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def open(file, mode="r", *a, **k):
        if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+") \
                and _under(file):
            _deny(file)
        return _open(file, mode, *a, **k)

    def os_open(path, flags, *a, **k):
        if flags & _WRITE and _under(path):
            _deny(path)
        return _os_open(path, flags, *a, **k)

    def _guard(real, *positions):
        def call(*a, **k):
            for i in positions:
                if i < len(a) and _under(a[i]):
                    _deny(a[i])
            return real(*a, **k)
        return call

    builtins.open = open
    io.open = open
    os.open = os_open
    os.rename = _guard(os.rename, 0, 1)
    os.replace = _guard(os.replace, 0, 1)
    os.symlink = _guard(os.symlink, 1)
    os.link = _guard(os.link, 1)
    os.mkdir = _guard(os.mkdir, 0)
    os.unlink = _guard(os.unlink, 0)
    os.remove = os.unlink
    os.rmdir = _guard(os.rmdir, 0)
'''


def shim_env(tmp: Path, fault: str) -> dict[str, str]:
    """The environment for a subprocess with the fault shim active (see `_SHIM`)."""
    shim = tmp / "fault-shim"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "sitecustomize.py").write_text(_SHIM, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(shim), env.get("PYTHONPATH", "")) if p)
    env["KOHYA_FAULT"] = fault
    return env


def checkpoint(path: Path) -> Path:
    """A real (tiny) SDXL safetensors checkpoint: the key names sd-scripts' loader wants."""
    import numpy as np
    from safetensors.numpy import save_file

    keys = (
        "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
        "model.diffusion_model.input_blocks.0.0.weight",
    )
    save_file({k: np.zeros((2, 2), dtype=np.float16) for k in keys}, str(path))
    return path


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([PYTHON, "-c", "pass"])
    proc.wait()
    return proc.pid


def killed_run_leftovers(
    folder: Path, *names: str, command: str = "caption", token: str = "0123456789ab"
) -> list[Path]:
    """What a run SIGKILLed while it held `folder`'s lock leaves: the lock file with its
    record (pid, command, token, the folders of its temps) and its temps `names`."""
    import json

    from kohya_orchestrator.fsutil import session_temp_prefix
    from kohya_orchestrator.locking import LOCK_NAME

    temps = [folder / f"{session_temp_prefix(token)}{i}-{name}" for i, name in enumerate(names)]
    for temp in temps:
        temp.write_bytes(b"partial")
    record = {
        "pid": dead_pid(),
        "command": command,
        "since": int(time.time()),
        "token": token,
        "folders": [str(folder.resolve())],
    }
    (folder / LOCK_NAME).write_text(json.dumps(record), encoding="utf-8")
    return temps


_SD_PYTHON = r'''#!PYTHON
"""A stand-in for sd-scripts' Python: answers kohya-orch's probe as a CPU torch setup
would, and runs the training script given after `-m accelerate.commands.launch ...`
directly (no accelerate in between)."""
import json, os, runpy, sys

args = sys.argv[1:]
if args[:1] == ["-c"] and "KOHYA_ORCH_PROBE" in args[1]:
    probe = {"python": sys.version.split()[0], "executable": sys.executable,
             "machine": "x86_64", "system": "Linux", "errors": {}, "torch": "2.13.0",
             "cuda": False, "gpu_count": 0, "gpus": [], "mps": False, "device": "cpu",
             "torchvision": "0.28.0", "accelerate": "1.15.0", "missing": []}
    print("KOHYA_ORCH_PROBE " + json.dumps(probe))
    sys.exit(0)
script = next((n for n, a in enumerate(args) if a.endswith(".py")), None)
if script is None:
    os.execv(sys.executable, [sys.executable, *args])
sys.argv = args[script:]
runpy.run_path(sys.argv[0], run_name="__main__")
'''


def fake_sd_python(path: Path) -> Path:
    """Write the stand-in for sd-scripts' Python (see `_SD_PYTHON`) and return it."""
    path.write_text(_SD_PYTHON.replace("PYTHON", PYTHON, 1), encoding="utf-8")
    path.chmod(0o755)
    return path
