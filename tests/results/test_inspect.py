"""lora_inspect.py: a LoRA's training metadata and a checkpoint's family, header only."""

from __future__ import annotations

import builtins
import io
import os
import pathlib
from pathlib import Path
from typing import Any

import pytest
from results_factory import lora_metadata, write_lora

from kohya_orchestrator.errors import ModelError
from kohya_orchestrator.results.inspect import inspect_file, most_frequent_tags
from kohya_orchestrator.sdscripts.safetensors_header import write_header_only

NAME = "yumoto_hakone"
TENSOR = {"dtype": "F16", "shape": [4, 4]}

CHECKPOINT_KEYS = {
    "sdxl": [
        "conditioner.embedders.0.transformer.text_model.embeddings.position_ids",
        "conditioner.embedders.1.model.positional_embedding",
        "model.diffusion_model.label_emb.0.0.weight",
    ],
    "sd1": [
        "cond_stage_model.transformer.text_model.embeddings.position_ids",
        "model.diffusion_model.input_blocks.0.0.weight",
    ],
    "sd2": [
        "cond_stage_model.model.positional_embedding",
        "model.diffusion_model.input_blocks.0.0.weight",
    ],
    "sd3": ["model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight"],
    "flux": ["double_blocks.0.img_attn.qkv.weight", "single_blocks.0.linear1.weight"],
    "unknown": ["encoder.weight"],
}
LABELS = {
    "sdxl": "SDXL checkpoint",
    "sd1": "SD 1.x checkpoint",
    "sd2": "SD 2.x checkpoint",
    "sd3": "SD3 checkpoint",
    "flux": "Flux checkpoint",
    "unknown": "an unknown model",
}


def test_lora_metadata_in_readable_rows(tmp_path: Path) -> None:
    path = write_lora(tmp_path / f"{NAME}-000005.safetensors", lora_metadata(NAME, 5), rank=16)
    info = inspect_file(path, top_tags=3)
    assert info.kind == "lora"
    assert info.label == "LoRA for SDXL"
    rows = dict(info.rows)
    assert rows["network"] == "networks.lora"
    assert rows["dim / alpha"] == "16 / 8"
    assert "rank (from shapes)" not in rows  # agrees with ss_network_dim
    assert rows["modules"] == "2"
    assert rows["epoch"] == "5 of 15"
    assert rows["steps"] == "210 of 630 (42 per epoch)"
    assert rows["learning rate"] == "2.5e-05"
    assert rows["optimizer"] == "torch.optim.adamw.AdamW"
    assert rows["scheduler"] == "constant_with_warmup (warmup 31 steps)"
    assert rows["base model"] == "ponyDiffusionV6XL_v6StartWithThisOne.safetensors"
    assert rows["base model hash"] == (
        "67ab2fd8ec439a89b3fedb15cc65f54336af163c7eb5e4f2acc98f090a29b0b3 (AutoV2 67AB2FD8EC)"
    )
    assert rows["resolution"] == "(768, 768)"
    assert rows["started"] == "2025-11-23 22:00:00 UTC"
    assert [(d.name, d.repeats, d.images) for d in info.dataset_dirs] == [
        ("7_yumoto_hakone", 7, 24)
    ]
    assert info.top_tags == [("glasses", 24), ("yumoto_hakone", 24), ("1boy", 22)]
    assert info.to_dict()["details"]["epoch"] == "5 of 15"


def test_lora_without_metadata_still_shows_its_rank(tmp_path: Path) -> None:
    path = write_lora(tmp_path / "stripped.safetensors", None, rank=8)
    info = inspect_file(path)
    assert info.kind == "lora"
    assert info.label == "LoRA for an unknown base model"
    assert info.rows == [
        ("rank (from shapes)", "8"),
        ("modules", "2"),
        ("training metadata", "none (not written by sd-scripts, or stripped)"),
    ]


def test_tag_frequency_merges_folders() -> None:
    meta = {"ss_tag_frequency": '{"7_a": {"x": 2, "y": 1}, "3_b": {"y": 5, "z": "bad"}}'}
    assert most_frequent_tags(meta, 10) == [("y", 6), ("x", 2)]
    assert most_frequent_tags({"ss_tag_frequency": "not json"}, 10) == []


@pytest.mark.parametrize("family", sorted(CHECKPOINT_KEYS))
def test_checkpoint_family_from_key_names(tmp_path: Path, family: str) -> None:
    path = tmp_path / f"{family}.safetensors"
    write_header_only(path, dict.fromkeys(CHECKPOINT_KEYS[family], TENSOR), {})
    info = inspect_file(path)
    assert info.kind == "checkpoint"
    assert info.family == family
    assert info.label == LABELS[family]
    rows = dict(info.rows)
    if family == "sdxl":
        assert rows["train with"] == "sdxl_train_network.py"
    elif family in ("sd1", "sd2"):
        assert rows["train with"] == "train_network.py"
    else:
        assert rows["train with"].startswith("not supported by this tool")


def test_not_a_safetensors_file(tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(ModelError, match="not a safetensors file"):
        inspect_file(path)


class CountingReader(io.RawIOBase):
    """A file wrapper that adds up every byte read through it."""

    def __init__(self, inner: Any, counter: list[int]) -> None:
        self.inner = inner
        self.counter = counter

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.inner.read(size)
        self.counter.append(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self.inner.seek(offset, whence))

    def close(self) -> None:
        self.inner.close()
        super().close()

    def fileno(self) -> int:
        return int(self.inner.fileno())


def test_reads_only_the_header_of_a_7_gb_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ponyDiffusionV6XL.safetensors"
    write_header_only(path, dict.fromkeys(CHECKPOINT_KEYS["sdxl"], TENSOR), {})
    header_bytes = path.stat().st_size
    os.truncate(path, 7 * 1024**3)  # a sparse hole: 7 GB on paper, nothing on disk
    counter: list[int] = []
    real_path_open = pathlib.Path.open
    real_open = builtins.open

    def path_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        return CountingReader(real_path_open(self, *args, **kwargs), counter)

    def plain_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        return CountingReader(real_open(file, *args, **kwargs), counter)

    real_fdopen = os.fdopen

    def fd_open(fd: int, *args: Any, **kwargs: Any) -> Any:
        return CountingReader(real_fdopen(fd, *args, **kwargs), counter)

    monkeypatch.setattr(pathlib.Path, "open", path_open)
    monkeypatch.setattr(builtins, "open", plain_open)
    monkeypatch.setattr(os, "fdopen", fd_open)
    info = inspect_file(path)
    monkeypatch.undo()
    assert info.family == "sdxl"
    assert info.file_size == 7 * 1024**3
    assert 0 < sum(counter) <= 2 * header_bytes  # read twice at most (LoRA check, family)


def test_warmup_ratio_shown_as_share_of_steps(tmp_path: Path) -> None:
    """Our configs pass a ratio (0.05); sd-scripts records it as given."""
    meta = {**lora_metadata(NAME, 5), "ss_lr_warmup_steps": "0.05"}
    path = write_lora(tmp_path / f"{NAME}-000005.safetensors", meta, rank=16)
    rows = dict(inspect_file(path, top_tags=3).rows)
    assert rows["scheduler"] == "constant_with_warmup (warmup 5% of the steps)"
