"""Masked-LM candidates: one batched pass for every masked word of a batch of records.

Exact mode (the paper's method): one masked copy of the text per word. Copies are sorted by
length and packed into forward passes of at most `batch_tokens` padded tokens (`masking.py`); the
encoder runs once per copy and the vocabulary projection only at the masked positions.

Fast mode changes the method, not only the engineering: the words of a text are masked together,
several non-adjacent words per copy (at most `mask_rate` of its tokens), each copy cut to a
`fast_max_length` window around its masks, and on CPU the model's linear layers run in int8
with activation scales calibrated once per model and settings (`quant.py`: cached on disk and
shipped to worker processes). Its quality cost against exact mode is measured by
`benchmarks.augment_speed`.

In both modes identical copies (repeated texts, as MNLI premises and QQP questions are) are
computed once per batch, and recent copies are answered from an LRU cache across batches.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from augment.candidates import quant
from augment.candidates.conditioning import TOKEN_TYPE, load_conditioning
from augment.candidates.masking import Copy, Masking, MaskQuery, encode, pack
from augment.candidates.topk import BLOCK, product, top_k
from kdaug.errors import KdaugError
from kdaug.resolve import mlm_load_hint, resolve_device, resolve_model

if TYPE_CHECKING:
    from augment.candidates.source import WordInContext
    from augment.config import AugmentConfig

log = logging.getLogger(__name__)

_EXTRA = 8  # candidates fetched beyond top_k so that re-ranking with rounded scores is stable
_SCORE_DECIMALS = 3


class MaskedLMCandidates:
    """Top-k replacement words for masked single-WordPiece words, from a Hugging Face MLM (the
    `mlm` candidate source, see `source.py`)."""

    fallback = False

    @classmethod
    def from_config(
        cls, cfg: AugmentConfig, device: str | None = None, cache_size: int | None = None
    ) -> MaskedLMCandidates:
        """The MLM an AugmentConfig describes (device and cache size overridable)."""
        return cls(
            cfg.mlm,
            device=cfg.device if device is None else device,
            top_k=cfg.top_k,
            context=cfg.mlm_context,
            max_length=cfg.mlm_max_length,
            batch_tokens=cfg.mlm_batch_tokens,
            mode=cfg.mode,
            mask_rate=cfg.fast_mask_rate,
            fast_max_length=cfg.fast_max_length,
            quantize=cfg.mlm_quantize,
            cache_size=cfg.mlm_cache_size if cache_size is None else cache_size,
        )

    def __init__(
        self,
        name: str,
        *,
        device: str = "auto",
        top_k: int = 15,
        context: str = "masked",
        max_length: int = 128,
        batch_tokens: int = 8192,
        mode: str = "exact",
        mask_rate: float = 0.2,
        fast_max_length: int = 64,
        quantize: str = "auto",
        cache_size: int = 20_000,
    ) -> None:
        import torch
        from transformers import AutoModelForMaskedLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = resolve_model(name)
        self.device = resolve_device(device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForMaskedLM.from_pretrained(path)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise KdaugError(
                f"cannot load masked-LM {name!r} ({first}); {mlm_load_hint(name)}"
            ) from None
        if not getattr(self.tokenizer, "is_fast", False):
            raise KdaugError(f"masked-LM {name!r} needs a fast tokenizer (tokenizer.json)")
        if self.tokenizer.mask_token_id is None:
            raise KdaugError(f"model {name!r} has no mask token: it is not a masked-LM")
        self.model.eval().to(self.device)
        self.calibration_settings = calibration_settings(
            mode, mask_rate, fast_max_length, max_length, context
        )
        if mode not in ("exact", "fast"):
            raise KdaugError(f"masked-LM mode must be 'exact' or 'fast', not {mode!r}")
        self.name = name
        self.path = path
        self.top_k = top_k
        self.batch_tokens = batch_tokens
        self.conditioning = load_conditioning(path)
        if self.conditioning and self.conditioning[1] != TOKEN_TYPE:
            raise KdaugError(f"{path}: unknown label conditioning {self.conditioning[1]!r}")
        if self.conditioning and context == "with_original":
            log.warning("label-conditional MLM: context 'with_original' ignored, using 'masked'")
            context = "masked"
        self.masking = Masking(
            self.tokenizer,
            mode=mode,
            max_length=min(max_length, self.tokenizer.model_max_length or max_length),
            fast_max_length=fast_max_length,
            mask_rate=mask_rate,
            context=context,
            labels=self.labels,
        )
        self.head = getattr(self.model, "cls", None) or getattr(self.model, "lm_head", None)
        self._valid = self._valid_vocab(torch)
        self._bias = self._vocab_bias(torch)
        self._valid_ids = torch.nonzero(self._valid).squeeze(1)
        self._projection = None
        self._logits = None  # the cut projection's output on CPU, reused (see `_project`)
        self._maxima = None  # and its blocks' maxima
        self._cut_projection = False  # not while calibrating: int8 ranges watch every layer
        # id -> token, None past the tokenizer's ids (as convert_ids_to_tokens answers)
        self._tokens = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
        self._tokens += [None] * (len(self._bias) - len(self._tokens))
        self._single: dict[str, bool] = {}
        self._cache: OrderedDict[tuple, list[list[tuple[str, float]]]] = OrderedDict()
        self.cache_size = cache_size
        self.forward_passes = 0
        self.calibration: str | None = None  # where the int8 ranges came from, when quantized
        self.quantized = _quantize(self, quantize)
        self._cut_projection = not self.quantized
        self.forward_passes = 0  # calibration passes do not count
        self.copies = 0
        self.cache_hits = 0

    # vocabulary --------------------------------------------------------------------------
    def _valid_vocab(self, torch):
        """Token ids that may be proposed: whole alphabetic words, no ## pieces, no specials."""
        vocab = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
        special = set(self.tokenizer.all_special_ids)
        ok = [
            i not in special and t.isalpha() and t.isascii() and len(t) > 1
            for i, t in enumerate(vocab)
        ]
        size = self.model.get_output_embeddings().weight.shape[0]
        ok = (ok + [False] * size)[:size]
        return torch.tensor(ok, dtype=torch.bool, device=self.device)

    def _vocab_bias(self, torch):
        """0 at the ids `_valid` allows, -inf elsewhere: added to the logits it masks them as
        `masked_fill` would (a finite logit plus -inf is -inf), for a fraction of its cost."""
        return torch.zeros(self._valid.shape, device=self.device).masked_fill(
            ~self._valid, float("-inf")
        )

    def _valid_projection(self):
        """A BERT-style head's vocabulary projection cut to the ids that may be proposed (a
        third of the vocabulary never is): (weight rows, bias, column of each id or -1), made
        once per weight tensor; None for other heads and for int8 layers."""
        import torch

        pred = getattr(self.head, "predictions", None)
        decoder = getattr(pred, "decoder", None)
        transform = getattr(pred, "transform", None)
        if not self._cut_projection or transform is None or type(decoder) is not torch.nn.Linear:
            return None
        bias = decoder.bias if decoder.bias is not None else getattr(pred, "bias", None)
        if bias is None or decoder.weight.shape[0] != self._valid.shape[0]:
            return None
        key = (id(decoder.weight), decoder.weight._version, id(bias), bias._version)
        if self._projection is None or self._projection[0] != key:
            with torch.inference_mode():
                ids = self._valid_ids
                column = torch.full(self._valid.shape, -1, dtype=torch.long, device=self.device)
                column[ids] = torch.arange(len(ids), device=self.device)
                cut = (decoder.weight[ids].contiguous(), bias[ids].contiguous(), column)
            self._projection = (key, cut)
        return self._projection[1]

    def _project(self, x, weight, bias):
        """`linear(x, weight, bias)` as float32, and the maxima of its blocks of columns (see
        topk.py) or None. On CPU both are written into buffers kept for the next pass: a fresh
        tensor of this size is new memory from the kernel each time, and faulting its pages in
        costs about as much as the product with a small model."""
        import torch

        if x.device.type != "cpu" or x.dtype != torch.float32 or weight.dtype != torch.float32:
            return torch.nn.functional.linear(x, weight, bias).float(), None
        rows, n = x.shape[0], weight.shape[0]
        if self._logits is None or self._logits.numel() < rows * n:
            self._logits = torch.empty(rows * n)
            self._maxima = torch.empty(rows * (n // BLOCK))
        out = self._logits[: rows * n].view(rows, n)
        maxima = self._maxima[: rows * (n // BLOCK)].view(rows, n // BLOCK)
        # what `linear` computes for a 2-D input with a bias on CPU, a block of columns at a
        # time, and the blocks' maxima for `top_k`
        return product(x, weight, out, bias, maxima=maxima), maxima

    def is_single_piece(self, word: str) -> bool:
        """Does `word` stay one known WordPiece (the TinyBERT rule for MLM candidates)?"""
        hit = self._single.get(word)
        if hit is None:
            self.learn_pieces([word])
            hit = self._single[word]
        return hit

    def learn_pieces(self, words: Iterable[str]) -> None:
        """Answer `is_single_piece` for these words ahead, with one tokenizer call."""
        new = [w for w in dict.fromkeys(words) if w not in self._single]
        if new:
            unk = self.tokenizer.unk_token_id
            for word, (ids, _) in zip(new, encode(self.tokenizer, new), strict=True):
                self._single[word] = len(ids) == 1 and ids[0] != unk

    @property
    def labels(self) -> list[str] | None:
        return self.conditioning[0] if self.conditioning else None

    # the candidate-source interface --------------------------------------------------------
    def serves(self, words: Sequence[str]) -> list[bool]:
        """Single-WordPiece words only (one tokenizer call for the new ones)."""
        self.learn_pieces(words)
        return [self._single[w] for w in words]

    def candidates(self, queries: Sequence[WordInContext]) -> list[list[tuple[str, float]]]:
        """`predict` with each word masked in its text (and the label, when conditional)."""
        return self.predict([MaskQuery(q.text, q.word.start, q.word.end, q.label) for q in queries])

    # prediction --------------------------------------------------------------------------
    def predict(self, queries: Sequence[MaskQuery]) -> list[list[tuple[str, float]]]:
        """Ranked (word, score) candidates for each query, the masked word itself excluded."""
        if not queries:
            return []
        unique: dict[MaskQuery, int] = {}
        for q in queries:
            unique.setdefault(q, len(unique))
        uq = list(unique)
        copies = self.masking.copies(uq)
        results: list[list[tuple[str, float]]] = [[] for _ in uq]
        todo: dict[tuple, list[Copy]] = {}  # identical copies are computed once
        for c in copies:
            key = c.key
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.cache_hits += 1
                for i, cands in zip(c.queries, hit, strict=True):
                    results[i] = cands
            else:
                todo.setdefault(key, []).append(c)
        pending = sorted(todo.values(), key=lambda same: len(same[0].input_ids))
        for chunk in pack(pending, self.batch_tokens):
            answers = self.forward([same[0] for same in chunk])
            for same, cands in zip(chunk, answers, strict=True):
                if self.cache_size > 0:
                    self._remember(same[0].key, cands)
                for c in same:
                    for i, cand in zip(c.queries, cands, strict=True):
                        results[i] = cand
        self.copies += len(copies)
        return [results[unique[q]] for q in queries]

    def _remember(self, key: tuple, cands: list[list[tuple[str, float]]]) -> None:
        if self.cache_size <= 0:
            return
        self._cache[key] = cands
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def forward(self, copies: Sequence[Copy]) -> list[list[list[tuple[str, float]]]]:
        """Candidates for every mask of every copy, one forward pass."""
        import torch

        # padded id matrices filled row by row in numpy: torch.tensor of nested lists costs
        # ten times as much
        lengths = np.array([len(c.input_ids) for c in copies])
        width = int(lengths.max())
        ids = np.full((len(copies), width), self.tokenizer.pad_token_id or 0, dtype=np.int64)
        types = np.zeros((len(copies), width), dtype=np.int64)
        for r, c in enumerate(copies):
            ids[r, : lengths[r]] = c.input_ids
            if any(c.type_ids):
                types[r, : lengths[r]] = c.type_ids
        attn = (np.arange(width) < lengths[:, None]).astype(np.int64)
        ids, types, attn = torch.from_numpy(ids), torch.from_numpy(types), torch.from_numpy(attn)
        rows = torch.tensor([r for r, c in enumerate(copies) for _ in c.positions])
        cols = torch.tensor([p for c in copies for p in c.positions])
        word_ids = torch.tensor([w for c in copies for w in c.word_ids])
        dev = self.device
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.startswith("cuda"))
        with torch.inference_mode(), autocast:
            ids, types, attn = ids.to(dev), types.to(dev), attn.to(dev)
            rows, cols, word_ids = rows.to(dev), cols.to(dev), word_ids.to(dev)
            valid = self._valid_projection()
            maxima = None  # the logits' block maxima, where the projection gave them
            if valid is not None:  # only the ids that may be proposed: columns of `valid`
                hidden = self.model.base_model(
                    input_ids=ids, attention_mask=attn, token_type_ids=types
                ).last_hidden_state
                weight, bias, column = valid
                x = self.head.predictions.transform(hidden[rows, cols])
                logits, maxima = self._project(x, weight, bias)
                word_ids = column[word_ids.clamp(min=0)].masked_fill(word_ids < 0, -1)
            elif self.head is not None:
                hidden = self.model.base_model(
                    input_ids=ids, attention_mask=attn, token_type_ids=types
                ).last_hidden_state
                logits = self.head(hidden[rows, cols]).float()
                logits += self._bias  # -inf at the ids that may not be proposed
            else:
                logits = self.model(input_ids=ids, attention_mask=attn, token_type_ids=types).logits
                logits = logits[rows, cols].float()
                logits += self._bias
            has_word = word_ids >= 0
            if has_word.any():
                masks_with = torch.nonzero(has_word).squeeze(1)
                masked = word_ids[has_word]
                logits[masks_with, masked] = float("-inf")
                if maxima is not None:  # the blocks that held a masked word, again
                    maxima = _remax(logits, maxima, masks_with, masked)
            k = min(self.top_k + _EXTRA, logits.shape[1])
            scores, idx = top_k(logits, k, maxima=maxima)
            if valid is None and scores.isnan().any():
                # a NaN (or +inf met -inf): sorted first; mask exactly
                logits = logits.masked_fill(~self._valid, float("-inf"))
                scores, idx = torch.topk(logits, k, dim=1)
            if valid is not None:
                idx = self._valid_ids[idx]
        self.forward_passes += 1
        ranked = _ranked(scores.double().cpu().numpy(), idx.cpu().numpy(), self.top_k)
        flat = [[(self._tokens[i], s) for s, i in row] for row in ranked]
        out, at = [], 0
        for c in copies:
            out.append(flat[at : at + len(c.positions)])
            at += len(c.positions)
        return out


def _remax(logits, maxima, rows, cols):
    """`maxima` (block maxima of `logits`, see topk.py) with the blocks that hold the (row,
    column) pairs given computed again from `logits`."""
    blocks = cols // BLOCK
    inside = blocks < maxima.shape[1]  # a column past the last whole block is in no block
    rows, blocks = rows[inside], blocks[inside]
    whole = logits[:, : maxima.shape[1] * BLOCK].unflatten(1, (maxima.shape[1], BLOCK))
    maxima[rows, blocks] = whole[rows, blocks].amax(1)
    return maxima


def _ranked(scores: np.ndarray, ids: np.ndarray, top_k: int) -> list[list[tuple[float, int]]]:
    """For each row of scores (float64, as Python floats would hold them) and their ids: the
    first `top_k` (score rounded to _SCORE_DECIMALS, id), ranked by rounded score, ties by id
    (the same candidates whatever the padding or batch a query was computed in); -inf scores
    dropped. The rounding is Python's `round`: numpy's (x * 1000 to the nearest integer, / 1000)
    equals it except where x * 1000 lies within rounding error of a half, and those are rounded
    by Python."""
    rounded = np.round(scores, _SCORE_DECIMALS)
    scaled = scores * 10.0**_SCORE_DECIMALS
    with np.errstate(invalid="ignore"):  # -inf - -inf
        near = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6
    if near.any():
        rounded[near] = [round(x, _SCORE_DECIMALS) for x in scores[near].tolist()]
    order = np.lexsort((ids, -rounded), axis=-1)[:, :top_k]
    top = np.take_along_axis(rounded, order, axis=-1)
    kept = (top != -np.inf).sum(axis=1).tolist()
    top_ids = np.take_along_axis(ids, order, axis=-1).tolist()
    return [
        list(zip(row[:n], row_ids[:n], strict=True))
        for row, row_ids, n in zip(top.tolist(), top_ids, kept, strict=True)
    ]


def load_source(cfg: AugmentConfig, loaded: Mapping[str, object]) -> MaskedLMCandidates | None:
    """The `mlm` source's loader (see `registry.py`): the config's masked-LM, unless `none`."""
    return None if cfg.mlm.lower() == "none" else MaskedLMCandidates.from_config(cfg)


def calibration_settings(
    mode: str, mask_rate: float, fast_max_length: int, max_length: int, context: str
) -> dict[str, object]:
    """The settings that shape the int8 calibration's masked copies (with the model files, they
    key the calibration cache)."""
    return {
        "mode": mode,
        "mask_rate": mask_rate,
        "fast_max_length": fast_max_length,
        "max_length": max_length,
        "context": context,
    }


def int8_wanted(how: str, mode: str, device: str) -> bool:
    """Whether `quantize` setting `how` asks for int8 layers ('auto' = fast mode on CPU)."""
    return how == "int8" or (how == "auto" and mode == "fast" and device == "cpu")


def _quantize(mlm: MaskedLMCandidates, how: str) -> bool:
    """int8 linear layers with calibrated activation scales: 'auto' = on CPU in fast mode. The
    ranges come from this process's memory, a coordinator, or the disk cache when they are
    there; otherwise they are calibrated here (and cached)."""
    if how not in ("auto", "off", "int8"):
        raise KdaugError(f"quantize must be auto, off or int8, not {how!r}")
    on_cpu = mlm.device == "cpu"
    if not int8_wanted(how, mlm.masking.mode, mlm.device):
        return False
    if not on_cpu:
        raise KdaugError("int8 quantisation runs on CPU only; use quantize 'off' on GPU")
    if not quant.supported():
        if how == "int8":
            raise KdaugError("this PyTorch build has no x86/fbgemm int8 kernels")
        log.warning("no x86/fbgemm int8 kernels in this PyTorch build: MLM stays float32")
        return False
    key = _calibration_key(mlm)
    layers = quant.linear_names(mlm.model)
    ranges, mlm.calibration = quant.find_ranges(key, layers)
    if ranges is None or set(ranges) != layers:
        ranges, mlm.calibration = _calibrate(mlm), "calibrated"
        quant.save_ranges(key, ranges, {"model": str(mlm.name)})
    quant.counts[mlm.calibration] += 1
    log.debug("int8 ranges of %s: %s", mlm.name, mlm.calibration)
    quant.apply_ranges(mlm.model, ranges)
    mlm.head = getattr(mlm.model, "cls", None) or getattr(mlm.model, "lm_head", None)
    return True


def _calibration_key(mlm: MaskedLMCandidates) -> str:
    from pathlib import Path

    if Path(mlm.path).is_dir():
        fingerprint = quant.files_fingerprint(mlm.path)
    else:  # a hub name: what was loaded
        fingerprint = quant.tensors_fingerprint(mlm.model, mlm.tokenizer.get_vocab())
    return quant.calibration_key(fingerprint, mlm.calibration_settings)


# A fixed forward-pass budget for calibration: the ranges (padding rows included) must not depend
# on `batch_tokens`, which does not change the output either.
_CALIBRATION_BATCH_TOKENS = 8192


def _calibrate(mlm: MaskedLMCandidates) -> quant.Ranges:
    """Input ranges of the MLM's linear layers over masked copies of the packaged sentences."""
    import re

    queries = [
        MaskQuery(text, m.start(), m.end())
        for text in quant.calibration_sentences()
        for m in re.finditer(r"[A-Za-z]{3,}", text)
        if mlm.is_single_piece(m.group())
    ]
    copies = mlm.masking.copies(queries)

    def calibrate() -> None:
        for chunk in pack([[c] for c in copies], _CALIBRATION_BATCH_TOKENS):
            mlm.forward([c[0] for c in chunk])

    return quant.observe_ranges(mlm.model, calibrate)


def int8_calibration_for_workers(cfg) -> dict | None:
    """What a coordinator ships to its worker processes so that none of them calibrates: the
    int8 ranges of `cfg`'s MLM (from memory or the disk cache, else calibrated here once, in
    this process, on every core) and the model folder's fingerprint. None when `cfg` does not
    quantise (no MLM, exact mode, a GPU, no int8 kernels)."""
    from pathlib import Path

    device = resolve_device(cfg.device)
    if cfg.mlm.lower() == "none" or not int8_wanted(cfg.mlm_quantize, cfg.mode, device):
        return None
    if device != "cpu" or not quant.supported():
        return None  # the workers raise or warn, as a single process would
    path = resolve_model(cfg.mlm)
    if Path(path).is_dir():
        settings = calibration_settings(
            cfg.mode, cfg.fast_mask_rate, cfg.fast_max_length, cfg.mlm_max_length, cfg.mlm_context
        )
        key = quant.calibration_key(quant.files_fingerprint(path), settings)
        if quant.find_ranges(key)[0] is not None:
            return quant.shipped([key])
    mlm = MaskedLMCandidates.from_config(cfg, device="cpu", cache_size=0)
    return quant.shipped([_calibration_key(mlm)]) if mlm.quantized else None
