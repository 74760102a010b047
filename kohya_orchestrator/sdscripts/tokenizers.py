"""The two CLIP tokenizer folders sd-scripts loads, built offline from OpenAI's BPE vocabulary.

sd-scripts (`--tokenizer_cache_dir DIR`) loads `DIR/openai_clip-vit-large-patch14` and
`DIR/laion_CLIP-ViT-bigG-14-laion2B-39B-b160k` with transformers' CLIPTokenizer when they
exist, and downloads them otherwise (which fails offline). Both use OpenAI's byte-pair
vocabulary, `bpe_simple_vocab_16e6.txt.gz`, which ships inside the `open_clip_torch` wheel;
`build_tokenizers` turns it into `vocab.json` + `merges.txt` the way CLIP's own tokenizer reads
it (49408 tokens). `kohya-orch tokenizers build DIR` is the command.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from kohya_orchestrator.errors import TokenizerError

VOCAB_NAME = "bpe_simple_vocab_16e6.txt.gz"
FOLDERS = {
    # HF's openai/clip-vit-large-patch14 pads with <|endoftext|>.
    "openai_clip-vit-large-patch14": "<|endoftext|>",
    # HF's laion/CLIP-ViT-bigG-14-laion2B-39B-b160k pads with "!" (id 0), as open_clip does.
    "laion_CLIP-ViT-bigG-14-laion2B-39B-b160k": "!",
}
EXPECTED = [49406, 320, 1125, 539, 320, 2368, 49407]


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's reversible byte -> printable character table (the GPT-2 scheme)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))


def read_bpe(source: Path) -> str:
    """The vocabulary text from a .txt.gz file or from inside an open_clip_torch wheel."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            names = [n for n in wheel.namelist() if n.endswith("/" + VOCAB_NAME)]
            if not names:
                raise TokenizerError(
                    f"{source}: no {VOCAB_NAME} inside",
                    "Give an open_clip_torch wheel or the .txt.gz itself.",
                )
            return gzip.decompress(wheel.read(names[0])).decode("utf-8")
    return gzip.decompress(source.read_bytes()).decode("utf-8")


def build_vocab(bpe_text: str) -> tuple[dict[str, int], list[str]]:
    """CLIP's vocabulary: bytes, bytes + </w>, the 48894 merges, then the two special tokens."""
    merges = bpe_text.split("\n")[1 : 49152 - 256 - 2 + 1]
    pairs = [tuple(m.split()) for m in merges]
    byte_chars = list(bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars]
    tokens += ["".join(p) for p in pairs]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def write_folder(folder: Path, vocab: dict[str, int], merges: list[str], pad: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", "utf-8")
    special = {
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": pad,
    }
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    config = {
        **special,
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "do_lower_case": True,
        "errors": "replace",
        "add_prefix_space": False,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


def download_wheel(into: Path) -> Path:
    """The open_clip_torch wheel, by `pip download` (needs the package index)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "open_clip_torch", "--no-deps", "-d", str(into)],
        capture_output=True,
        text=True,
        check=False,
    )
    wheels = sorted(into.glob("open_clip_torch-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise TokenizerError(
            f"pip download open_clip_torch failed: {tail}",
            "Download the open_clip_torch wheel elsewhere and pass it with --source.",
        )
    return wheels[-1]


def check(out: Path) -> str:
    """Tokenize a known sentence with transformers (when installed) and compare."""
    try:
        from transformers import CLIPTokenizer  # type: ignore[import-not-found]
    except ImportError:
        return "transformers not importable here: not checked"
    for name in FOLDERS:
        ids = CLIPTokenizer.from_pretrained(str(out / name))("a photo of a cat")["input_ids"]
        if ids != EXPECTED:
            raise TokenizerError(f"{out / name} gives {ids} for 'a photo of a cat', not {EXPECTED}")
    return f'checked: "a photo of a cat" -> {EXPECTED} in both'


def build_tokenizers(out: Path, source: Path | None = None, *, check_ids: bool = True) -> str:
    """Write both folders into `out` from `source` (downloaded when None); what was checked."""
    with tempfile.TemporaryDirectory() as tmp:
        vocab, merges = build_vocab(read_bpe(source or download_wheel(Path(tmp))))
    if len(vocab) != 49408:
        raise TokenizerError(f"the vocabulary has {len(vocab)} tokens, not 49408")
    for name, pad in FOLDERS.items():
        write_folder(out / name, vocab, merges, pad)
    return check(out) if check_ids else "not checked"
