"""Layer map, student specs, projections and the rebuilt pre-softmax attention scores."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from distill.models import (
    AttentionScores,
    ModelError,
    Projections,
    build_student,
    layer_map,
    load_teacher,
    save_model,
)
from distill.tasks import get_task


def test_layer_map_modes() -> None:
    assert layer_map(4, 12, "uniform") == [3, 6, 9, 12]  # TinyBERT4 from BERT-base
    assert layer_map(6, 12, "uniform") == [2, 4, 6, 8, 10, 12]
    assert layer_map(3, 6, "uniform") == [2, 4, 6]
    assert layer_map(2, 6, "top") == [5, 6]
    assert layer_map(2, 6, "bottom") == [1, 2]
    assert layer_map(2, 6, [1, 6]) == [1, 6]
    with pytest.raises(ModelError):
        layer_map(2, 6, [1, 7])
    with pytest.raises(ModelError):
        layer_map(2, 6, [1])
    with pytest.raises(ModelError):
        layer_map(8, 6, "uniform")


def test_teacher_layers_student_copies_every_kth_layer(tiny_teacher: Path) -> None:
    teacher, tok = load_teacher(str(tiny_teacher), get_task("mrpc"))
    student = build_student("teacher-layers:2", teacher, tok, get_task("mrpc"))
    assert student.config.num_hidden_layers == 2
    t_layers, s_layers = teacher.bert.encoder.layer, student.bert.encoder.layer
    for m, t in ((0, 1), (1, 3)):  # student layer m starts as teacher layer (m + 1) * 2 - 1
        for ps, pt in zip(s_layers[m].parameters(), t_layers[t].parameters(), strict=True):
            assert torch.equal(ps, pt)
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)
    assert all(p.requires_grad for p in student.parameters())
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training
    with pytest.raises(ModelError):
        build_student("teacher-layers:9", teacher, tok, get_task("mrpc"))


@pytest.fixture(scope="module")
def pretrained_encoder(tmp_path_factory: pytest.TempPathFactory, save_tiny_bert) -> Path:
    """A tiny 4-layer BertModel (no head) with the teacher's vocabulary: a pre-trained encoder."""
    out = tmp_path_factory.mktemp("encoder")
    return save_tiny_bert(out, "BertModel", seed=7, num_hidden_layers=4, num_attention_heads=4)


def test_pretrained_layers_student_takes_every_kth_layer_of_the_encoder(
    tiny_teacher: Path, pretrained_encoder: Path
) -> None:
    from transformers import BertModel

    task = get_task("mrpc")
    teacher, tok = load_teacher(str(tiny_teacher), task)
    torch.manual_seed(0)
    student = build_student(f"layers:2:{pretrained_encoder}", teacher, tok, task)
    encoder = BertModel.from_pretrained(pretrained_encoder)
    assert student.config.num_hidden_layers == 2
    assert student.config.num_labels == 2 and student.classifier.out_features == 2
    s_layers, e_layers = student.bert.encoder.layer, encoder.encoder.layer
    t_layers = teacher.bert.encoder.layer
    for m, source in ((0, 1), (1, 3)):  # student layer m starts as encoder layer (m + 1) * 2 - 1
        for ps, pe in zip(s_layers[m].parameters(), e_layers[source].parameters(), strict=True):
            assert torch.equal(ps, pe)
        query = s_layers[m].attention.self.query.weight  # the encoder's, not the teacher's
        assert not torch.equal(query, t_layers[source].attention.self.query.weight)
    assert torch.equal(
        student.bert.embeddings.word_embeddings.weight, encoder.embeddings.word_embeddings.weight
    )
    assert not torch.equal(student.classifier.weight, teacher.classifier.weight)
    assert all(p.requires_grad for p in student.parameters()) and student.training

    one = build_student(f"layers:1:{pretrained_encoder}", teacher, tok, task)
    assert one.config.num_hidden_layers == 4


def test_pretrained_layers_student_refuses_bad_specs(
    tiny_teacher: Path, pretrained_encoder: Path, tmp_path: Path
) -> None:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    task = get_task("mrpc")
    teacher, tok = load_teacher(str(tiny_teacher), task)
    for k in ("0", "5", "x", ""):
        with pytest.raises(ModelError, match=r"K must be an integer in 1\.\.4"):
            build_student(f"layers:{k}:{pretrained_encoder}", teacher, tok, task)
    with pytest.raises(ModelError, match="layers:K:MODEL"):
        build_student("layers:2", teacher, tok, task)

    vocab = tmp_path / "vocab.txt"  # another WordPiece vocabulary
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat"]))
    other = tmp_path / "other"
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(other)
    cfg = BertConfig(vocab_size=7, hidden_size=32, num_hidden_layers=2, num_attention_heads=4)
    cfg.intermediate_size = 64
    BertModel(cfg).save_pretrained(other)
    with pytest.raises(ModelError, match="different vocabularies") as err:
        build_student(f"layers:1:{other}", teacher, tok, task)
    assert "\n" not in str(err.value)


def test_preset_student_shape(tiny_teacher: Path) -> None:
    teacher, tok = load_teacher(str(tiny_teacher), get_task("mrpc"))
    student = build_student("tinybert4", teacher, tok, get_task("mrpc"))
    cfg = student.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size) == (4, 312, 1200)
    assert cfg.num_attention_heads == 12 and cfg.vocab_size == teacher.config.vocab_size


def test_teacher_with_wrong_head_is_refused(tiny_teacher: Path) -> None:
    with pytest.raises(ModelError, match="finetune-teacher"):
        load_teacher(str(tiny_teacher), get_task("mnli"))


def test_a_save_that_fails_halfway_leaves_the_previous_model_loadable(
    tiny_teacher: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForSequenceClassification

    teacher, tok = load_teacher(str(tiny_teacher), get_task("mrpc"))
    best = tmp_path / "best"
    save_model(teacher, tok, best)
    saved, weights = sorted(p.name for p in best.iterdir()), teacher.classifier.weight.clone()

    class BrokenTokenizer:
        def save_pretrained(self, out: Path) -> None:
            raise OSError(28, "No space left on device")

    with torch.no_grad():
        teacher.classifier.weight.add_(1.0)  # a later, different best model
    with pytest.raises(OSError, match="No space"):
        save_model(teacher, BrokenTokenizer(), best)
    assert sorted(p.name for p in best.iterdir()) == saved
    assert [p.name for p in tmp_path.iterdir()] == ["best"]  # no temporary folder left
    reloaded = AutoModelForSequenceClassification.from_pretrained(best)
    assert torch.equal(reloaded.classifier.weight, weights)  # the first save's, whole


def test_projections_start_as_identity_for_equal_widths() -> None:
    p = Projections(8, 8)
    x = torch.randn(2, 3, 8)
    assert torch.equal(p.w_h(x), x) and torch.equal(p.w_e(x), x)
    assert Projections(4, 8).w_h(torch.randn(1, 4)).shape == (1, 8)


def test_scores_match_eager_attention_probabilities(tiny_teacher: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_teacher, attn_implementation="eager"
    ).eval()
    capture = AttentionScores(model, [0, 3])
    ids = torch.tensor([[101, 1996, 4937, 102], [101, 4937, 102, 0]])
    mask = (ids != 0).long()
    out = model(input_ids=ids, attention_mask=mask, output_attentions=True)
    for i in (0, 3):
        scores = capture.scores(i)
        probs = torch.softmax(scores.masked_fill(mask[:, None, None, :] == 0, -1e9), -1)
        assert torch.allclose(probs, out.attentions[i], atol=1e-5)
    capture.remove()
