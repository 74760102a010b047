"""`kohya-orch tokenizers build`: CLIP's tokenizer folders from OpenAI's BPE vocabulary."""

from __future__ import annotations

import gzip
import json
import os
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from kohya_orchestrator.cli import cli
from kohya_orchestrator.errors import TokenizerError
from kohya_orchestrator.sdscripts.tokenizers import FOLDERS, build_tokenizers

BPE = os.environ.get("OPEN_CLIP_BPE", "")


def test_a_wheel_without_the_vocabulary_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "open_clip_torch-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("open_clip/__init__.py", "")
    with pytest.raises(TokenizerError) as info:
        build_tokenizers(tmp_path / "out", wheel)
    assert info.value.render() == (
        f"{wheel}: no bpe_simple_vocab_16e6.txt.gz inside\n"
        "  hint: Give an open_clip_torch wheel or the .txt.gz itself."
    )
    assert not (tmp_path / "out").exists()


def test_a_short_vocabulary_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "bpe.txt.gz"
    source.write_bytes(gzip.compress(b"#version\na b\nc d\n"))
    result = runner.invoke(
        cli, ["tokenizers", "build", str(tmp_path / "out"), "--source", str(source)]
    )
    assert result.exit_code == 1
    assert result.stderr == "Error: the vocabulary has 517 tokens, not 49408\n"


@pytest.mark.skipif(not BPE, reason="set OPEN_CLIP_BPE to bpe_simple_vocab_16e6.txt.gz")
def test_the_real_vocabulary(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "tok"
    result = runner.invoke(cli, ["tokenizers", "build", str(out), "--source", BPE, "--no-check"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        f"Train with: --set sd_scripts.tokenizer_cache_dir={out}"
    )
    for name in FOLDERS:
        vocab = json.loads((out / name / "vocab.json").read_text())
        assert len(vocab) == 49408
        assert (vocab["a</w>"], vocab["photo</w>"], vocab["cat</w>"]) == (320, 1125, 2368)
