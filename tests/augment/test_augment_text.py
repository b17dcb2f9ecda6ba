"""Augmenter.augment_text: plain strings (and pairs) in, plain strings out, as users of
nlpaug and TextAttack expect; the same variants as the Record API and `kdaug sample`."""

from __future__ import annotations

import pytest

from augment import Record
from augment.config import SampleParams
from kdaug.cli import main

TEXT = "The quiet village slowly disappeared under heavy snow."


def test_a_string_gives_strings(augmenter):
    out = augmenter.augment_text(TEXT, n=3)
    assert isinstance(out, list) and 1 <= len(out) <= 3
    assert all(isinstance(t, str) and t != TEXT for t in out)
    assert len(set(out)) == len(out)
    assert len(augmenter.augment_text(TEXT)) <= augmenter.config.n  # n defaults to the config's


def test_the_same_text_gives_the_same_variants_as_the_record_api_and_sample(augmenter, capsys):
    out = augmenter.augment_text(TEXT, n=4)
    assert augmenter.augment_text(TEXT, n=4) == out
    params = SampleParams.from_config(augmenter.config, n=4, include_original=False)
    (variants,) = augmenter.augment([Record("sample", TEXT)], params)
    assert out == [v.text_a for v in variants]
    assert augmenter.augment_text(TEXT, n=4, seed=1) != out


def test_a_pair_gives_pairs(augmenter):
    out = augmenter.augment_text(TEXT, text_b="A storm came in from the sea.", n=3)
    assert out and all(isinstance(p, tuple) and len(p) == 2 for p in out)
    assert all(isinstance(a, str) and isinstance(b, str) for a, b in out)


def test_a_string_given_to_augment_names_augment_text(augmenter):
    with pytest.raises(TypeError, match="augment_text"):
        augmenter.augment(TEXT)
    with pytest.raises(TypeError, match="augment_text"):
        augmenter.augment([TEXT])


def test_sample_prints_what_augment_text_returns(augmenter, tiny_mlm_dir, capsys):
    argv = ["sample", TEXT, "--mlm", str(tiny_mlm_dir), "--n", "6", "--no-color", "--device", "cpu"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert len(lines) == len(augmenter.augment_text(TEXT, n=6))
