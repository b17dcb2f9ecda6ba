import logging

import pytest

from augment.candidates import wordnet as wn_mod
from augment.candidates.wordnet import WordNetCandidates


def test_synonyms_when_database_present(tmp_path, monkeypatch):
    if not (wn_mod.SYSTEM_WORDNET / "data.noun").is_file():
        pytest.skip("WordNet database not installed (apt-get install wordnet-base)")
    monkeypatch.setenv("KDAUG_CACHE", str(tmp_path))
    wn = WordNetCandidates(top_k=10)
    assert wn.available
    words = [w for w, _ in wn.synonyms("film", "NOUN")]
    assert "movie" in words and "film" not in words
    assert wn.synonyms("film", "PROPN") == []


def test_missing_database_is_one_warning(monkeypatch, caplog):
    monkeypatch.setattr(wn_mod, "find_wordnet", lambda: None)
    with caplog.at_level(logging.WARNING):
        wn = WordNetCandidates()
    assert not wn.available and wn.synonyms("film", "NOUN") == []
    assert sum("WordNet source disabled" in r.message for r in caplog.records) == 1
