"""The trainer registry: one entry per family, each with its script, template and LoRA shapes."""

from __future__ import annotations

import pytest
from testpaths import TEMPLATES

from kohya_orchestrator.sdscripts import trainers


def test_every_rendered_trainer_has_a_template_and_lora_shapes() -> None:
    for t in trainers.TRAINERS.values():
        if t.renders:
            assert (TEMPLATES / str(t.template)).is_file(), t.family
            assert set(t.lora_shapes) == {"unet", "text_encoder"}, t.family


def test_scripts() -> None:
    assert trainers.scripts() == (
        "sdxl_train_network.py",
        "train_network.py",
        "sd3_train_network.py",
        "flux_train_network.py",
    )
    assert trainers.rendered_scripts() == ("sdxl_train_network.py", "train_network.py")
    assert trainers.default_script() == "sdxl_train_network.py"


def test_for_script() -> None:
    assert trainers.for_script("sdxl_train_network.py").family == "sdxl"
    assert trainers.for_script("train_network.py").family == "sd1"
    assert trainers.for_script("train_network.py", v2=True).family == "sd2"
    assert trainers.for_script("/x/flux_train_network.py").family == "flux"
    with pytest.raises(KeyError):
        trainers.for_script("train_db.py")


def test_for_network_module() -> None:
    assert trainers.for_network_module("networks.lora_flux") == trainers.trainer("flux")
    assert trainers.for_network_module("networks.lora") is None  # SDXL and SD 1.x share it
