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


# --- YAML aliases ---------------------------------------------------------------------------------

# Each line refers to the one before it five times, and a real setting to the last: about 300
# bytes that expand to 5**11 values (10 s and 200 MB to refuse once expanded).
ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        for prev, name in zip("abcdefghi", "bcdefghij", strict=True)
    )
    + "pos_tags: [*j,*j,*j,*j,*j]\n"
)


@pytest.mark.parametrize(
    "text, alias",
    [
        ("base: &b 3\nn: *b\n", "*b"),
        ("common: &c {n: 3}\nother:\n  <<: *c\n", "*c"),
        ('a: &a ["x", "x"]\nb: [*a, *a]\n', "*a"),
    ],
)
def test_an_alias_is_refused_in_one_line(tmp_path, text, alias):
    from kdaug.settings import read_settings

    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        read_settings(path)
    message = str(exc.value)
    assert "\n" not in message
    assert f"config file {path} uses a YAML alias ({alias} at line " in message
    assert message.endswith("write the value out")


def test_an_anchor_without_alias_is_plain_yaml(tmp_path):
    from kdaug.settings import read_settings

    path = tmp_path / "c.yaml"
    path.write_text("n: &count 3\n", encoding="utf-8")
    assert read_settings(path) == {"n": 3}


def test_an_alias_bomb_is_refused_at_once_by_every_command(tmp_path):
    """The 318-byte file through `kdaug augment --config` (a real process, bounded in time so a
    regression fails instead of hanging): refused in one line, exit 2, nothing built."""
    import subprocess
    import sys

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(ALIAS_BOMB, encoding="utf-8")
    assert len(ALIAS_BOMB.encode()) < 400
    data = tmp_path / "in.tsv"
    data.write_text("sentence\tlabel\na fine film\t1\n", encoding="utf-8")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "kdaug.cli", "augment", str(data), "-o", str(out)]
    cmd += ["--task", "sst2", "--config", str(bomb)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kdaug: error: "), done.stderr
    assert "uses a YAML alias (*a at line 2, column 8)" in lines[0]
    assert not (out / "data").exists()
