"""Hostile input corpus: each case gets a clear message, a non-zero exit, no traceback, and
leaves every file under its root exactly as it was (contents, link targets, modes).

A case builds its files under `root` and returns the command line; `{root}` in the
expected message is the case's folder. Covered: awkward file names (newlines, quotes,
leading dashes, NFC/NFD twins, names differing by case, very long names), symlink loops
and links leading outside, empty / truncated / mislabelled images, decompression bombs
(handled from headers, never decoded), prefixes, triggers and names with separators,
`..` and control characters, broken settings files, a checkpoint that is not one, a
missing sd-scripts, and DEST inside the images folder.
"""

from __future__ import annotations

import os
import struct
import unicodedata
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from faultkit import checkpoint, tree_with_modes
from imagefactory import image_bytes

from kohya_orchestrator.cli import cli
from kohya_orchestrator.dataset.journal import JOURNAL_NAME
from kohya_orchestrator.project.prepare import MANIFEST_NAME

NFC = unicodedata.normalize("NFC", "café")
NFD = unicodedata.normalize("NFD", "café")


def png_header(width: int, height: int) -> bytes:
    """A tiny, valid PNG that claims `width` x `height` (one short IDAT): a bomb's header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def gif_header(width: int, height: int) -> bytes:
    """A GIF (named .png in the cases) whose logical screen claims a huge size."""
    return (
        b"GIF89a"
        + struct.pack("<HH", width, height)
        + b"\x00\x00\x00"
        + b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3b"
    )


def images(folder: Path, names: tuple[str, ...] = ("a.png", "b.jpg", "c.webp")) -> Path:
    """Real small images with a caption each."""
    folder.mkdir(parents=True, exist_ok=True)
    kinds = {".png": "png_rgb", ".jpg": "jpeg_baseline", ".jpeg": "jpeg_baseline"}
    for name in names:
        kind = kinds.get(Path(name).suffix.lower(), "webp_lossy")
        (folder / name).write_bytes(image_bytes(kind, (32, 32)))
        (folder / f"{Path(name).stem}.txt").write_text("hero, glasses\n", encoding="utf-8")
    return folder


def project(root: Path, edit: Callable[[str], str] | None = None) -> Path:
    """A prepared project in root/dest (images in root/imgs, model root/m.safetensors)."""
    imgs = images(root / "imgs")
    model = checkpoint(root / "m.safetensors")
    dest = root / "dest"
    done = CliRunner().invoke(
        cli,
        ["prepare", "hero", "--images", str(imgs), "--dest", str(dest), "--model", str(model)],
        catch_exceptions=False,
    )
    assert done.exit_code == 0, done.output
    if edit is not None:
        path = dest / "kohya-orch.toml"
        path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    return dest


Setup = Callable[[Path], list[str]]


@dataclass(frozen=True)
class Case:
    id: str
    setup: Setup
    message: str
    exit_code: int = 1
    finding: str = ""  # a known defect, not fixed yet: the case is a strict xfail


CASES: list[Case] = []


def case(id: str, message: str, exit_code: int = 1, finding: str = "") -> Callable[[Setup], Setup]:
    def register(setup: Setup) -> Setup:
        CASES.append(Case(id, setup, message, exit_code, finding))
        return setup

    return register


# ------------------------------------------------------------------- rename: the prefix


def _rename_prefix(prefix: str) -> Setup:
    def setup(root: Path) -> list[str]:
        return ["rename", prefix, str(images(root / "d"))]

    return setup


for _id, _prefix, _message in [
    (
        "rename-prefix-separator",
        "a/b",
        "Error: Invalid prefix 'a/b': it contains a path separator ('/').",
    ),
    (
        "rename-prefix-backslash",
        "a\\b",
        "Error: Invalid prefix 'a\\\\b': it contains a path separator ('\\\\').",
    ),
    ("rename-prefix-dotdot", "..", "Error: Invalid prefix '..': it contains '..'."),
    (
        "rename-prefix-control",
        "a\x07b",
        "Error: Invalid prefix 'a\\x07b': it contains control characters (U+0007).",
    ),
    (
        "rename-prefix-newline",
        "x\ny",
        "Error: Invalid prefix 'x\\ny': it contains control characters (U+000A).",
    ),
    (
        "rename-prefix-too-long",
        "p" * 201,
        f"Error: Invalid prefix '{'p' * 201}': it is 201 bytes long (at most 200).",
    ),
    (
        "rename-prefix-device",
        "CON",
        "Error: Invalid prefix 'CON': 'CON' is a reserved device name on Windows.",
    ),
    (
        "rename-prefix-quote",
        'say"hi',
        "Error: Invalid prefix 'say\"hi': it contains characters not allowed in file names "
        'on Windows or macOS (").',
    ),
]:
    case(_id, _message)(_rename_prefix(_prefix))


# ---------------------------------------------------------------- rename: the folder


@case(
    "rename-nfc-nfd-twins",
    f"  - {NFD}_1.txt and {NFC}_1.txt differ only by case or accents, one name on macOS: "
    f"{NFD}_1.txt, x.txt -> {NFC}_1.txt",
)
def _nfc_nfd(root: Path) -> list[str]:
    folder = images(root / "d", ("x.png",))
    (folder / f"{NFD}_1.txt").write_text("an orphan caption, named in NFD", encoding="utf-8")
    return ["rename", NFC, str(folder)]


@case(
    "rename-case-twins",
    "  - P_1.txt and p_1.txt differ only by case or accents, one name on macOS: "
    "P_1.txt, a.TXT -> p_1.txt",
)
def _case_twins(root: Path) -> list[str]:
    folder = root / "d"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(image_bytes("jpeg_baseline", (32, 32)))
    (folder / "a.TXT").write_text("x", encoding="utf-8")
    (folder / "P_1.txt").write_text("an orphan caption", encoding="utf-8")
    return ["rename", "p", str(folder)]


@case(
    "rename-shared-stem-newline-name",
    "  - a\nb.jpg and a\nb.png share the stem 'a\\nb' (one caption file for two images)",
)
def _newline_names(root: Path) -> list[str]:
    return ["rename", "p", str(images(root / "d", ("a\nb.jpg", "a\nb.png")))]


@case(
    "rename-shared-stem-leading-dash",
    "  - -rf.jpg and -rf.png share the stem '-rf' (one caption file for two images)",
)
def _dash_names(root: Path) -> list[str]:
    return ["rename", "p", str(images(root / "d", ("-rf.jpg", "-rf.png")))]


@case(
    "rename-target-taken-quotes",
    '  - it\'s "q".png -> p_1.png: p_1.png already exists and is not renamed',
)
def _taken(root: Path) -> list[str]:
    folder = images(root / "d", ('it\'s "q".png',))
    (folder / "p_1.png").mkdir()  # a folder holds the name the image would get
    return ["rename", "p", str(folder)]


@case(
    "rename-name-too-long",
    f"  - a.{'s' * 60} -> {'p' * 200}_1.{'s' * 60}: the new name is 263 bytes long (at most 255)",
)
def _long_new_name(root: Path) -> list[str]:
    folder = images(root / "d", ("a.png",))
    (folder / f"a.{'s' * 60}").write_text("a sidecar with a long suffix", encoding="utf-8")
    return ["rename", "p" * 200, str(folder)]


@case("rename-symlink-loop-dir", "Error: Folder not found: {root}/loop")
def _loop_dir(root: Path) -> list[str]:
    (root / "loop").symlink_to(root / "loop")
    return ["rename", "p", str(root / "loop")]


@case("rename-no-images-only-links", "Error: No images in {root}/d.")
def _only_bad_links(root: Path) -> list[str]:
    folder = root / "d"
    folder.mkdir()
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")
    (folder / "dangling.png").symlink_to(root / "nowhere.png")
    return ["rename", "p", str(folder)]


@case("rename-undo-nothing", "Error: Nothing to undo in {root}/d: no rename was recorded there.")
def _undo_nothing(root: Path) -> list[str]:
    return ["rename", "--undo", str(images(root / "d"))]


@case(
    "rename-journal-escapes",
    "Error: The rename journal {root}/d/.kohya-orch-rename.json is damaged "
    "(not a plain file name: '../outside.jpg').",
)
def _journal_escape(root: Path) -> list[str]:
    folder = images(root / "d")
    (folder / JOURNAL_NAME).write_text(
        '{"version": 1, "state": "applying", "token": "ab", "prefix": "p", '
        '"moves": [["a.png", ".kohya-orch-rename-ab-0", "../outside.jpg"]]}',
        encoding="utf-8",
    )
    return ["rename", "p", str(folder)]


@case(
    "rename-journal-broken",
    "Error: The rename journal {root}/d/.kohya-orch-rename.json is damaged "
    "(Unterminated string starting at: line 1 column 25 (char 24)).",
)
def _journal_broken(root: Path) -> list[str]:
    folder = images(root / "d")
    (folder / JOURNAL_NAME).write_text('{"version": 1, "state": "appl', encoding="utf-8")
    return ["rename", "p", str(folder)]


# ---------------------------------------------------------------------------- caption


def _caption_trigger(trigger: str) -> Setup:
    def setup(root: Path) -> list[str]:
        return ["caption", trigger, str(images(root / "d"))]

    return setup


for _id, _trigger, _message in [
    ("caption-trigger-empty", "", "Invalid value for 'TRIGGER': The trigger '' is empty."),
    ("caption-trigger-commas", " , ,", "Invalid value for 'TRIGGER': The trigger ' , ,' is empty."),
    (
        "caption-trigger-newline",
        'x"\n[evil]',
        "Invalid value for 'TRIGGER': The trigger 'x\"\\n[evil]' contains a line break.",
    ),
    (
        "caption-trigger-escape",
        "hero\x1b[31m",
        "Invalid value for 'TRIGGER': The trigger 'hero\\x1b[31m' contains the control "
        "character U+001B (ESC).",
    ),
]:
    case(_id, _message, exit_code=2)(_caption_trigger(_trigger))


@case(
    "caption-ext-dotdot",
    "Invalid value for '--ext': Not a usable caption extension: '../x'.",
    exit_code=2,
)
def _ext_dotdot(root: Path) -> list[str]:
    return ["caption", "hero", str(images(root / "d")), "--ext", "../x"]


@case(
    "caption-ext-image",
    "Invalid value for '--ext': The caption extension '.jpg' is an image extension.",
    exit_code=2,
)
def _ext_image(root: Path) -> list[str]:
    return ["caption", "hero", str(images(root / "d")), "--ext", ".jpg"]


def _caption_bad_file(name: str, data: bytes) -> Setup:
    def setup(root: Path) -> list[str]:
        folder = images(root / "d", ())
        (folder / name).write_bytes(data)
        return ["caption", "hero", str(folder)]

    return setup


for _id, _name, _data, _message in [
    ("caption-empty-leading-dash", "-rf.jpg", b"", "  - -rf.jpg: empty file (0 bytes)"),
    (
        "caption-truncated-png-quotes",
        'it\'s "x".png',
        image_bytes("png_rgb")[:100],
        '  - it\'s "x".png: truncated PNG: chunk IDAT at offset 33 runs past the end of the file (',
    ),
    (
        "caption-gif-named-jpg",
        "photo.jpg",
        image_bytes("gif_as_jpg"),
        "  - photo.jpg: unsupported image format: GIF",
    ),
    (
        "caption-random-bytes-newline-name",
        "a\nb.jpg",
        image_bytes("random_bytes"),
        "  - a\nb.jpg: not a JPEG, PNG or WebP image (starts with fd 3f eb 3c 92 50 b7 97)",
    ),
    (
        "caption-bomb-gif-named-png",
        "bomb.png",
        gif_header(65535, 65535),
        "  - bomb.png: unsupported image format: GIF",
    ),
    (
        "caption-heic-named-jpg",
        "phone.jpg",
        image_bytes("heic_as_jpg"),
        "  - phone.jpg: unsupported image format: HEIC/HEIF",
    ),
]:
    case(_id, f"1 of 1 images failed and were left untouched:\n{_message}")(
        _caption_bad_file(_name, _data)
    )


@case(
    "caption-case-twins",
    "  - A.png: shares its stem with a.jpg: both would use the caption file A.*; "
    "rename one of them (kohya-orch rename)",
)
def _caption_case(root: Path) -> list[str]:
    return ["caption", "hero", str(images(root / "d", ("A.png", "a.jpg")))]


@case(
    "caption-nfc-nfd-twins",
    f"  - {NFD}.jpg: shares its stem with {NFC}.png: both would use the caption file",
)
def _caption_nfc_nfd(root: Path) -> list[str]:
    folder = root / "d"
    folder.mkdir()
    (folder / f"{NFC}.png").write_bytes(image_bytes("png_rgb", (32, 32)))
    (folder / f"{NFD}.jpg").write_bytes(image_bytes("jpeg_baseline", (32, 32)))
    return ["caption", "hero", str(folder)]


@case(
    "caption-txt-not-utf8",
    "  - a.png: a.txt is not UTF-8 text (byte 0xFF at offset 0)",
)
def _caption_latin1(root: Path) -> list[str]:
    folder = images(root / "d", ("a.png",))
    (folder / "a.txt").write_bytes(b"\xffh\xe9ros")
    return ["caption", "hero", str(folder)]


@case(
    "caption-txt-control",
    "  - a.png: a.txt: caption contains the control character U+0000 (NUL) at character 5",
)
def _caption_control(root: Path) -> list[str]:
    folder = images(root / "d", ("a.png",))
    (folder / "a.txt").write_text("hero\x00, glasses", encoding="utf-8")
    return ["caption", "hero", str(folder)]


@case("caption-txt-is-folder", "  - a.png: a.txt exists but is not a file")
def _caption_txt_dir(root: Path) -> list[str]:
    folder = images(root / "d", ("a.png",))
    (folder / "a.txt").unlink()
    (folder / "a.txt").mkdir()
    return ["caption", "hero", str(folder)]


@case(
    "caption-tags-control",
    "Invalid value for '--tags': caption contains the control character U+0008 (BS) at character 2",
    exit_code=2,
)
def _caption_tags(root: Path) -> list[str]:
    return ["caption", "hero", str(images(root / "d")), "--tags", "a\x08b"]


@case("caption-missing-folder", "Error: Folder not found: {root}/nope")
def _caption_missing(root: Path) -> list[str]:
    return ["caption", "hero", str(root / "nope")]


@case("captions-symlink-loop", "Error: Folder not found: {root}/loop")
def _captions_loop(root: Path) -> list[str]:
    (root / "loop").symlink_to(root / "loop")
    return ["captions", str(root / "loop")]


# ---------------------------------------------------------------------------- prepare


def _prepare(root: Path, *extra: str, name: str = "hero") -> list[str]:
    imgs = root / "imgs" if (root / "imgs").exists() else images(root / "imgs")
    model = root / "m.safetensors"
    if not model.exists():
        checkpoint(model)
    dest = root / "dest"
    return [
        "prepare",
        name,
        "--images",
        str(imgs),
        "--dest",
        str(dest),
        "--model",
        str(model),
        *extra,
    ]


@case("prepare-dest-inside-images", "Error: DEST {root}/imgs/train is inside the images folder")
def _dest_inside(root: Path) -> list[str]:
    argv = _prepare(root)
    argv[argv.index("--dest") + 1] = str(root / "imgs" / "train")
    return argv


@case("prepare-images-inside-dest", "Error: The images folder {root}/dest/imgs is inside DEST")
def _images_inside(root: Path) -> list[str]:
    images(root / "dest" / "imgs")
    argv = _prepare(root)
    argv[argv.index("--images") + 1] = str(root / "dest" / "imgs")
    return argv


@case(
    "prepare-dest-via-link-into-images",
    "Error: DEST {root}/link/train is inside the images folder {root}/imgs.",
)
def _dest_link(root: Path) -> list[str]:
    argv = _prepare(root)
    (root / "link").symlink_to(root / "imgs")
    argv[argv.index("--images") + 1] = str(root / "link")
    argv[argv.index("--dest") + 1] = str(root / "link" / "train")
    return argv


for _id, _name, _message in [
    (
        "prepare-name-separator",
        "../evil",
        "Error: Invalid name '../evil': it contains a path separator ('/'); it contains '..'.",
    ),
    (
        "prepare-name-control",
        "he\x00ro",
        "Error: Invalid name 'he\\x00ro': it contains control characters (U+0000).",
    ),
    (
        "prepare-name-newline",
        "he\nro",
        "Error: Invalid name 'he\\nro': it contains control characters (U+000A).",
    ),
]:

    def _setup(root: Path, _name: str = _name) -> list[str]:
        return _prepare(root, name=_name)

    case(_id, _message)(_setup)


@case(
    "prepare-trigger-newline",
    "  - prepare: The trigger 'x\"\\n[evil]' contains a line break.",
)
def _prepare_trigger(root: Path) -> list[str]:
    return _prepare(root, "--trigger", 'x"\n[evil]')


@case(
    "prepare-class-prompt-separator",
    "Error: Invalid class prompt '1boy/man': it contains a path separator ('/').",
)
def _class_prompt(root: Path) -> list[str]:
    reg = images(root / "reg")
    return _prepare(root, "--reg", str(reg), "--class-prompt", "1boy/man")


@case(
    "prepare-model-not-checkpoint",
    "Error: {root}/m.safetensors: not a safetensors file (header length 8800140462016121680 "
    "does not fit the file's 264 bytes).",
)
def _not_ckpt(root: Path) -> list[str]:
    argv = _prepare(root)
    (root / "m.safetensors").write_bytes(b"PK\x03\x04 a zip file, not a checkpoint" * 8)
    return argv


@case("prepare-model-missing", "Error: Model file not found: {root}/nope.safetensors")
def _no_model(root: Path) -> list[str]:
    argv = _prepare(root)
    argv[argv.index("--model") + 1] = str(root / "nope.safetensors")
    return argv


@case(
    "prepare-model-huge-header",
    "Error: {root}/m.safetensors: not a safetensors file (header length 4611686018427387904 "
    "does not fit the file's 10 bytes).",
)
def _huge_header(root: Path) -> list[str]:
    argv = _prepare(root)
    (root / "m.safetensors").write_bytes(struct.pack("<Q", 2**62) + b"{}")
    return argv


@case("prepare-images-empty", "Error: No images in {root}/imgs.")
def _no_images(root: Path) -> list[str]:
    (root / "imgs").mkdir()
    return _prepare(root)


@case("prepare-images-loop", "Error: Folder not found: {root}/loop")
def _images_loop(root: Path) -> list[str]:
    argv = _prepare(root)
    (root / "loop").symlink_to(root / "loop")
    argv[argv.index("--images") + 1] = str(root / "loop")
    return argv


@case(
    "prepare-img-link-outside", "Error: {root}/dest/img leads outside DEST (to {root}/elsewhere)."
)
def _img_outside(root: Path) -> list[str]:
    (root / "elsewhere").mkdir()
    (root / "dest").mkdir()
    (root / "dest" / "img").symlink_to(root / "elsewhere")
    return _prepare(root)


@case(
    "prepare-file-in-the-way",
    "  - img/7_hero/a.png exists and was not made by prepare from {root}/imgs/a.png",
)
def _in_the_way(root: Path) -> list[str]:
    (root / "dest" / "img" / "7_hero").mkdir(parents=True)
    (root / "dest" / "img" / "7_hero" / "a.png").write_bytes(b"the user's own file")
    return _prepare(root)


@case(
    "prepare-manifest-broken",
    "Error: The prepare manifest {root}/dest/.kohya-orch-prepare.json is damaged "
    "(Expecting ',' delimiter: line 1 column 6 (char 5)).",
)
def _manifest_broken(root: Path) -> list[str]:
    (root / "dest").mkdir()
    (root / "dest" / MANIFEST_NAME).write_text("[1, 2", encoding="utf-8")
    return _prepare(root)


@case("prepare-pending-rename", "Error: A rename in {root}/imgs was interrupted.")
def _pending(root: Path) -> list[str]:
    imgs = images(root / "imgs")
    (imgs / JOURNAL_NAME).write_text(
        '{"version": 1, "state": "applying", "token": "ab", "prefix": "p", "moves": []}',
        encoding="utf-8",
    )
    return _prepare(root)


@case("prepare-set-wrong-type", '  - --set: epochs = "ten" must be a whole number (without quotes)')
def _set_type(root: Path) -> list[str]:
    return _prepare(root, "--set", "epochs=ten")


@case("prepare-set-unknown-key", "  - --set: unknown setting 'epoch' (did you mean 'epochs'?)")
def _set_unknown(root: Path) -> list[str]:
    return _prepare(root, "--set", "epoch=15")


# ------------------------------------------------------------- settings: config / plan


def _settings_case(id: str, command: str, edit: Callable[[str], str], message: str) -> None:
    def setup(root: Path) -> list[str]:
        dest = project(root, edit)
        return [command, str(dest)]

    case(id, message)(setup)


for _cmd in ("config", "plan"):
    _settings_case(
        f"{_cmd}-settings-broken-toml",
        _cmd,
        lambda t: t + "\nepochs = = 3\n",
        "Error: {root}/dest/kohya-orch.toml is not valid TOML: Invalid value (at line ",
    )
    _settings_case(
        f"{_cmd}-settings-wrong-type",
        _cmd,
        lambda t: t.replace("epochs = 15", 'epochs = "ten"'),
        '  - {root}/dest/kohya-orch.toml: epochs = "ten" must be a whole number (without quotes)',
    )
    _settings_case(
        f"{_cmd}-settings-unknown-key",
        _cmd,
        lambda t: "epoch = 15\n" + t,
        "  - {root}/dest/kohya-orch.toml: unknown setting 'epoch' (did you mean 'epochs'?)",
    )


@case(
    "config-settings-trigger-control",
    "  - {root}/dest/kohya-orch.toml: The trigger 'hero\\x07' contains the control character "
    "U+0007 (BEL).",
)
def _trigger_control(root: Path) -> list[str]:
    dest = project(root)
    path = dest / "kohya-orch.toml"
    text = path.read_text(encoding="utf-8").replace('trigger = "hero"', 'trigger = "hero\\u0007"')
    path.write_text(text, encoding="utf-8")
    return ["config", str(dest)]


@case("config-no-settings", "Error: No settings file: {root}/dest/kohya-orch.toml")
def _no_settings(root: Path) -> list[str]:
    (root / "dest").mkdir()
    return ["config", str(root / "dest")]


@case(
    "config-set-injection",
    "  - --set: Invalid name 'x\"\\n[evil]': it contains control characters (U+000A); it "
    'contains characters not allowed in file names on Windows or macOS (").',
)
def _set_injection(root: Path) -> list[str]:
    return ["config", str(project(root)), "--dry-run", "--set", 'name=x"\n[evil]']


@case("config-model-not-checkpoint", "not a safetensors file")
def _config_bad_model(root: Path) -> list[str]:
    dest = project(root)
    (root / "m.safetensors").write_bytes(b"not a checkpoint at all, just text\n" * 4)
    return ["config", str(dest)]


def _plan_with(name: str, data: bytes) -> Setup:
    def setup(root: Path) -> list[str]:
        dest = project(root)
        (root / "imgs" / name).write_bytes(data)
        # prepare links it in like any other image
        CliRunner().invoke(cli, _prepare(root), catch_exceptions=False)
        return ["plan", str(dest)]

    return setup


case(
    "plan-bomb-gif-named-png",
    "Error: cannot read the size of {root}/dest/img/7_hero/bomb.png: it claims more than "
    "178,956,970 pixels, which Pillow refuses to open (a decompression bomb)",
)(_plan_with("bomb.png", gif_header(65535, 65535)))
case(
    "plan-empty-image",
    "Error: cannot read the size of {root}/dest/img/7_hero/empty.jpg: not a readable image",
)(_plan_with("empty.jpg", b""))
case(
    "plan-truncated-image",
    "Error: cannot read the size of {root}/dest/img/7_hero/cut.png: not a readable image",
)(_plan_with("cut.png", image_bytes("png_rgb")[:20]))


# --------------------------------------------------------------- validate, train, results


@case(
    "validate-broken-toml",
    "error: {root}/c.toml is not valid TOML for sd-scripts' parser (line 2, column 22): "
    "Unbalanced quotes",
)
def _validate_broken(root: Path) -> list[str]:
    (root / "c.toml").write_text('max_train_epochs = 15\nresolution = "512,512\n', encoding="utf-8")
    return ["validate", str(root / "c.toml")]


@case("validate-binary-file", "error: {root}/c.toml is not UTF-8 text (byte 0)")
def _validate_binary(root: Path) -> list[str]:
    (root / "c.toml").write_bytes(image_bytes("png_rgb"))
    return ["validate", str(root / "c.toml")]


@case(
    "train-missing-sd-scripts",
    "  - sd-scripts not found: {root}/no-sd-scripts (from $KOHYA_SD_SCRIPTS) does not exist.",
)
def _train_no_sd(root: Path) -> list[str]:
    return ["train", str(project(root)), "--python", str(root / "no-python")]


@case(
    "inspect-not-safetensors",
    "Error: {root}/x.safetensors: not a safetensors file (only 3 bytes).",
)
def _inspect_junk(root: Path) -> list[str]:
    (root / "x.safetensors").write_bytes(b"\x00" * 3)
    return ["inspect", str(root / "x.safetensors")]


@case(
    "templates-cp-escaping-name",
    "Error: '../../etc/passwd' is not a template name: a template is a file name ending in "
    ".j2 from the template folders, never a path.",
)
def _template_escape(root: Path) -> list[str]:
    return ["templates", "cp", "../../etc/passwd", str(project(root))]


@case("contract-refresh-not-a-checkout", "Error: {root} is not an sd-scripts checkout: ")
def _contract(root: Path) -> list[str]:
    return ["contract", "refresh", "--sd-scripts", str(root)]


@case("export-missing-folder", "Error: Export folder not found: {root}/nope/Lora")
def _export_missing(root: Path) -> list[str]:
    dest = project(root)
    return ["export", str(dest), "--to", str(root / "nope" / "Lora")]


@case("inspect-missing-file", "Error: Model file not found: {root}/nope.safetensors")
def _inspect_missing(root: Path) -> list[str]:
    return ["inspect", str(root / "nope.safetensors")]


@case(
    "doctor-missing-sd-scripts",
    "[FAIL] sd-scripts: sd-scripts not found: {root}/no-sd-scripts (from $KOHYA_SD_SCRIPTS) "
    "does not exist.",
)
def _doctor(root: Path) -> list[str]:
    return ["doctor", str(project(root)), "--python", str(root / "no-python")]


# ------------------------------------------- issue 13: tag, tags, captions --stats/--duplicates


@case("tags-no-folder", "Error: Folder not found: {root}/nope")
def _tags_no_folder(root: Path) -> list[str]:
    return ["tags", str(root / "nope"), "add", "x"]


@case("tags-control-character", "Error: tags: caption contains the control character U+0007")
def _tags_control(root: Path) -> list[str]:
    return ["tags", str(images(root / "d")), "add", "a\x07b", "--trigger", "hero"]


@case("tags-replace-three", "Error: tags replace takes two tags, OLD and NEW; got 3.")
def _tags_replace_three(root: Path) -> list[str]:
    return ["tags", str(images(root / "d")), "replace", "a", "b", "c", "--trigger", "hero"]


@case("tags-unknown-trigger", "Error: Cannot tell the trigger of the captions in {root}/d.")
def _tags_no_trigger(root: Path) -> list[str]:
    folder = images(root / "d", ("a.png", "b.jpg"))
    (folder / "a.txt").write_text("one, two\n", encoding="utf-8")
    (folder / "b.txt").write_text("three\n", encoding="utf-8")
    return ["tags", str(folder), "remove", "two"]


@case("tags-binary-caption", "warning: a.png: a.txt is not UTF-8 text (byte 0xFF at offset 5)")
def _tags_binary_caption(root: Path) -> list[str]:
    folder = images(root / "d", ("a.png",))
    (folder / "a.txt").write_bytes(b"hero\x00\xff\n")
    return ["tags", str(folder), "add", "x", "--trigger", "hero"]


@case("tag-no-sd-scripts", "Error: Cannot run the WD14 tagger; nothing was changed:")
def _tag_no_sd_scripts(root: Path) -> list[str]:
    return ["tag", str(images(root / "d")), "hero", "--sd-scripts", str(root / "none")]


@case("stats-empty-folder", "Error: No images in {root}/empty.")
def _stats_empty(root: Path) -> list[str]:
    (root / "empty").mkdir()
    return ["captions", str(root / "empty"), "--stats"]


@case("duplicates-move-to-a-file", "Error: Invalid value for '--move-to'", exit_code=2)
def _dupes_move_to_file(root: Path) -> list[str]:
    (root / "f").write_text("x")
    return ["captions", str(images(root / "d")), "--move-to", str(root / "f")]


@case("prepare-bad-background", "Error: --background: 'nope' is not a colour")
def _prepare_background(root: Path) -> list[str]:
    imgs = images(root / "imgs")
    model = checkpoint(root / "m.safetensors")
    return ["prepare", "hero", "--images", str(imgs), "--dest", str(root / "dest"),
            "--model", str(model), "--background", "nope"]  # fmt: skip


@case("prepare-broken-heic", "phone.heic")  # unreadable, or pillow-heif missing: refused
def _prepare_broken_heic(root: Path) -> list[str]:
    imgs = images(root / "imgs")
    (imgs / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 16)
    model = checkpoint(root / "m.safetensors")
    return ["prepare", "hero", "--images", str(imgs), "--dest", str(root / "dest"),
            "--model", str(model)]  # fmt: skip


# ------------------------------------------------------------------------------ the test


def test_corpus_size() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


def _param(c: Case) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=c.finding)] if c.finding else []
    return pytest.param(c, id=c.id, marks=marks)


@pytest.mark.parametrize("hostile", [_param(c) for c in CASES])
def test_hostile(
    hostile: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runner: CliRunner
) -> None:
    root = tmp_path / "case"
    root.mkdir()
    monkeypatch.setenv("KOHYA_SD_SCRIPTS", str(root / "no-sd-scripts"))
    argv = hostile.setup(root)
    before = tree_with_modes(root)
    result = runner.invoke(cli, argv)
    out = result.output
    if os.environ.get("HOSTILE_SHOW"):
        print(f"\n=== {hostile.id} exit {result.exit_code}\n{out}")
    assert "Traceback" not in out
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == hostile.exit_code, out
    assert hostile.message.format(root=root) in out
    assert tree_with_modes(root) == before


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real small JPEG whose SOF0 frame header is patched to claim `width` x `height`."""
    data = bytearray(image_bytes("jpeg_baseline", (32, 32)))
    pos = 2
    while data[pos + 1] != 0xC0:
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    data[pos + 5 : pos + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_bombs_are_never_decoded(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiny files claiming 100000 x 100000 (PNG) and 65500 x 65500 (JPEG) pixels: caption,
    prepare and plan read headers only, so nothing hands them to Pillow to decode."""
    from PIL import Image

    imgs = images(tmp_path / "imgs", ("a.png",))
    (imgs / "bomb.png").write_bytes(png_header(100_000, 100_000))
    (imgs / "bomb2.jpg").write_bytes(jpeg_claiming(65_500, 65_500))
    opened: list[str] = []
    real_open = Image.open

    def spy(fp: object, *args: object, **kwargs: object) -> Image.Image:
        opened.append(str(fp))
        return real_open(fp, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image, "open", spy)
    model = checkpoint(tmp_path / "m.safetensors")
    dest = tmp_path / "dest"
    steps = [
        ["caption", "hero", str(imgs)],
        ["prepare", "hero", "--images", str(imgs), "--dest", str(dest), "--model", str(model)],
        ["plan", str(dest)],
    ]
    for argv in steps:
        result = runner.invoke(cli, argv, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    assert "  train 7_hero: 3 images x 7 repeats = 21\n" in result.output
    assert not [p for p in opened if "bomb" in p]
    assert (imgs / "bomb.txt").read_text(encoding="utf-8") == "hero\n"


def test_grid_skips_bomb_samples(tmp_path: Path, runner: CliRunner) -> None:
    """Sample images claiming 100000 x 100000 (PNG) or 65535 x 65535 (GIF named .png) are
    drawn as missing cells, never decoded; the grid of the others is still made."""
    import results_factory as rf

    dest = tmp_path / "dest"
    rf.write_settings(dest)
    rf.write_run(dest, epochs=3)
    rf.write_sample(dest, rf.sample_name("yumoto_hakone", 1, 0), (255, 0, 0), (64, 64))
    samples = dest / "model" / "sample"
    (samples / rf.sample_name("yumoto_hakone", 2, 0)).write_bytes(png_header(100_000, 100_000))
    (samples / rf.sample_name("yumoto_hakone", 3, 0)).write_bytes(gif_header(65_535, 65_535))
    out = tmp_path / "grid.png"
    result = runner.invoke(cli, ["grid", str(dest), "--out", str(out)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 0, result.output
    assert out.exists()
    for epoch in (2, 3):
        name = rf.sample_name("yumoto_hakone", epoch, 0)
        assert f"{name}: unreadable, shown as missing" in result.output, result.output
