"""The BiLSTM student: tokens as GloVe spells them, siamese pair features, training on cached
teacher logits, exact save/load, one-line errors, and the commands end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from distill import checkpoint as ckpt
from distill.bilstm import (
    VOCAB_FILE,
    BiLSTMClassifier,
    BiLSTMConfig,
    BiLSTMError,
    LogitObjective,
    WordTokenizer,
    load_bilstm,
    load_vectors,
    pad_batch,
    teacher_vectors,
    words,
)
from distill.bilstm_job import build_bilstm, distill_bilstm
from distill.config import DistillConfig
from distill.logits_cache import CACHE_DIR
from distill.models import load_teacher, save_model
from distill.tasks import get_task
from distill.trainer import StageTrainer
from kdaug.cli import build_parser, main
from kdaug.cli.distill import _config

VOCAB = ["<pad>", "<unk>", "the", "cat", "sat", "on", "mat", "a", "dog"]


def _model(pair: bool, seed: int = 0, **kw: Any) -> BiLSTMClassifier:
    torch.manual_seed(seed)
    cfg = BiLSTMConfig(
        vocab_size=len(VOCAB), num_labels=2, pair=pair, embedding_dim=6, hidden_size=4, **kw
    )
    return BiLSTMClassifier(cfg).eval()


def _cfg(checkpoint_every: int = 100, max_steps: int | None = None, **bilstm: Any) -> DistillConfig:
    return DistillConfig.build(
        task="mrpc",
        max_length=32,
        checkpoint_every=checkpoint_every,
        prediction={
            "batch_size": 8,
            "epochs": 12,
            "lr": 1e-2,
            "warmup": 0.0,
            "max_steps": max_steps,
        },
        bilstm={"hidden_size": 16, "mlp_hidden": 16, "extra_words": 50, "dropout": 0.0, **bilstm},
    )


def test_words_are_glove_tokens() -> None:
    assert words("Don't STOP, it's fine.") == ["do", "n't", "stop", ",", "it", "'s", "fine", "."]
    glove = load_vectors("glove-6b-50d")
    assert all(w in glove.key_to_index for w in words("Can't we say it's the cat's mat?"))


def test_tokenizer_pairs_truncates_and_never_leaves_a_side_empty() -> None:
    tok = WordTokenizer(VOCAB)
    enc = tok(["the cat sat", ""], ["a zebra", "the dog"], max_length=4)
    assert enc["input_ids"] == [[2, 3, 7, 1], [1, 2, 8]]  # zebra unknown; empty text one <unk>
    assert enc["token_type_ids"] == [[0, 0, 1, 1], [0, 1, 1]]
    assert tok(["the cat sat on the mat"], max_length=3)["input_ids"] == [[2, 3, 4]]
    with pytest.raises(BiLSTMError):
        WordTokenizer(["the", "cat"])


def test_siamese_pair_features() -> None:
    tok, model = WordTokenizer(VOCAB), _model(pair=True)
    ab = pad_batch(tok(["the cat sat on the mat", "a dog"], ["a dog", "the mat"]))
    ba = pad_batch(tok(["a dog", "the mat"], ["the cat sat on the mat", "a dog"]))
    with torch.no_grad():
        f_ab = model.features(ab.input_ids, ab.attention_mask, ab.token_type_ids)
        f_ba = model.features(ba.input_ids, ba.attention_mask, ba.token_type_ids)
        alone = pad_batch(tok(["a dog"], ["the mat"]))
        f_alone = model.features(alone.input_ids, alone.attention_mask, alone.token_type_ids)
        logits = model(**ab.inputs()).logits
    h = 2 * 4  # both directions of 4 units
    assert f_ab.shape == (2, 4 * h) and logits.shape == (2, 2)
    h1, h2 = f_ab[:, :h], f_ab[:, h : 2 * h]
    torch.testing.assert_close(f_ab[:, 2 * h : 3 * h], h1 * h2)
    torch.testing.assert_close(f_ab[:, 3 * h :], (h1 - h2).abs())
    # one shared encoder: swapping the texts swaps h1 and h2
    torch.testing.assert_close(f_ba[:, :h], h2)
    torch.testing.assert_close(f_ba[:, h : 2 * h], h1)
    # padding in a longer batch changes nothing
    torch.testing.assert_close(f_alone[0], f_ab[1])
    single = _model(pair=False)
    one = pad_batch(tok(["the cat sat", "a dog"]))
    with torch.no_grad():
        assert single.features(one.input_ids, one.attention_mask).shape == (2, h)


def test_logit_objective_parts() -> None:
    model = _model(pair=False)
    batch = pad_batch(WordTokenizer(VOCAB)(["the cat", "a dog"]))
    batch.labels = torch.tensor([0, 1])
    with torch.no_grad():
        logits = model(**batch.inputs()).logits
    teacher = logits + torch.tensor([[1.0, -1.0], [2.0, 0.0]])
    mse = LogitObjective(model, "mse", 1.0, 0.5, 1.0, regression=False)
    parts = mse(batch, {"logits": teacher})
    assert parts["soft"].item() == pytest.approx((1 + 1 + 4 + 0) / 4)
    ce = torch.nn.functional.cross_entropy(logits, batch.labels).item()
    assert parts["hard"].item() == pytest.approx(ce, rel=1e-5)
    assert parts["loss"].item() == pytest.approx(1.5 + 0.5 * ce, rel=1e-5)
    soft = LogitObjective(model, "soft-ce", 1.0, 0.0, 2.0, regression=False)
    p = torch.softmax(teacher / 2, -1)
    want = -(p * torch.log_softmax(logits / 2, -1)).sum(-1).mean().item()
    assert set(soft(batch, {"logits": teacher})) == {"soft", "loss"}
    assert soft(batch, {"logits": teacher})["soft"].item() == pytest.approx(want, rel=1e-5)


def test_save_load_round_trip_is_exact(tmp_path: Path) -> None:
    tok, model = WordTokenizer(VOCAB), _model(pair=True, seed=3, dropout=0.3)
    save_model(model, tok, tmp_path / "m")
    loaded, loaded_tok = load_bilstm(tmp_path / "m", get_task("mrpc"))
    assert loaded_tok.vocab == VOCAB and loaded.config == model.config
    batch = pad_batch(tok(["the cat sat on the mat", "a dog"], ["a dog sat", "the mat"]))
    with torch.no_grad():
        assert torch.equal(model(**batch.inputs()).logits, loaded(**batch.inputs()).logits)
    state, again = model.state_dict(), loaded.state_dict()
    assert all(torch.equal(state[k], again[k]) for k in state)
    with pytest.raises(BiLSTMError, match="task sst2"):
        load_bilstm(tmp_path / "m", get_task("sst2"))  # single sentences, not pairs


def test_embeddings_start_from_glove(shards: Path) -> None:
    glove = load_vectors("glove-6b-50d")
    model, tok, summary = build_bilstm(_cfg(), str(shards), 0, glove)
    row = np.array(glove.matrix[glove.key_to_index["cat"]], dtype=np.float32)
    assert model.embedding.weight.shape == (len(tok), 50)
    assert torch.equal(model.embedding.weight[tok.index["cat"]], torch.from_numpy(row))
    assert not model.embedding.weight[0].any()  # padding
    train_words = {w for w in tok.vocab[2:] if w in {"cat", "mat", "monday", "station"}}
    assert train_words == {"cat", "mat", "monday", "station"}
    assert summary["vocab_size"] == len(tok) <= 2 + 50 + 60 and summary["words_with_vectors"] > 40


def test_embeddings_from_the_teacher(tiny_teacher: Path, shards: Path) -> None:
    teacher, tok = load_teacher(str(tiny_teacher), get_task("mrpc"))
    model, vocab, summary = build_bilstm(
        _cfg(embeddings="teacher"), str(shards), 0, None, (teacher, tok)
    )
    table = teacher.get_input_embeddings().weight
    assert model.embedding.weight.shape == (len(vocab), table.shape[1])
    for word in ("cat", "sharply"):
        pieces = tok(word, add_special_tokens=False)["input_ids"]
        want = table[pieces].mean(0)
        torch.testing.assert_close(model.embedding.weight[vocab.index[word]], want)
    pieces = tok("distillations", add_special_tokens=False)["input_ids"]
    assert len(pieces) > 1  # a word of several WordPieces gets their mean
    vectors = teacher_vectors(table, tok, ["distillations"])
    torch.testing.assert_close(torch.from_numpy(vectors.matrix[0]), table[pieces].mean(0))
    extras = vocab.vocab[-50:]  # whole lowercase words of the WordPiece vocabulary
    assert all(w.isalpha() and w.islower() and w in tok.get_vocab() for w in extras)
    assert summary["words_with_vectors"] == len(vocab) - 2


def test_trains_on_cached_teacher_logits_and_loss_falls(
    tiny_teacher: Path, shards: Path, mrpc_dev: Path, tmp_path: Path
) -> None:
    m = distill_bilstm(_cfg(), str(tiny_teacher), str(shards), [str(mrpc_dev)], tmp_path / "a")
    losses = [h["loss"] for h in m_history(tmp_path / "a") if "loss" in h]
    assert len(losses) == 36  # 24 rows, batches of 8, 12 epochs
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3])
    assert m["stages"]["prediction"]["teacher_forwards"] > 0
    assert (shards / CACHE_DIR).is_dir()  # cached beside the shards
    assert m["parameters"]["student"] < m["parameters"]["teacher"]
    inf = m["inference"]
    assert inf["device"] == "cpu" and inf["sentences"] == 9
    assert inf["student_seconds_per_sentence"] > 0 and inf["speedup"] > 0
    assert set(m["student_dev"]["dev"]) == {"accuracy", "f1"}
    again = distill_bilstm(_cfg(), str(tiny_teacher), str(shards), [str(mrpc_dev)], tmp_path / "b")
    assert again["stages"]["prediction"]["teacher_forwards"] == 0  # the teacher ran once
    assert again["student_dev"] == m["student_dev"]  # same seed, same data: same student


def _final_state(out: Path) -> dict[str, Any]:
    return torch.load(ckpt.latest(out / "checkpoints" / "prediction") / ckpt.STATE)


def m_history(out: Path) -> list[dict[str, Any]]:
    return _final_state(out)["trainer"]["history"]


def test_resume_is_exact(
    tiny_teacher: Path, shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _cfg(checkpoint_every=2, max_steps=7, dropout=0.3)  # dropout: the RNG must resume too
    args = (str(tiny_teacher), str(shards), [])
    distill_bilstm(cfg, *args, tmp_path / "whole")
    real = StageTrainer._record

    def crash(self: StageTrainer, *a: Any) -> None:
        real(self, *a)
        if self.state.step == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(StageTrainer, "_record", crash)
    with pytest.raises(KeyboardInterrupt):
        distill_bilstm(cfg, *args, tmp_path / "cut")
    monkeypatch.setattr(StageTrainer, "_record", real)
    distill_bilstm(cfg, *args, tmp_path / "cut", resume=True)
    whole, cut = _final_state(tmp_path / "whole")["model"], _final_state(tmp_path / "cut")["model"]
    assert whole.keys() == cut.keys() and all(torch.equal(whole[k], cut[k]) for k in whole)


def test_bilstm_flags_and_stage_defaults(tmp_path: Path) -> None:
    yaml = tmp_path / "c.yaml"
    yaml.write_text("bilstm: {hidden_size: 64, loss: soft-ce}\nprediction: {epochs: 2}\n")
    base = ["distill", "--teacher", "t", "--train", "s", "--task", "sst2", "-o", "o"]
    parse = build_parser().parse_args
    args = parse([*base, "--student", "bilstm", "--config", str(yaml), "--lstm-layers", "2"])
    cfg = _config(args)
    assert (cfg.bilstm.hidden_size, cfg.bilstm.layers, cfg.bilstm.loss) == (64, 2, "soft-ce")
    assert (cfg.prediction.lr, cfg.prediction.batch_size, cfg.prediction.epochs) == (1e-3, 50, 2)
    args = parse([*base, "--student", "bilstm", "--lr", "0.01", "--hard-weight", "0.5"])
    cfg = _config(args)
    assert cfg.prediction.lr == 0.01 and cfg.weights.hard == 0.5
    transformer = _config(parse([*base, "--student", "tinybert4"]))
    assert transformer.prediction.lr == 3e-5 and transformer.prediction.batch_size == 32


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("kdaug: error:") and "\n" not in err
    return err


def test_cli_distill_then_evaluate(
    tiny_teacher: Path,
    shards: Path,
    mrpc_dev: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "run"
    common = ["--task", "mrpc", "--device", "cpu", "--max-length", "32"]
    distill_argv = [
        "distill",
        "--student",
        "bilstm",
        "--teacher",
        str(tiny_teacher),
        "--train",
        str(shards),
        "--eval",
        str(mrpc_dev),
        "-o",
        str(out),
        "--epochs",
        "2",
        "--lstm-hidden",
        "8",
        "--embeddings",
        "none",
        *common,
    ]
    assert main(distill_argv) == 0
    capsys.readouterr()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["student"] == "bilstm" and metrics["bilstm"]["hidden_size"] == 8
    assert metrics["stages"]["prediction"]["steps"] == 2 * 1  # 24 rows, batches of 50
    assert main(["evaluate", str(out), "--eval", str(mrpc_dev), *common]) == 0
    assert json.loads(capsys.readouterr().out) == metrics["student_dev"]

    # the vocabulary file no longer matches the weights
    with (out / "best" / VOCAB_FILE).open("a", encoding="utf-8") as f:
        f.write("zebra\n")
    err = _error(["evaluate", str(out), "--eval", str(mrpc_dev), *common], capsys)
    assert "vocabulary mismatch" in err
    (out / "best" / VOCAB_FILE).unlink()
    err = _error(["evaluate", str(out), "--eval", str(mrpc_dev), *common], capsys)
    assert VOCAB_FILE in err

    missing = tmp_path / "no-such-vectors.txt"
    argv = [*distill_argv[: -len(common) - 2], *common]
    err = _error([*argv, "--embeddings", str(missing), "-o", str(tmp_path / "x")], capsys)
    assert "embedding file" in err and str(missing) in err
    err = _error([*argv, "--stage", "both", "-o", str(tmp_path / "y")], capsys)
    assert "prediction" in err
