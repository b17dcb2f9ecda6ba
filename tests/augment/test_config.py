import pytest

from augment.config import AugmentConfig, SampleParams
from kdaug.settings import ConfigError


def test_defaults_follow_tinybert():
    cfg = AugmentConfig()
    assert (cfg.n, cfg.p, cfg.top_k) == (20, 0.4, 15)
    assert cfg.pos_tags == ["NOUN", "VERB", "ADJ", "ADV"]
    assert cfg.vectors_limit == 100_000
    assert cfg.mlm == "bert-base-uncased"


def test_yaml_then_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("n: 7\np: 0.2\npos_tags: [noun, verb]\n")
    cfg = AugmentConfig.from_yaml(f, p=0.5, seed=None)
    assert (cfg.n, cfg.p, cfg.pos_tags) == (7, 0.5, ["NOUN", "VERB"])


@pytest.mark.parametrize(
    "settings, needle",
    [
        ({"p": 1.5}, "p:"),
        ({"pos_tags": ["NOUNS"]}, "unknown POS"),
        ({"nope": 1}, "nope"),
        ({"device": "gpu"}, "device"),
    ],
)
def test_invalid_settings_are_one_line_errors(settings, needle):
    with pytest.raises(ConfigError) as exc:
        AugmentConfig.build(**settings)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_bad_yaml_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        AugmentConfig.from_yaml(f)
    with pytest.raises(ConfigError, match="not found"):
        AugmentConfig.from_yaml(tmp_path / "missing.yaml")


def test_sample_params_from_config():
    p = SampleParams.from_config(AugmentConfig(n=3), seed=9)
    assert (p.n, p.seed, p.sources) == (3, 9, ("mlm", "vectors"))


# --- the YAML settings file: strict types, one-line errors ---------------------------------


def write(tmp_path, text: str | bytes):
    f = tmp_path / "c.yaml"
    f.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return f


def one_line_config_error(path, *needles: str) -> str:
    with pytest.raises(ConfigError) as exc:
        AugmentConfig.from_yaml(path)
    msg = str(exc.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, msg
    return msg


@pytest.mark.parametrize(
    "text, field, expected",
    [
        ("n: true\n", "n", "integer"),
        ('n: "3"\n', "n", "integer"),
        ("n: 3.0\n", "n", "integer"),
        ('p: "0.4"\n', "p", "number"),
        ("p: true\n", "p", "number"),
        ("include_original: 1\n", "include_original", "boolean"),
        ('include_original: "yes"\n', "include_original", "boolean"),
        ("mlm: 3\n", "mlm", "string"),
        ("pos_tags: NOUN\n", "pos_tags", "list"),
        ("sources: [mlm, 1]\n", "sources.1", ""),
    ],
)
def test_yaml_types_are_strict(tmp_path, text, field, expected):
    """A YAML value of the wrong type is refused, not coerced (true is not 1, "3" is not 3)."""
    msg = one_line_config_error(write(tmp_path, text), f"{field}:", expected)
    assert "c.yaml" in msg


def test_strict_error_says_what_was_given(tmp_path):
    msg = one_line_config_error(write(tmp_path, 'n: "3"\n'), "n:")
    assert "'3'" in msg and "quotes" in msg
    msg = one_line_config_error(write(tmp_path, "n: true\n"), "n:")
    assert "bool" in msg.lower()


def test_int_for_a_float_and_exponents_without_a_dot_are_numbers(tmp_path):
    cfg = AugmentConfig.from_yaml(write(tmp_path, "p: 1\nfast_mask_rate: 2e-1\n"))
    assert cfg.p == 1.0 and cfg.fast_mask_rate == pytest.approx(0.2)
    assert isinstance(cfg.fast_mask_rate, float)


def test_flags_typed_by_argparse_still_override_the_file(tmp_path):
    import argparse

    from kdaug.cli.augment import add_config_flags, config_from_args

    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    f = write(tmp_path, "n: 7\ntop_k: 9\n")
    args = parser.parse_args(
        ["--config", str(f), "--n", "3", "--p", "0.25", "--sources", "vectors"]
    )
    cfg = config_from_args(args)
    assert (cfg.n, cfg.p, cfg.top_k, cfg.sources) == (3, 0.25, 9, ["vectors"])


def test_python_settings_are_strict_too():
    with pytest.raises(ConfigError, match="n:"):
        AugmentConfig.build(n=True)
    with pytest.raises(ConfigError, match="p:"):
        AugmentConfig.build(p="0.5")


@pytest.mark.parametrize(
    "content, needles",
    [
        (b"n: 3\nmlm: caf\xe9\n", ("UTF-8", "line 2")),
        (b"\xff\xfen\x00:\x00 \x003\x00\n\x00", ("UTF-8",)),
        (b"n: [1, 2\n", ("not valid YAML", "line")),
        (b"n: 3\n  p: 0.5\n", ("not valid YAML", "line 2")),
        (b"n: 3\nn: 4\n", ("twice", "'n'", "line 2")),
        (b"- a list\n", ("mapping",)),
        (b"[]\n", ("mapping",)),
        (b"0\n", ("mapping",)),
        (b"just a string\n", ("mapping",)),
        (b"1: 2\n", ("names",)),
        (b"n: !!python/object:os.system ls\n", ("not valid YAML",)),
        (b"n: " + b"[" * 5000 + b"]" * 5000 + b"\n", ("nested",)),
    ],
)
def test_config_file_problems_are_one_line(tmp_path, content, needles):
    one_line_config_error(write(tmp_path, content), "c.yaml", *needles)


def test_empty_config_file_means_defaults(tmp_path):
    assert AugmentConfig.from_yaml(write(tmp_path, b"")) == AugmentConfig()
    assert AugmentConfig.from_yaml(write(tmp_path, b"# only a comment\n")) == AugmentConfig()
    assert AugmentConfig.from_yaml(write(tmp_path, b"\xef\xbb\xbfn: 4\n")).n == 4  # UTF-8 BOM


def test_config_path_that_is_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="not a file"):
        AugmentConfig.from_yaml(tmp_path)


def test_unknown_setting_suggests_the_known_name():
    with pytest.raises(ConfigError, match="pos_tags"):
        AugmentConfig.build(pos_tag=["NOUN"])


@pytest.mark.parametrize("command", ["augment", "sample", "serve"])
def test_cli_config_errors_are_one_line(tmp_path, capsys, command):
    """`kdaug augment`, `kdaug sample` and `kdaug serve` read --config through the same reader."""
    from kdaug.cli import main

    bad = write(tmp_path, b"n: 3\nmlm: caf\xe9\n")
    argv = {
        "augment": ["augment", str(tmp_path / "in.tsv"), "-o", str(tmp_path / "out")],
        "sample": ["sample", "a film"],
        "serve": ["serve", "--port", "1"],
    }[command]
    assert main([*argv, "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kdaug: error: ") and "UTF-8" in err, err
    for strictly in (b"top_k: true\n", b'top_k: "3"\n'):
        bad.write_bytes(strictly)
        assert main([*argv, "--config", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "top_k:" in err and "integer" in err, err


def test_sample_params_are_declared_by_the_config():
    """SampleParams takes each sampling parameter with AugmentConfig's type, bounds and default."""
    from augment.config import SAMPLE_PARAMS, SampleParams

    for name in SAMPLE_PARAMS:
        mine, config = SampleParams.model_fields[name], AugmentConfig.model_fields[name]
        assert mine.metadata == config.metadata, name
        default = config.get_default(call_default_factory=True)
        assert mine.get_default() == (tuple(default) if isinstance(default, list) else default)
    assert set(SampleParams.model_fields) == set(SAMPLE_PARAMS)
    with pytest.raises(ValueError, match="less than or equal to 1000"):
        SampleParams(n=1001)
