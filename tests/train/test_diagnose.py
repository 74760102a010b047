"""diagnose: the real error texts of known failures -> one cause-and-fix line; others -> None."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_trainer import FAILURES

from kohya_orchestrator.train.diagnose import SCAN_BYTES, diagnose_log, diagnose_text


@pytest.mark.parametrize("key", sorted(FAILURES))
def test_each_known_failure(key: str) -> None:
    found = diagnose_text(f"Traceback (most recent call last):\n{FAILURES[key]}\n")
    assert found is not None
    assert found.key == key


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (
            "ValueError: bf16 mixed precision with MPS device requires a Pytorch >= 2.6.0",
            "mixed-precision-mps",
        ),
        ("TypeError: BFloat16 is not supported on MPS", "mixed-precision-mps"),
        ("ValueError: Attempting to unscale FP16 gradients.", "mixed-precision-mps"),
        ("ModuleNotFoundError: No module named 'bitsandbytes'", "bitsandbytes"),
        ("ModuleNotFoundError: No module named 'xformers'", "xformers"),
        ("torch.OutOfMemoryError: MPS backend out of memory (MPS allocated: 1 GB)", "oom-mps"),
        (
            "AssertionError: image size is small / 画像サイズが小さいようです: /a/b.png",
            "image-too-large",
        ),
        (
            "safetensors_rust.SafetensorError: Error while deserializing header: "
            "MetadataIncompleteBuffer",
            "model-damaged",
        ),
        ("RuntimeError: operator torchvision::nms does not exist", "torchvision-mismatch"),
        ("OSError: Can't load tokenizer for 'openai/clip-vit-large-patch14'.", "tokenizer-offline"),
    ],
)
def test_variants(text: str, key: str) -> None:
    found = diagnose_text(text)
    assert found is not None
    assert found.key == key


def test_missing_module_is_named() -> None:
    found = diagnose_text("ModuleNotFoundError: No module named 'library.train_util'")
    assert found is not None
    assert found.line() == (
        "the Python running sd-scripts lacks the module 'library.train_util'. Fix: install "
        "sd-scripts' requirements into it (pip install -r requirements.txt in the sd-scripts "
        "folder), or point --python at the right environment."
    )


def test_exact_line_for_constant_warmup() -> None:
    found = diagnose_text(FAILURES["constant-warmup"])
    assert found is not None
    assert found.line() == (
        "the constant scheduler does not take warmup steps. Fix: use lr_scheduler = "
        '"constant_with_warmup", or set warmup_ratio = 0.'
    )


def test_unknown_failure() -> None:
    assert diagnose_text("RuntimeError: something nobody has seen before") is None


def test_log_scans_only_the_end(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_bytes(
        FAILURES["no-data"].encode()
        + b"\n"
        + b"x" * SCAN_BYTES
        + b"\n"
        + FAILURES["xformers"].encode()
    )
    found = diagnose_log(log)
    assert found is not None
    assert found.key == "xformers"
    assert diagnose_log(tmp_path / "missing.log") is None


def test_the_latest_failure_wins_over_an_early_warning() -> None:
    log = (
        "/venv/lib/python3.10/site-packages/bitsandbytes/cextension.py:34: UserWarning: The "
        "installed version of bitsandbytes was compiled without GPU support. 8-bit optimizers, "
        "8-bit multiplication, and GPU quantization are unavailable.\n"
        '  warn("The installed version of bitsandbytes was compiled without GPU support. "\n'
        "steps:   3%|▎         | 12/400 [00:41<22:10,  3.43s/it, avr_loss=0.112]\n"
        "Traceback (most recent call last):\n"
        '  File "/sd-scripts/sdxl_train_network.py", line 229, in <module>\n'
        "RuntimeError: MPS backend out of memory (MPS allocated: 17.93 GB, other allocations: "
        "1.02 GB, max allowed: 18.13 GB). Tried to allocate 640.00 MB on private pool.\n"
    )
    found = diagnose_text(log)
    assert found is not None
    assert found.key == "oom-mps"


def test_same_line_the_specific_rule_wins() -> None:
    text = "oom here\nModuleNotFoundError: No module named 'xformers'\n"
    found = diagnose_text(f"CUDA out of memory\n{text}")
    assert found is not None
    assert found.key == "xformers"
    early = diagnose_text("ModuleNotFoundError: No module named 'foo'\nCUDA out of memory\n")
    assert early is not None
    assert early.key == "oom-cuda"
