"""The one device setting: every config accepts and refuses the same spellings, with one message."""

from __future__ import annotations

import pytest

from augment.config import AugmentConfig
from distill.config import DistillConfig
from kdaug.settings import ConfigError, device_name


def _augment(device: str) -> str:
    return AugmentConfig.build(device=device).device


def _distill(device: str) -> str:
    return DistillConfig.build(task="sst2", device=device).device


CONFIGS = [pytest.param(_augment, id="augment"), pytest.param(_distill, id="distill")]


@pytest.mark.parametrize("build", CONFIGS)
@pytest.mark.parametrize(
    "given, spelled",
    [
        ("auto", "auto"),
        ("cpu", "cpu"),
        ("cuda", "cuda"),
        ("cuda:0", "cuda:0"),
        ("cuda:12", "cuda:12"),
        ("mps", "mps"),
        (" CUDA:1 ", "cuda:1"),
        ("MPS", "mps"),
    ],
)
def test_devices_accepted_alike(build, given, spelled):
    assert build(given) == spelled == device_name(given)


@pytest.mark.parametrize("given", ["gpu", "cuda:", "cuda:x", "cuda0", "tpu", "", "cpu:0"])
def test_devices_refused_alike_with_one_message(given):
    messages = []
    for build in (_augment, _distill):
        with pytest.raises(ConfigError) as exc:
            build(given)
        text = str(exc.value)
        assert "\n" not in text
        messages.append(text.split(": ", 1)[1])
    expected = f"device must be auto, cpu, cuda, cuda:N or mps, not {given!r}"
    assert messages[0] == messages[1]
    assert expected in messages[0]
    with pytest.raises(ValueError, match="device must be auto, cpu, cuda, cuda:N or mps"):
        device_name(given)


def test_device_must_be_text_in_both():
    for build in (_augment, _distill):
        with pytest.raises(ConfigError, match="device: Input should be a valid string"):
            build(0)  # type: ignore[arg-type]
