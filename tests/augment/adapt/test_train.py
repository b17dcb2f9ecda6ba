"""End-to-end adaptation on a tiny random model: head creation, records, resume, conditioning."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertModel

from augment.adapt.settings import AdaptSettings, SettingsError
from augment.adapt.train import CHECKPOINT, MLMAdapter
from augment.candidates.conditioning import load_conditioning, token_type_for
from kdaug.cli import main

WORDS = [
    "the",
    "a",
    "film",
    "movie",
    "story",
    "plot",
    "actor",
    "scene",
    "was",
    "is",
    "very",
    "quite",
]


@pytest.fixture(scope="module")
def text_corpus(tmp_path_factory):
    f = tmp_path_factory.mktemp("corpus") / "c.txt"
    rng = torch.Generator().manual_seed(0)
    lines = [
        " ".join(WORDS[i] for i in torch.randint(len(WORDS), (8,), generator=rng).tolist())
        for _ in range(60)
    ]
    f.write_text("\n".join(lines) + "\n")
    return f


def settings(base, corpus, out, **kw) -> AdaptSettings:
    values = {"steps": 4, "batch_size": 8, "max_length": 16, "checkpoint_every": 2, "device": "cpu"}
    return AdaptSettings(base=str(base), corpus=[corpus], output=out, **{**values, **kw})


def test_end_to_end_writes_model_and_record(tiny_mlm_dir, text_corpus, tmp_path):
    out = tmp_path / "m"
    record = MLMAdapter(settings(tiny_mlm_dir, text_corpus, out)).run()
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()
    saved = json.loads((out / "kdaug_mlm.json").read_text())
    assert saved["steps"] == 4 == record["steps"]
    assert saved["label_conditional"] is False and saved["labels"] is None
    assert saved["conditioning"] is None and saved["head_created"] is False
    for part in ("before", "after"):
        assert set(saved["eval"][part]) >= {"top1", "top10", "masked_tokens"}
        assert saved["eval"][part]["masked_tokens"] > 0
    assert saved["final_loss"] > 0 and saved["corpus_fingerprint"] and saved["inputs_fingerprint"]
    # Same inputs again: nothing is retrained.
    again = MLMAdapter(settings(tiny_mlm_dir, text_corpus, out)).run()
    assert again["cached"] is True


def encoder_only(tiny_mlm_dir, tmp_path):
    """The tiny model without its MLM head, as `minilm-packaged` ships."""
    base = tmp_path / "encoder"
    BertModel(BertConfig.from_pretrained(tiny_mlm_dir)).save_pretrained(base)
    AutoTokenizer.from_pretrained(tiny_mlm_dir).save_pretrained(base)
    return base


def test_missing_head_is_created_and_tied(tiny_mlm_dir, text_corpus, tmp_path):
    base = encoder_only(tiny_mlm_dir, tmp_path)
    out = tmp_path / "m"
    record = MLMAdapter(settings(base, text_corpus, out, steps=2)).run()
    assert record["head_created"] is True
    model = BertForMaskedLM.from_pretrained(out)
    decoder = model.cls.predictions.decoder.weight
    assert decoder.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()
    assert model.config.tie_word_embeddings is True


def test_created_head_learns_at_its_own_rate(tiny_mlm_dir, text_corpus, tmp_path):
    base = encoder_only(tiny_mlm_dir, tmp_path)
    adapter = MLMAdapter(settings(base, text_corpus, tmp_path / "m", head_lr_scale=10.0))
    adapter.setup()
    adapter.load_model()
    groups = adapter._param_groups()
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    model = adapter.model
    assert sorted(lr_of) == sorted(id(p) for p in model.parameters())  # each parameter once
    head = [p for n, p in model.named_parameters() if n.startswith("cls.")]
    assert head and all(lr_of[id(p)] == pytest.approx(2e-3) for p in head)
    # The decoder is the tied input embedding matrix: it keeps the encoder's rate.
    assert lr_of[id(model.cls.predictions.decoder.weight)] == pytest.approx(2e-4)
    assert lr_of[id(model.bert.encoder.layer[0].attention.self.query.weight)] == 2e-4
    # Scale 1 is one rate for all, in the two weight-decay groups of before.
    plain = MLMAdapter(settings(base, text_corpus, tmp_path / "p", head_lr_scale=1.0))
    plain.setup()
    plain.load_model()
    groups = plain._param_groups()
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0]
    assert {g["lr"] for g in groups} == {2e-4}


@pytest.fixture(scope="module")
def ragged_corpus(tmp_path_factory):
    """Sentences of 2 to 14 words, so batches of random order pad a lot."""
    f = tmp_path_factory.mktemp("ragged") / "c.txt"
    rng = torch.Generator().manual_seed(1)
    lines = []
    for _ in range(203):
        n = int(torch.randint(2, 15, (1,), generator=rng))
        ids = torch.randint(len(WORDS), (n,), generator=rng).tolist()
        lines.append(" ".join(WORDS[i] for i in ids))
    f.write_text("\n".join(lines) + "\n")
    return f


def test_length_grouping_pads_less_and_keeps_every_example(tiny_mlm_dir, ragged_corpus, tmp_path):
    def plan(group: bool, epoch: int = 0):
        a = MLMAdapter(settings(tiny_mlm_dir, ragged_corpus, tmp_path / "m", max_length=32,
                                group_by_length=group, heldout=0.1))  # fmt: skip
        a.setup()
        a.load_model()
        a._encode_train()
        order, _ = a._epoch_plan(epoch)
        lengths = [len(f["input_ids"]) for f in a.features]
        batches = [order[i : i + 8] for i in range(0, len(order), 8)]
        padded = sum(8 * max(lengths[i] for i in b) for b in batches[:-1])
        return order, padded, len(a.features)

    grouped, grouped_pad, n = plan(True)
    shuffled, shuffled_pad, _ = plan(False)
    assert sorted(grouped) == list(range(n)) == sorted(shuffled)  # each example once an epoch
    assert n % 8 and grouped_pad < 0.85 * shuffled_pad
    assert plan(True)[0] == grouped  # a function of (seed, epoch): resume sees the same batches
    assert plan(True, epoch=1)[0] != grouped


def test_corpus_repeat_weights_the_training_part_only(tiny_mlm_dir, text_corpus, tmp_path):
    extra = tmp_path / "reviews.txt"
    extra.write_text("\n".join(f"{w} film" for w in WORDS[:10]) + "\n")
    s = settings(tiny_mlm_dir, text_corpus, tmp_path / "m", corpus_repeat=[1, 4], heldout=0.2)
    s.corpus.append(extra)
    a = MLMAdapter(s)
    a.setup()
    train = a.train_set
    reviews = [t for t, k in zip(train.texts, train.sources, strict=True) if k == 1]
    others = [t for t, k in zip(train.texts, train.sources, strict=True) if k == 0]
    assert reviews and all(reviews.count(t) == 4 for t in set(reviews))
    assert len(set(reviews)) < 10  # the split kept some review sentences for held-out
    assert len(others) == len(set(others))  # weight 1: each base sentence once
    held = {(t, k) for t, k in zip(a.eval_set.texts, a.eval_set.sources, strict=True)}
    assert not held & set(zip(train.texts, train.sources, strict=True))


def test_resume_continues_exactly(tiny_mlm_dir, text_corpus, tmp_path):
    straight = tmp_path / "straight"
    MLMAdapter(settings(tiny_mlm_dir, text_corpus, straight, steps=6)).run()
    split = tmp_path / "split"
    MLMAdapter(settings(tiny_mlm_dir, text_corpus, split, steps=3)).run()
    state = torch.load(split / CHECKPOINT, weights_only=False)
    assert state["progress"]["step"] == 3
    record = MLMAdapter(settings(tiny_mlm_dir, text_corpus, split, steps=6)).run()
    assert record["steps"] == 6
    a = BertForMaskedLM.from_pretrained(straight).state_dict()
    b = BertForMaskedLM.from_pretrained(split).state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_label_conditional_model_changes_candidates(tiny_mlm_dir, tmp_path):
    corpus = tmp_path / "c.tsv"
    rows = ["the movie was great .\tpos", "the movie was awful .\tneg"] * 40
    corpus.write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    out = tmp_path / "m"
    MLMAdapter(
        settings(tiny_mlm_dir, corpus, out, steps=80, lr=1e-2, label_column="label",
                 mlm_probability=0.5, label_dropout=0.0, batch_size=16, warmup_steps=0)
    ).run()  # fmt: skip
    labels, method = load_conditioning(out)
    assert labels == ["neg", "pos"] and method == "token_type"
    tok = AutoTokenizer.from_pretrained(out)
    model = BertForMaskedLM.from_pretrained(out).eval()
    assert model.config.type_vocab_size == 3
    enc = tok("the movie was [MASK] .", return_tensors="pt")
    at = enc["input_ids"][0].tolist().index(tok.mask_token_id)
    best = {}
    for label in labels:
        types = torch.full_like(enc["input_ids"], token_type_for(label, labels))
        with torch.no_grad():
            logits = model(**{**enc, "token_type_ids": types}).logits[0, at]
        best[label] = tok.convert_ids_to_tokens(int(logits.argmax()))
    assert best == {"neg": "awful", "pos": "great"}


def test_cli_bad_corpus_is_one_line(tmp_path, capsys, tiny_mlm_dir):
    rc = main(["adapt-mlm", "--base", str(tiny_mlm_dir), "--corpus", str(tmp_path / "nope.txt"),
               "-o", str(tmp_path / "m"), "--steps", "1"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.startswith("kdaug: error: corpus file not found") and "\n" not in err


def test_budget_is_required(tiny_mlm_dir, text_corpus, tmp_path):
    with pytest.raises(SettingsError, match="budget"):
        MLMAdapter(settings(tiny_mlm_dir, text_corpus, tmp_path, steps=None))


def test_whole_word_masking_masks_every_piece(tiny_mlm_dir, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("unbelievably overwhelming performances everywhere .\n" * 30)
    adapter = MLMAdapter(settings(tiny_mlm_dir, corpus, tmp_path / "m", whole_word_mask=True))
    record = adapter.run()
    assert record["hparams"]["whole_word_mask"] is True and record["steps"] == 4
    tok = adapter.tokenizer
    for _ in range(5):
        batch = adapter._batch(list(range(8)), [False] * len(adapter.features))
        for ids, labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist(), strict=True):
            masked = [i for i, y in enumerate(labels) if y != -100]
            # a continuation piece is masked only together with the piece before it
            for i in masked:
                if tok.convert_ids_to_tokens(labels[i]).startswith("##"):
                    assert i - 1 in masked
            assert all(ids[i] == tok.mask_token_id for i in masked)  # no 10/10 with wwm
