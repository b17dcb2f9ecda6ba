import pytest

from augment import AugmentConfig, Record
from augment.augmenter import Augmenter, match_case, record_seed
from augment.config import SampleParams

RECORDS = [
    Record("r1", "The movie was really great, and the actors delivered brilliant performances."),
    Record("r2", "She  opened the DOOR and walked in;  nobody noticed.", label="1"),
    Record("r3", "Cats chase mice.", "Dogs bark loudly at strangers.", label="0"),
    Record("r4", "Extraordinarily unbelievable circumstances surrounded the investigation."),
]


def test_match_case():
    assert match_case("Door", "window") == "Window"
    assert match_case("DOOR", "window") == "WINDOW"
    assert match_case("door", "Window") == "window"
    assert match_case("I", "me") == "Me"


def test_record_seed_depends_on_seed_and_id_only():
    assert record_seed(0, "a") == record_seed(0, "a")
    assert len({record_seed(0, "a"), record_seed(1, "a"), record_seed(0, "b")}) == 3


def test_variants_shape_and_provenance(augmenter):
    out = augmenter.augment(RECORDS)
    assert len(out) == len(RECORDS)
    for rec, variants in zip(RECORDS, out, strict=True):
        assert variants[0].variant == 0 and variants[0].text_a == rec.text_a
        assert [v.variant for v in variants] == list(range(len(variants)))
        texts = {(v.text_a, v.text_b) for v in variants}
        assert len(texts) == len(variants)  # no duplicates, no identity variants
        for v in variants[1:]:
            assert v.replacements and v.label == rec.label and v.id == rec.id
            for r in v.replacements:
                text = v.text_a if r.field == "a" else v.text_b
                assert text[r.start : r.end] == r.replacement
                assert r.source in ("mlm", "vectors") and r.rank >= 1
                assert r.replacement.lower() != r.original.lower()
                assert match_case(r.original, r.replacement) == r.replacement
            for bad in ("[MASK]", "##", "[UNK]"):
                assert bad not in v.text_a and bad not in (v.text_b or "")


def test_spacing_and_punctuation_kept(augmenter):
    (variants,) = augmenter.augment([RECORDS[1]])
    assert len(variants) > 1
    for v in variants[1:]:
        assert "  " in v.text_a and v.text_a.endswith("noticed.") or "noticed" not in v.text_a
        assert v.text_a.count(";  ") == 1


def test_single_and_multi_piece_routing(augmenter):
    (variants,) = augmenter.augment([RECORDS[3]])
    sources = {(r.original, r.source) for v in variants for r in v.replacements}
    multi = {o for o, s in sources if s == "vectors"}
    assert multi and all(not augmenter.mlm.is_single_piece(o) for o in multi)
    assert all(augmenter.mlm.is_single_piece(o) for o, s in sources if s == "mlm")


def test_deterministic_across_batch_sizes_and_order(augmenter):
    whole = augmenter.augment(RECORDS)
    one_by_one = [augmenter.augment([r])[0] for r in RECORDS]
    reversed_ = augmenter.augment(RECORDS[::-1])[::-1]
    assert whole == one_by_one == reversed_
    other_seed = augmenter.augment(RECORDS, SampleParams.from_config(augmenter.config, seed=1))
    assert other_seed != whole


def test_pair_field_policy(augmenter):
    cfg = augmenter.config
    (a_only,) = augmenter.augment([RECORDS[2]], SampleParams.from_config(cfg, fields="a"))
    (b_only,) = augmenter.augment([RECORDS[2]], SampleParams.from_config(cfg, fields="b"))
    assert all(v.text_b == RECORDS[2].text_b for v in a_only)
    assert all(v.text_a == RECORDS[2].text_a for v in b_only)
    assert {r.field for v in a_only for r in v.replacements} == {"a"}
    assert {r.field for v in b_only for r in v.replacements} == {"b"}


def test_n_and_include_original(augmenter):
    p = SampleParams.from_config(augmenter.config, n=3, include_original=False)
    (variants,) = augmenter.augment([RECORDS[0]], p)
    assert 1 <= len(variants) <= 3 and variants[0].variant == 1


def test_per_record_params(augmenter):
    cfg = augmenter.config
    params = [SampleParams.from_config(cfg, n=2), SampleParams.from_config(cfg, n=4)]
    a, b = augmenter.augment(RECORDS[:2], params)
    assert len(a) <= 3 and len(b) <= 5
    with pytest.raises(ValueError):
        augmenter.augment(RECORDS[:2], params[:1])


def test_vectors_only_mode(augmenter):
    vec = Augmenter(
        AugmentConfig.build(mlm="none", n=4), tagger=augmenter.tagger, vectors=augmenter.vectors
    )
    (variants,) = vec.augment([RECORDS[0]])
    assert len(variants) > 1
    assert {r.source for v in variants for r in v.replacements} == {"vectors"}


def test_sources_param_restricts(augmenter):
    p = SampleParams.from_config(augmenter.config, sources=("mlm",))
    (variants,) = augmenter.augment([RECORDS[3]], p)
    assert {r.source for v in variants for r in v.replacements} <= {"mlm"}


def test_record_without_eligible_words(augmenter):
    (variants,) = augmenter.augment([Record("x", "It is what it is.")])
    assert len(variants) == 1 and variants[0].variant == 0


def test_fast_mode_variants_are_deterministic_and_use_fewer_copies(augmenter, tiny_mlm_dir):
    fast = Augmenter(
        AugmentConfig.build(mlm=str(tiny_mlm_dir), n=6, device="cpu", mode="fast"),
        tagger=augmenter.tagger,
        vectors=augmenter.vectors,
    )
    whole = fast.augment(RECORDS)
    fast.mlm._cache.clear()
    assert [fast.augment([r])[0] for r in RECORDS] == whole
    assert fast.mlm.quantized and fast.mlm.copies < fast.stats["words_mlm"]
    texts = [v.text_a for variants in whole for v in variants]
    assert len(texts) > len(RECORDS) and not any("[MASK]" in t for t in texts)
    assert any(r.source == "mlm" for variants in whole for v in variants for r in v.replacements)


CONTRACTIONS = [
    Record("c1", "Let's see if it's good", label="1"),
    Record("c2", "it's good, and Let's go", "Let's not; it's late.", label="0"),
]


@pytest.mark.parametrize("pos_filter", ["hybrid", "lexicon", "retag", "none"])
def test_contractions_with_two_norms_cold_cache(augmenter, pos_filter):
    """A fresh tagger (nothing cached) sees "'s" with two norms in its first batch."""
    from augment.pos.tagger import Tagger

    cfg = AugmentConfig.build(mlm="none", n=4, pos_filter=pos_filter)
    fresh = Augmenter(cfg, tagger=Tagger(cfg.tagger, cfg.pos_tags), vectors=augmenter.vectors)
    out = fresh.augment(CONTRACTIONS)
    assert [v[0].text_a for v in out] == [r.text_a for r in CONTRACTIONS]
    assert any(len(v) > 1 for v in out)


def test_contractions_with_two_norms_warm_cache(augmenter):
    """The shared augmenter, its caches filled by other texts, gives the same variants."""
    augmenter.augment(RECORDS)
    first = augmenter.augment(CONTRACTIONS)
    assert [v[0].text_a for v in first] == [r.text_a for r in CONTRACTIONS]
    assert augmenter.augment(CONTRACTIONS) == first == augmenter.augment(CONTRACTIONS[::-1])[::-1]


def test_cli_sample_contractions(capsys):
    from kdaug.cli import main

    assert main(["sample", "Let's see if it's good", "--mlm", "none", "--n", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "  0  Let's see if it's good"


@pytest.mark.parametrize(
    "settings, loaded, says",
    [
        ({"mlm": "none", "sources": ["mlm"]}, {}, "no masked-LM is loaded"),
        ({"vectors": "none", "sources": ["vectors"]}, {"mlm": True}, "no word vectors are loaded"),
        ({"mlm": "none", "vectors": "none"}, {}, "no masked-LM is loaded"),
    ],
)
def test_sources_without_any_loaded_model_is_a_config_error(augmenter, settings, loaded, says):
    from kdaug.settings import ConfigError

    models = {"mlm": augmenter.mlm} if loaded.get("mlm") else {}
    cfg = AugmentConfig.build(n=2, **settings)
    with pytest.raises(ConfigError) as err:
        Augmenter(cfg, tagger=augmenter.tagger, **models)
    msg = str(err.value)
    assert "\n" not in msg and says in msg and f"sources={cfg.sources}" in msg


def test_mlm_source_missing_but_vectors_loaded_still_works(augmenter):
    """Only when no listed source can give a candidate is it an error."""
    cfg = AugmentConfig.build(mlm="none", n=2, sources=["mlm", "vectors"])
    (variants,) = Augmenter(cfg, tagger=augmenter.tagger, vectors=augmenter.vectors).augment(
        [RECORDS[0]]
    )
    assert len(variants) > 1


def test_cli_sample_mlm_source_without_mlm_is_one_line_error(capsys):
    from kdaug.cli import main

    assert main(["sample", "a gripping film", "--mlm", "none", "--sources", "mlm"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kdaug: error: sources=['mlm'] but no masked-LM is loaded")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "record, says",
    [
        (Record("s1", "the film \ud800 was good"), "record 's1': text_a has a lone surrogate"),
        (Record("s2", "a good film", "b\udfff"), "record 's2': text_b has a lone surrogate"),
        (Record("s3", b"a good film"), "record 's3': text_a is bytes, not a string"),
        (Record("s4", "a good film", {"nested": 1}), "record 's4': text_b is dict, not a string"),
        (Record("s5\ud800", "a good film"), "id has a lone surrogate"),
    ],
)
def test_text_that_is_not_unicode_is_an_input_error_naming_the_record(augmenter, record, says):
    from kdaug.errors import InputError

    with pytest.raises(InputError) as err:
        augmenter.augment([RECORDS[0], record])
    assert says in str(err.value) and "\n" not in str(err.value)
    (variants,) = augmenter.augment([RECORDS[0]])  # nothing half-done is left behind
    assert len(variants) > 1


@pytest.mark.parametrize("field", ["a", "b"])
def test_text_over_spacy_limit_is_a_one_line_input_error(augmenter, field):
    from augment.records import MAX_TEXT_CHARS
    from kdaug.errors import InputError

    long = "word " * (MAX_TEXT_CHARS // 5) + "x"  # 1,000,001 characters: spaCy's E088
    record = Record("big", long) if field == "a" else Record("big", "a good film", long)
    with pytest.raises(InputError) as err:
        augmenter.augment([RECORDS[0], record])
    says = str(err.value)
    assert says.startswith(f"record 'big': text_{field} has 1,000,001 characters, more than")
    assert "\n" not in says and "E088" not in says
    with pytest.raises(InputError):
        augmenter.augment_text(long)
    at_limit = Record("ok", "good " * (MAX_TEXT_CHARS // 5))  # exactly the limit: accepted
    from augment.augmenter import check_record

    check_record(at_limit)
