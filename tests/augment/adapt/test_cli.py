"""`kdaug adapt-mlm` argument handling, `--default` settings and the held-out masking."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from augment.adapt.default import DEFAULT_CORPUS, DEFAULT_MINUTES
from augment.adapt.evaluate import mask_for_eval
from augment.adapt.settings import SettingsError
from kdaug.cli import build_parser, main
from kdaug.cli.adapt import _settings
from kdaug.resolve import PACKAGED_MINILM, default_mlm_path


def parse(*argv: str):
    return build_parser().parse_args(["adapt-mlm", *argv])


def test_default_needs_no_other_arguments(tmp_path, monkeypatch):
    monkeypatch.setenv("KDAUG_CACHE", str(tmp_path))
    s = _settings(parse("--default"))
    assert s.base == PACKAGED_MINILM and s.output == default_mlm_path()
    assert s.corpus[0].name == DEFAULT_CORPUS and s.corpus[0].is_file()
    assert s.minutes == DEFAULT_MINUTES and s.steps is None
    assert (s.mlm_probability, s.head_lr_scale, s.group_by_length) == (0.3, 10.0, True)
    stepped = _settings(parse("--default", "--steps", "10"))
    assert stepped.minutes is None and stepped.steps == 10


def test_explicit_run_needs_base_corpus_output(capsys):
    with pytest.raises(SettingsError, match="missing --base, --corpus, -o"):
        _settings(parse("--steps", "1"))
    assert main(["adapt-mlm", "--steps", "1"]) == 2
    assert "kdaug: error: missing" in capsys.readouterr().err


def test_options_reach_the_settings(tmp_path):
    s = _settings(
        parse("--base", "b", "--corpus", "c.tsv", "-o", str(tmp_path), "--minutes", "2",
              "--label-column", "label", "--whole-word-mask", "--batch-size", "16", "--no-resume",
              "--head-lr-scale", "5", "--mlm-probability", "0.3", "--no-group-by-length",
              "--corpus-repeat", "3")
    )  # fmt: skip
    assert (s.label_column, s.whole_word_mask, s.batch_size, s.resume) == ("label", True, 16, False)
    assert (s.head_lr_scale, s.mlm_probability, s.group_by_length) == (5.0, 0.3, False)
    assert s.corpus_repeat == [3]
    assert s.minutes == 2 and s.lr == 2e-4


def test_eval_masking_is_seed_fixed(tiny_mlm_dir):
    tok = AutoTokenizer.from_pretrained(tiny_mlm_dir)
    texts = ["the movie was really good and the actors were fine ."] * 20
    a, b = mask_for_eval(tok, texts, 32, seed=1), mask_for_eval(tok, texts, 32, seed=1)
    assert a == b and a != mask_for_eval(tok, texts, 32, seed=2)
    for masked, labels in a:
        assert masked[0] == tok.cls_token_id and masked[-1] == tok.sep_token_id
        for m, y in zip(masked, labels, strict=True):
            assert (y == -100) or m == tok.mask_token_id
    assert sum(y != -100 for _, labels in a for y in labels) > 0
