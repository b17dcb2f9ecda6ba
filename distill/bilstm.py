"""A BiLSTM student (Tang et al. 2019, "Distilling Task-Specific Knowledge from BERT into Simple
Neural Networks"): word embeddings initialised from GloVe, a bidirectional LSTM, max-pooling over
time and a small ReLU MLP. Sentence pairs go through one shared encoder, and the classifier sees
[h1; h2; h1*h2; |h1 - h2|].

The word tokenizer speaks the interface that `BatchStream` expects of a Hugging Face tokenizer, so
batches, the logits cache, training, evaluation and timing are those of every other student. A
pair is laid out as the words of the first text (token type 0) and then those of the second
(token type 1); the model splits them apart again."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from distill.data import Batch, ExampleSource
from distill.losses import HardLabelLoss, LogitMSE, SoftCrossEntropy
from distill.tasks import TaskSpec
from kdaug.errors import KdaugError
from kdaug.files import atomic_path, write_json_atomic, write_text_atomic
from kdaug.vectors import PACKAGED_GLOVE, WordVectors, read_vectors

STUDENT = "bilstm"
MODEL_TYPE = "kdaug-bilstm"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
VOCAB_FILE = "bilstm_vocab.txt"
PAD, UNK = "<pad>", "<unk>"
TEACHER = "teacher"  # --embeddings teacher: the teacher's input embeddings
# GloVe 6B's tokens: lowercase, punctuation apart, clitics split as in the Penn Treebank
# ("don't" -> "do" "n't", "it's" -> "it" "'s")
WORD = re.compile(r"\w+(?=n't\b)|n't\b|'\w+|\w+|[^\w\s]")


class BiLSTMError(KdaugError):
    """A BiLSTM student, its vocabulary or its word vectors cannot be used."""


def words(text: str) -> list[str]:
    """Lowercased word tokens as GloVe 6B spells them."""
    return WORD.findall(text.lower())


# tokenizer ------------------------------------------------------------------------------------
class WordTokenizer:
    """Words to ids over a fixed vocabulary (0 = padding, 1 = unknown words)."""

    pad_token_id = 0
    unk_token_id = 1

    def __init__(self, vocab: list[str]) -> None:
        if vocab[:2] != [PAD, UNK] or len(set(vocab)) != len(vocab):
            raise BiLSTMError(f"a BiLSTM vocabulary starts with {PAD}, {UNK} and has no repeats")
        self.vocab = vocab
        self.index = {w: i for i, w in enumerate(vocab)}

    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def sha256(self) -> str:
        return hashlib.sha256("\n".join(self.vocab).encode()).hexdigest()

    def get_vocab(self) -> dict[str, int]:
        return dict(self.index)

    def encode(self, text: str) -> list[int]:
        """Word ids of a text; an empty text is one unknown word, so no side is empty."""
        ids = [self.index.get(w, self.unk_token_id) for w in words(text)]
        return ids or [self.unk_token_id]

    def __call__(
        self,
        texts_a: list[str],
        texts_b: list[str] | None = None,
        truncation: bool = True,
        max_length: int | None = None,
    ) -> dict[str, list[list[int]]]:
        ids, types = [], []
        for i, a in enumerate(texts_a):
            first = self.encode(a)
            second = self.encode(texts_b[i]) if texts_b is not None else []
            if truncation and max_length:
                first, second = _truncate(first, second, max_length)
            ids.append(first + second)
            types.append([0] * len(first) + [1] * len(second))
        return {"input_ids": ids, "token_type_ids": types}

    def save_pretrained(self, out: str | Path) -> None:
        Path(out).mkdir(parents=True, exist_ok=True)
        write_text_atomic(Path(out) / VOCAB_FILE, "\n".join(self.vocab) + "\n")

    @classmethod
    def from_pretrained(cls, path: str | Path) -> WordTokenizer:
        f = Path(path) / VOCAB_FILE
        if not f.is_file():
            raise BiLSTMError(f"BiLSTM model {path}: vocabulary file {VOCAB_FILE} is missing")
        vocab = f.read_text(encoding="utf-8").split("\n")
        return cls(vocab[:-1] if vocab[-1] == "" else vocab)


def _truncate(a: list[int], b: list[int], max_length: int) -> tuple[list[int], list[int]]:
    """Longest-first truncation to `max_length` words, each side keeping at least one."""
    while len(a) + len(b) > max(max_length, 2 if b else 1):
        if len(a) >= len(b) and len(a) > 1:
            a = a[:-1]
        else:
            b = b[:-1]
    return a, b


# word vectors and vocabulary -----------------------------------------------------------------
def load_vectors(spec: str) -> WordVectors | None:
    """`glove-6b-50d`, a vectors file, or `none` (random embeddings); `teacher` is built from
    the teacher once its vocabulary is known (`teacher_vectors`)."""
    if spec in ("none", TEACHER):
        return None
    if spec != PACKAGED_GLOVE and not Path(spec).expanduser().is_file():
        raise BiLSTMError(
            f"embedding file {spec} not found; pass --embeddings {PACKAGED_GLOVE}, a GloVe or "
            "word2vec file, teacher, or none"
        )
    return read_vectors(spec)


def build_vocabulary(source: ExampleSource, candidates: list[str], extra: int) -> list[str]:
    """Every word of the training rows (most frequent first), then the first `extra` of
    `candidates` (the vectors' words, most frequent first) that the rows lack, so that dev words
    unseen in training still start from their pretrained vectors."""
    counts: Counter[str] = Counter()
    for ex in source:
        counts.update(words(ex.text_a))
        if ex.text_b:
            counts.update(words(ex.text_b))
    vocab = [PAD, UNK, *(w for w, _ in counts.most_common() if w not in (PAD, UNK))]
    if extra:
        seen = set(vocab)
        added = 0
        for w in candidates:
            if added >= extra:
                break
            if w and w not in seen and not any(c.isspace() for c in w):
                vocab.append(w)
                seen.add(w)
                added += 1
    return vocab


def teacher_words(tokenizer: Any) -> list[str]:
    """The whole words of a WordPiece vocabulary (no `##` pieces or [special] tokens), by id."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    return [w for w, _ in vocab if w.isalpha() and w.islower()]


def teacher_vectors(embeddings: torch.Tensor, tokenizer: Any, vocab: list[str]) -> WordVectors:
    """A vector per word from the teacher's input embeddings: the mean of its WordPiece rows."""
    pieces = tokenizer(vocab, add_special_tokens=False)["input_ids"]
    table = embeddings.detach().float().cpu()
    rows = [table[ids].mean(0) if ids else table.new_zeros(table.shape[1]) for ids in pieces]
    matrix = torch.stack(rows).numpy() if rows else np.zeros((0, table.shape[1]), np.float32)
    return WordVectors(TEACHER, vocab, matrix)


def embedding_matrix(
    vocab: list[str], vectors: WordVectors | None, dim: int, seed: int
) -> tuple[torch.Tensor, int]:
    """Initial embeddings: a word's vector where the table has it, else random with the table's
    scale; padding is zero. Returns the matrix and how many words were found in the table."""
    g = torch.Generator().manual_seed(seed)
    if vectors is None:
        weight = torch.randn(len(vocab), dim, generator=g) * 0.1
        weight[0] = 0
        return weight, 0
    rows = [(i, vectors.key_to_index.get(w)) for i, w in enumerate(vocab)]
    found = [(i, j) for i, j in rows if j is not None and i >= 2]
    table = vectors.matrix
    dim = table.shape[1]
    if found:
        known = torch.from_numpy(np.stack([table[j] for _, j in found]).astype(np.float32))
        scale = float(known.std()) or 0.1
    else:
        known, scale = torch.empty(0, dim), 0.1
    weight = torch.randn(len(vocab), dim, generator=g) * scale
    if found:
        weight[torch.tensor([i for i, _ in found])] = known
    weight[0] = 0
    return weight, len(found)


# model ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BiLSTMConfig:
    """What a saved BiLSTM is made of (its config.json)."""

    vocab_size: int
    num_labels: int
    pair: bool
    embedding_dim: int = 50
    hidden_size: int = 150
    num_layers: int = 1
    dropout: float = 0.1
    mlp_hidden: int = 200
    vocab_sha256: str = ""
    id2label: tuple[str, ...] = ()
    model_type: str = MODEL_TYPE


@dataclass
class BiLSTMOutput:
    logits: torch.Tensor


class BiLSTMClassifier(nn.Module):
    """Embeddings -> BiLSTM -> max-pool over time -> Linear-ReLU-Linear. Pairs: one encoder for
    both texts and the features [h1; h2; h1*h2; |h1-h2|]."""

    def __init__(self, config: BiLSTMConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim, padding_idx=0)
        self.lstm = nn.LSTM(
            c.embedding_dim,
            c.hidden_size,
            num_layers=c.num_layers,
            dropout=c.dropout if c.num_layers > 1 else 0.0,
            batch_first=True,
            bidirectional=True,
        )
        self.dropout = nn.Dropout(c.dropout)
        width = 2 * c.hidden_size * (4 if c.pair else 1)
        self.classifier = nn.Sequential(
            nn.Linear(width, c.mlp_hidden),
            nn.ReLU(),
            nn.Dropout(c.dropout),
            nn.Linear(c.mlp_hidden, c.num_labels),
        )

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """[B, T] word ids (the first `lengths` of each row real) -> [B, 2H] max-pooled states."""
        lengths = lengths.clamp_min(1)
        x = self.dropout(self.embedding(ids))
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        real = torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None]
        return out.masked_fill(~real[:, :, None], float("-inf")).amax(1)

    def features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The classifier's input: h ([B, 2H]) or, for pairs, [h1; h2; h1*h2; |h1-h2|] ([B, 8H])."""
        mask = attention_mask.bool()
        types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        len_a = (mask & (types == 0)).sum(1)
        if not self.config.pair:
            return self.encode(input_ids[:, : max(int(len_a.max()), 1)], len_a)
        len_b = (mask & (types == 1)).sum(1)
        width = max(int(len_a.max()), int(len_b.max()), 1)
        span = torch.arange(width, device=input_ids.device)[None, :]
        where_a = span.expand(len(input_ids), -1).clamp_max(input_ids.shape[1] - 1)
        where_b = (len_a[:, None] + span).clamp_max(input_ids.shape[1] - 1)
        ids_a = input_ids.gather(1, where_a).masked_fill(span >= len_a[:, None], 0)
        ids_b = input_ids.gather(1, where_b).masked_fill(span >= len_b[:, None], 0)
        # both texts through the one encoder in a single call
        h = self.encode(torch.cat([ids_a, ids_b]), torch.cat([len_a, len_b]))
        h1, h2 = h[: len(input_ids)], h[len(input_ids) :]
        return torch.cat([h1, h2, h1 * h2, (h1 - h2).abs()], dim=-1)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        **_: Any,
    ) -> BiLSTMOutput:
        h = self.features(input_ids, attention_mask, token_type_ids)
        return BiLSTMOutput(self.classifier(self.dropout(h)))

    # saving and loading ----------------------------------------------------------------------
    def save_pretrained(self, out: str | Path) -> None:
        """config.json and model.safetensors (the vocabulary is the tokenizer's file)."""
        from safetensors.torch import save_file

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        with atomic_path(out / WEIGHTS_FILE) as tmp:
            save_file(state, tmp)
        write_json_atomic(out / CONFIG_FILE, asdict(self.config), sort_keys=False)

    @classmethod
    def from_pretrained(cls, path: str | Path) -> BiLSTMClassifier:
        from safetensors.torch import load_file

        path = Path(path)
        if not is_bilstm(path):
            raise BiLSTMError(f"{path} holds no BiLSTM student ({CONFIG_FILE} of {MODEL_TYPE})")
        raw = json.loads((path / CONFIG_FILE).read_text())
        try:
            config = BiLSTMConfig(**{**raw, "id2label": tuple(raw.get("id2label", ()))})
        except TypeError as exc:
            raise BiLSTMError(f"BiLSTM model {path}: bad {CONFIG_FILE}: {exc}") from None
        if not (path / WEIGHTS_FILE).is_file():
            raise BiLSTMError(f"BiLSTM model {path}: weights file {WEIGHTS_FILE} is missing")
        model = cls(config)
        try:
            model.load_state_dict(load_file(path / WEIGHTS_FILE))
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise BiLSTMError(f"BiLSTM model {path}: weights do not fit: {first}") from None
        return model


def is_bilstm(path: str | Path) -> bool:
    """Whether a directory holds a saved BiLSTM student."""
    f = Path(path) / CONFIG_FILE
    if not f.is_file():
        return False
    try:
        return json.loads(f.read_text()).get("model_type") == MODEL_TYPE
    except (ValueError, AttributeError):
        return False


def load_bilstm(path: str | Path, task: TaskSpec) -> tuple[BiLSTMClassifier, WordTokenizer]:
    """A saved BiLSTM and its vocabulary, checked against each other and the task."""
    model = BiLSTMClassifier.from_pretrained(path)
    tokenizer = WordTokenizer.from_pretrained(path)
    c = model.config
    if len(tokenizer) != c.vocab_size or (c.vocab_sha256 and tokenizer.sha256 != c.vocab_sha256):
        raise BiLSTMError(
            f"BiLSTM model {path}: vocabulary mismatch: {VOCAB_FILE} has {len(tokenizer)} words "
            f"but the model was trained on another vocabulary of {c.vocab_size}"
        )
    if c.num_labels != task.num_labels or c.pair != task.is_pair:
        kind = "pairs" if c.pair else "single texts"
        raise BiLSTMError(
            f"BiLSTM model {path} has {c.num_labels} outputs over {kind}; task {task.name} does not fit"
        )
    return model.eval(), tokenizer


# objective ------------------------------------------------------------------------------------
class LogitObjective(nn.Module):
    """Distillation on the teacher's logits: Tang et al.'s logit MSE or the soft cross-entropy
    at temperature T (MSE always for regression), plus an optional gold-label term."""

    def __init__(
        self,
        student: nn.Module,
        loss: str,
        soft: float,
        hard: float,
        temperature: float,
        regression: bool,
    ) -> None:
        super().__init__()
        self.student = student
        self.weights = {"soft": soft, "hard": hard}
        use_mse = loss == "mse" or regression
        self.soft = LogitMSE() if use_mse else SoftCrossEntropy(temperature)
        self.hard = HardLabelLoss(regression)

    def forward(self, batch: Batch, targets: dict[str, Any]) -> dict[str, torch.Tensor]:
        logits = self.student(**batch.inputs()).logits
        parts: dict[str, torch.Tensor] = {}
        if self.weights["soft"]:
            parts["soft"] = self.soft(logits, targets["logits"])
        if self.weights["hard"]:
            if batch.labels is None:
                raise BiLSTMError("the gold-label loss needs labelled training rows")
            parts["hard"] = self.hard(logits, batch.labels)
        if not parts:
            raise BiLSTMError("weights.soft and weights.hard are both 0: nothing to train on")
        parts["loss"] = sum(self.weights[k] * v for k, v in parts.items())
        return parts


def pad_batch(enc: dict[str, list[list[int]]], pad_id: int = 0) -> Batch:
    """A Batch from unpadded `input_ids` / `token_type_ids` lists (timing, tests)."""
    ids, types = (
        enc["input_ids"],
        enc.get("token_type_ids") or [[0] * len(x) for x in enc["input_ids"]],
    )
    length = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), length), pad_id, dtype=torch.long)
    mask = torch.zeros(len(ids), length, dtype=torch.long)
    type_ids = torch.zeros(len(ids), length, dtype=torch.long)
    for j, (row, t) in enumerate(zip(ids, types, strict=True)):
        input_ids[j, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[j, : len(row)] = 1
        type_ids[j, : len(t)] = torch.tensor(t, dtype=torch.long)
    return Batch(input_ids, mask, type_ids)
