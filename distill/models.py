"""Teacher and student models, student specs, the layer map g(m), projections and the capture of
pre-softmax attention scores."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from distill.tasks import TaskSpec
from kdaug.errors import KdaugError
from kdaug.files import atomic_dir
from kdaug.resolve import resolve_model

log = logging.getLogger(__name__)

# TinyBERT's published student shapes (random init, teacher's vocabulary)
PRESETS: dict[str, dict[str, int]] = {
    "tinybert4": {
        "num_hidden_layers": 4,
        "hidden_size": 312,
        "intermediate_size": 1200,
        "num_attention_heads": 12,
    },
    "tinybert6": {
        "num_hidden_layers": 6,
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_attention_heads": 12,
    },
}
TEACHER_LAYERS = "teacher-layers:"
PRETRAINED_LAYERS = "layers:"  # layers:K:MODEL


class ModelError(KdaugError):
    """A model, student spec or layer map cannot be used; the message says what to pass."""


def label_settings(task: TaskSpec) -> dict[str, Any]:
    """Config entries that make a saved model carry the task's label names and order."""
    names = list(task.labels) if task.labels else ["score"]
    return {
        "num_labels": task.num_labels,
        "id2label": dict(enumerate(names)),
        "label2id": {n: i for i, n in enumerate(names)},
        "problem_type": "regression" if task.is_regression else "single_label_classification",
    }


def load_classifier(name_or_path: str, task: TaskSpec) -> tuple[nn.Module, Any]:
    """A sequence classifier with the task's head (a new head when the checkpoint has another)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = resolve_model(name_or_path)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialized classifier" notice is expected
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, ignore_mismatched_sizes=True, **label_settings(task)
        )
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model {name_or_path!r}: {exc}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    return model, tokenizer


def load_teacher(path: str, task: TaskSpec) -> tuple[nn.Module, Any]:
    """The fine-tuned teacher, frozen and in eval mode (the official code leaves dropout on)."""
    from transformers import AutoConfig

    resolved = resolve_model(path)
    try:
        n = AutoConfig.from_pretrained(resolved).num_labels
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load teacher {path!r}: {exc}") from None
    if n != task.num_labels:
        raise ModelError(
            f"teacher {path} has {n} outputs but task {task.name} needs {task.num_labels}; "
            "fine-tune one with `kdaug finetune-teacher`"
        )
    model, tokenizer = load_classifier(path, task)
    model.eval().requires_grad_(False)
    return model, tokenizer


def build_student(spec: str, teacher: nn.Module, teacher_tok: Any, task: TaskSpec) -> nn.Module:
    """A student from a spec: a preset name, `teacher-layers:K`, `layers:K:MODEL` or a
    checkpoint path/name."""
    from transformers import AutoModelForSequenceClassification

    if spec in PRESETS:
        cfg = teacher.config.__class__(**{**teacher.config.to_dict(), **PRESETS[spec]})
        return AutoModelForSequenceClassification.from_config(cfg)
    if spec.startswith(TEACHER_LAYERS):
        k = _layer_step(spec, spec[len(TEACHER_LAYERS) :], teacher.config.num_hidden_layers)
        return _every_kth_layer(teacher, k)
    if spec.startswith(PRETRAINED_LAYERS):
        return _from_pretrained_layers(spec, teacher_tok, task)
    student, tokenizer = load_classifier(spec, task)
    _same_vocabulary(spec, tokenizer, teacher_tok)
    return student


def _same_vocabulary(spec: str, tokenizer: Any, teacher_tok: Any) -> None:
    if tokenizer.get_vocab() != teacher_tok.get_vocab():
        raise ModelError(
            f"student {spec} and the teacher use different vocabularies; layer-wise distillation "
            "needs the teacher's WordPiece vocabulary"
        )


def _layer_step(spec: str, text: str, n: int) -> int:
    """K of a layer-subset spec, an integer in 1..n (the model's layer count)."""
    try:
        k = int(text)
    except ValueError:
        k = 0
    if not 1 <= k <= n:
        raise ModelError(f"student spec {spec!r}: K must be an integer in 1..{n}")
    return k


def _from_pretrained_layers(spec: str, teacher_tok: Any, task: TaskSpec) -> nn.Module:
    """`layers:K:MODEL`: every K-th encoder layer of MODEL as it was before any fine-tuning, with
    a new classification head, so that the task has to come from the teacher."""
    _, k_text, model = (spec.split(":", 2) + ["", ""])[:3]
    if not model:
        raise ModelError(
            f"student spec {spec!r}: write layers:K:MODEL (for example layers:3:minilm-packaged)"
        )
    base, tokenizer = load_classifier(model, task)
    _same_vocabulary(spec, tokenizer, teacher_tok)
    k = _layer_step(spec, k_text, base.config.num_hidden_layers)
    return _every_kth_layer(base, k)


def _every_kth_layer(model: nn.Module, k: int) -> nn.Module:
    """Every k-th layer of `model`: student layer m (1-based) starts as layer m*k, the layer it is
    distilled against under the uniform map of a teacher as deep as `model`; embeddings, pooler
    and head are copied."""
    import copy

    n = model.config.num_hidden_layers
    cfg = copy.deepcopy(model.config)
    cfg.num_hidden_layers = n // k
    student = type(model)(cfg)
    source = {m: (m + 1) * k - 1 for m in range(n // k)}  # 0-based student -> source layer
    state = {}
    for key, value in model.state_dict().items():
        if ".encoder.layer." not in key:
            state[key] = value
            continue
        head, rest = key.split(".encoder.layer.", 1)
        idx, tail = rest.split(".", 1)
        for m, t in source.items():
            if t == int(idx):
                state[f"{head}.encoder.layer.{m}.{tail}"] = value
    student.load_state_dict(state)
    return student.train().requires_grad_(True)


def layer_map(student_layers: int, teacher_layers: int, mode: str | list[int]) -> list[int]:
    """g(m) for m = 1..M, 1-based teacher layers: uniform m*N/M, top, bottom, or explicit."""
    m_, n_ = student_layers, teacher_layers
    if isinstance(mode, list):
        if len(mode) != m_ or any(not 1 <= g <= n_ for g in mode):
            raise ModelError(f"layer_map {mode} must list {m_} teacher layers, each in 1..{n_}")
        return list(mode)
    if m_ > n_:
        raise ModelError(f"the student has {m_} layers, more than the teacher's {n_}")
    if mode == "uniform":
        return [m * n_ // m_ for m in range(1, m_ + 1)]
    if mode == "top":
        return [n_ - m_ + m for m in range(1, m_ + 1)]
    if mode == "bottom":
        return list(range(1, m_ + 1))
    raise ModelError(f"unknown layer_map {mode!r}; use uniform, top, bottom or a list")


class Projections(nn.Module):
    """W_e (embeddings) and W_h (all hidden layers), student width -> teacher width, as in the
    paper (the official code shares one matrix). Equal widths start from the identity."""

    def __init__(self, student_dim: int, teacher_dim: int) -> None:
        super().__init__()
        self.w_e = nn.Linear(student_dim, teacher_dim)
        self.w_h = nn.Linear(student_dim, teacher_dim)
        if student_dim == teacher_dim:
            for lin in (self.w_e, self.w_h):
                nn.init.eye_(lin.weight)
                nn.init.zeros_(lin.bias)


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    try:
        return model.base_model.encoder.layer
    except AttributeError:
        raise ModelError(f"{type(model).__name__} is not a BERT-family encoder") from None


class AttentionScores:
    """Forward hooks on the query/key projections of chosen layers, so that pre-softmax scores
    QK^T/sqrt(d) can be rebuilt whatever attention kernel (eager, sdpa, flash) the model runs."""

    def __init__(self, model: nn.Module, layers: list[int]) -> None:
        self.heads = model.config.num_attention_heads
        self.layers = layers  # 0-based
        self._out: dict[tuple[int, str], torch.Tensor] = {}
        self._handles = []
        all_layers = encoder_layers(model)
        for i in layers:
            attn = all_layers[i].attention.self
            for name in ("query", "key"):
                hook = self._keeper(i, name)
                self._handles.append(getattr(attn, name).register_forward_hook(hook))

    def _keeper(self, i: int, name: str) -> Any:
        def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            self._out[(i, name)] = output

        return hook

    def scores(self, i: int) -> torch.Tensor:
        """[batch, heads, query, key] scores of layer i (0-based) from the last forward."""
        q, k = self._out[(i, "query")], self._out[(i, "key")]
        b, length, width = q.shape
        d = width // self.heads
        q = q.view(b, length, self.heads, d).transpose(1, 2)
        k = k.view(b, length, self.heads, d).transpose(1, 2)
        return torch.matmul(q, k.transpose(-1, -2)) * d**-0.5

    def clear(self) -> None:
        self._out.clear()

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_model(model: nn.Module, tokenizer: Any, out: Path) -> None:
    """save_pretrained (safetensors + config) so AutoModelForSequenceClassification loads it;
    written to a temporary folder that then replaces `out`, so a crash in the middle of a save
    (of a new best model, say) never leaves the weights of one save beside the config of another."""
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
