import pytest

from augment.config import AugmentConfig, ConfigError, SampleParams


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
