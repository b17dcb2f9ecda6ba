"""Augmentation throughput side by side: kdaug (exact and fast mode), the official TinyBERT
algorithm, nlpaug and TextAttack, and the masked-LM floor, on the same sentences, masked-LMs, word
vectors and machine, in one process.

    python benchmarks/augment_speed.py [--models small,base] [--limit 200] [--slow-limit 20]

Models: `small` is the shared 6-layer MLM; `base` is bert-base-uncased's shape (12 layers, 768
wide, 30,522 pieces) with seeded random weights, which costs what the real model costs; any other
entry is an MLM folder. kdaug and the floor run on the first --limit sentences; the official
algorithm and the peers, 10-1000x slower, on --slow-limit of those, evenly spaced, each row
stopping after the sentence that uses up --slow-budget-s. Rates are per sentence; the table says
how many sentences each row ran. With the defaults a run takes 20-40 minutes on 2 cores, most of
it TextAttack's. The floor is the time of only the masked-LM forward passes that kdaug's
exact mode needs for its sentences (batched, inference mode, vocabulary logits at the masks only).
Peers are optional (`pip install --no-deps -r benchmarks/requirements-peers.txt`); a peer that
does not install or run is a "skipped" row with the reason. Prints markdown tables and writes JSON
(--out) with a PNG chart beside it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import shutil
import sys
import tempfile
import time
import types
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kdaug.files import write_text_atomic

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # pos_agreement, when imported from elsewhere
ASSETS = Path(os.environ.get("KDAUG_SHARED_ASSETS", HERE.parent.parent / "shared" / "assets"))
OFFICIAL = "official TinyBERT"
EXACT = "kdaug exact"
FAST = "kdaug fast"
FLOOR = "floor (MLM passes only)"
METHOD_ORDER = [OFFICIAL, "TextAttack", "nlpaug", EXACT, FAST, FLOOR]
TARGETS = {"exact_over_floor": 1.3, "fast_vs_official": {"small": 50.0, "base": 25.0}, "peer": 20.0}

# The official script's stop-word list (TinyBERT/data_augmentation.py, StopWordsList).
STOP_WORDS_TEXT = (
    "i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself "
    "yourselves he him his himself she she's her hers herself it it's its itself they them their "
    "theirs themselves this that that'll these those am is are was were be been being have has "
    "had having do does did doing a an the and but if or because as until while of at by for "
    "with about against between into through during before after above below to from up down in "
    "out on off over under again further then once here there all any both each few more most "
    "other some such no nor not only own same so than too very s t can will just don don't "
    "should should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn "
    "doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't "
    "needn needn't shan shan't shouldn shouldn't wasn wasn't weren weren't won won't wouldn "
    "wouldn't 's 're"
)
STOP_WORDS = frozenset(STOP_WORDS_TEXT.split())

# Used when the SST-2 file is absent (tests, fresh machines): short review sentences.
BUILTIN_SENTENCES = [
    "it 's a charming and often affecting journey .",
    "unflinchingly bleak and desperate",
    "the acting is sharp and the story moves along at a brisk pace .",
    "a gorgeous , witty , seductive movie .",
    "the plot is nothing but boilerplate clichés from start to finish .",
    "this is a dull , lifeless film that never finds its footing .",
    "an intelligent , moving portrait of a family in crisis .",
    "the director keeps the tension high until the final scene .",
    "too long , too loud and far too pleased with itself .",
    "a quiet , thoughtful drama with two excellent performances .",
    "the jokes fall flat and the characters are thin .",
    "a bright , funny and surprisingly tender comedy .",
]


# data --------------------------------------------------------------------------------------
def read_rows(path: Path | None, count: int) -> tuple[list[tuple[str, str | None]], str]:
    """The first `count` (sentence, label) rows of a GLUE-style tsv, or the built-in sentences."""
    if path is not None and path.is_file():
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            out = [
                (r["sentence"], r.get("label")) for _, r in zip(range(count), rows, strict=False)
            ]
        return out, f"{path.parent.name}/{path.name}"
    reps = -(-count // len(BUILTIN_SENTENCES))
    pool = [(s, None) for s in BUILTIN_SENTENCES] * max(1, reps)
    return pool[:count], "built-in sentences (data file not found)"


def mean_words(sentences: Sequence[str]) -> float:
    return round(sum(len(s.split()) for s in sentences) / max(1, len(sentences)), 1)


# models ------------------------------------------------------------------------------------
def resolve_models(spec: str, small: Path, tmp: Path) -> list[tuple[str, Path, bool]]:
    """(name, folder, random weights?) per entry of --models."""
    out = []
    for name in [s.strip() for s in spec.split(",") if s.strip()]:
        if name == "small":
            out.append(("small", small, False))
        elif name == "base":
            out.append(("base", make_base(small, tmp / "bert-base-random"), True))
        else:
            out.append((Path(name).name or name, Path(name), False))
    return out


def make_base(tokenizer_from: Path, out: Path) -> Path:
    """BertForMaskedLM with bert-base-uncased's config and seeded random weights, saved with the
    uncased tokenizer of `tokenizer_from` (the packaged MiniLM's when that folder is missing)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    if not (tokenizer_from / "config.json").is_file():
        from kdaug.resolve import packaged_minilm_path

        tokenizer_from = packaged_minilm_path()
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig()).save_pretrained(out)
    AutoTokenizer.from_pretrained(tokenizer_from).save_pretrained(out)
    if (tokenizer_from / "vocab.txt").is_file():
        shutil.copy(tokenizer_from / "vocab.txt", out / "vocab.txt")
    return out


def legacy_tokenizer(model_dir: Path):
    """The pure-Python BERT tokenizer the official script uses (BasicTokenizer + WordPiece)."""
    import transformers

    cls = getattr(transformers, "BertTokenizerLegacy", None) or transformers.BertTokenizer
    if (model_dir / "vocab.txt").is_file():
        return cls.from_pretrained(model_dir, do_lower_case=True)
    fast = transformers.AutoTokenizer.from_pretrained(model_dir)
    vocab = sorted(fast.get_vocab().items(), key=lambda kv: kv[1])
    path = Path(tempfile.mkdtemp()) / "vocab.txt"
    path.write_text("".join(f"{w}\n" for w, _ in vocab), encoding="utf-8")
    return cls(vocab_file=str(path), do_lower_case=True)


# the official algorithm --------------------------------------------------------------------
class OfficialTinyBERT:
    """TinyBERT's data_augmentation.py, step for step: one masked-LM forward per eligible
    single-piece word (batch 1, gradients on, full vocabulary logits at every position, input
    `[CLS] masked [SEP] original [SEP]`), GloVe neighbours of multi-piece words by a full sort
    over the first 100k words, then N draws with replacement probability p."""

    def __init__(
        self,
        model_dir: Path,
        glove_words: Sequence[str],
        glove_matrix: np.ndarray,
        *,
        m: int,
        n: int,
        p: float,
        device: str,
        seed: int = 0,
    ) -> None:
        from transformers import AutoModelForMaskedLM

        self.tokenizer = legacy_tokenizer(model_dir)
        self.model = AutoModelForMaskedLM.from_pretrained(model_dir)
        self.model.eval()
        self.device = device
        rows = min(100_000, len(glove_words))
        matrix = np.array(glove_matrix[:rows], dtype=np.float64)
        norm = np.sum(matrix**2, 1) ** 0.5
        self.emb_norm = (matrix.T / norm).T
        self.vocab = {w: i for i, w in enumerate(glove_words[:rows])}
        self.ids_to_tokens = dict(enumerate(glove_words[:rows]))
        self.m, self.n, self.p = m, n, p
        self.rng = random.Random(seed)
        self.mlm_passes = 0
        self.vector_searches = 0

    def _word_distance(self, word: str) -> list[str]:
        if word not in self.vocab:
            return []
        self.vector_searches += 1
        idx = self.vocab[word]
        dist = np.dot(self.emb_norm, self.emb_norm[idx].T)
        dist[idx] = -np.inf
        ids = np.argsort(-dist)[: self.m]
        words = [self.ids_to_tokens[i] for i in ids][: self.m]
        return [w.title() for w in words] if word.istitle() else words

    def _masked_language_model(self, sent: str, pieces: list[str], mask_at: int) -> list[str]:
        import torch

        if mask_at >= 512:
            return []
        tokens = ["[CLS]"] + self.tokenizer.tokenize(sent)
        first_len = len(tokens)
        tokens = pieces + ["[SEP]"] + tokens[1:] + ["[SEP]"]
        if len(tokens) > 512:
            tokens = tokens[:512]
            first_len = min(first_len, 511)
        ids = self.tokenizer.convert_tokens_to_ids(tokens)
        segments = [0] * (first_len + 1) + [1] * (len(tokens) - first_len - 1)
        ids_t = torch.tensor([ids]).to(self.device)
        seg_t = torch.tensor([segments]).to(self.device)
        self.model.to(self.device)
        logits = self.model(input_ids=ids_t, token_type_ids=seg_t).logits
        self.mlm_passes += 1
        top = torch.argsort(logits[0, mask_at], descending=True)[: self.m].tolist()
        return [w for w in self.tokenizer.convert_ids_to_tokens(top) if not w.startswith("##")]

    def _word_augment(self, sentence: str, word_index: int, word: str) -> list[str]:
        pieces = ["[CLS]"] + self.tokenizer.tokenize(sentence)
        count, ids = -1, []
        for i in range(1, len(pieces)):
            if "##" not in pieces[i]:
                count += 1
                if count < word_index:
                    ids = []
                elif count == word_index:
                    ids = [i]
                else:
                    break
            else:
                ids.append(i)
        candidates: list[str] = []
        if len(ids) == 1:
            pieces[ids[0]] = "[MASK]"
            candidates = self._masked_language_model(sentence, pieces, ids[0])
        elif len(ids) > 1:
            candidates = self._word_distance(word)
        return candidates or [word]

    def augment(self, sentence: str) -> list[str]:
        """The original sentence, then the distinct variants of N draws."""
        out = [sentence]
        tokens = self.tokenizer.basic_tokenizer.tokenize(sentence)
        candidates = {
            i: self._word_augment(sentence, i, w)
            for i, w in enumerate(tokens)
            if not re.search("[^a-z]", w.lower()) and w.lower() not in STOP_WORDS
        }
        for _ in range(self.n):
            new = list(tokens)
            for i, words in candidates.items():
                choice = self.rng.choice(words)
                if self.rng.random() < self.p:
                    new[i] = choice
            text = " ".join(new)
            if text not in out:
                out.append(text)
        return out


# peers -------------------------------------------------------------------------------------
def nlpaug_factory(model_dir: Path, args: argparse.Namespace, notes: list[str]):
    import nlpaug.augmenter.word as naw
    import nlpaug.model.lang_models as nml

    # nlpaug picks the tokenizer API by class name ('TokenizerFast'); transformers 5 names its
    # fast BERT tokenizer BertTokenizer, so nlpaug would call the removed slow-tokenizer methods.
    nml.Bert.token2id = lambda self, token: self.tokenizer.convert_tokens_to_ids(token)
    nml.Bert.id2token = lambda self, i: self.tokenizer.convert_ids_to_tokens(i)
    notes.append(
        "nlpaug: Bert.token2id/id2token set to convert_tokens_to_ids/convert_ids_to_tokens "
        "(its own fast-tokenizer branch; its class-name test misses transformers 5's names)"
    )
    aug = naw.ContextualWordEmbsAug(
        model_path=str(model_dir),
        model_type="bert",
        action="substitute",
        aug_p=args.p,
        top_k=args.top_k,
        device=args.device,
        force_reload=True,
    )
    return lambda text: aug.augment(text, n=args.n)


def _stub_flair() -> None:
    """TextAttack imports flair at start-up for POS/NER helpers that word-swap augmentation does
    not call; flair does not import with transformers 5, so give it the names it looks up."""
    flair = types.ModuleType("flair")
    data = types.ModuleType("flair.data")
    models = types.ModuleType("flair.models")
    data.Sentence = type("Sentence", (), {})
    data.Tokenizer = type("Tokenizer", (), {})
    models.SequenceTagger = type("SequenceTagger", (), {})
    flair.data, flair.models, flair.device = data, models, None
    sys.modules.update({"flair": flair, "flair.data": data, "flair.models": models})


class _StopWords:
    def words(self, language: str = "english") -> list[str]:
        return sorted(STOP_WORDS)


def textattack_factory(model_dir: Path, args: argparse.Namespace, notes: list[str]):
    import nltk
    import torch

    try:
        import flair  # noqa: F401
    except Exception as exc:  # ImportError, or flair failing against transformers 5
        _stub_flair()
        notes.append(f"TextAttack: flair stubbed (unused by word-swap augmentation): {first(exc)}")
    try:
        nltk.corpus.stopwords.words("english")
    except LookupError:
        nltk.corpus.stopwords = _StopWords()
        notes.append("TextAttack: nltk stopwords corpus absent; the official TinyBERT list is used")
    import textattack.shared.utils as ta_utils
    from textattack.augmentation import Augmenter as TextAttackAugmenter
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.transformations import WordSwapMaskedLM

    ta_utils.device = torch.device(args.device)
    swap = WordSwapMaskedLM(
        method="bae", masked_language_model=str(model_dir), max_candidates=args.top_k
    )
    aug = TextAttackAugmenter(
        transformation=swap,
        constraints=[RepeatModification(), StopwordModification(stopwords=STOP_WORDS)],
        pct_words_to_swap=args.p,
        transformations_per_example=args.n,
    )
    notes.append(
        "TextAttack: WordSwapMaskedLM(method='bae', max_candidates=top_k) with its defaults "
        "(each masked copy padded to max_length=512, batches of 16), repeat + stop-word "
        "constraints"
    )
    return aug.augment


PEERS: dict[str, Callable] = {"nlpaug": nlpaug_factory, "TextAttack": textattack_factory}


# measurement -------------------------------------------------------------------------------
def first(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def row(model: str, method: str, sentences: int, seconds: float, variants: int, **extra) -> dict:
    return {
        "model": model,
        "method": method,
        "status": "ok",
        "sentences": sentences,
        "seconds": round(seconds, 3),
        "sentences_per_s": sentences / seconds if seconds > 0 else None,
        "variants": variants,
        "variants_per_s": variants / seconds if seconds > 0 else None,
        **extra,
    }


def skipped(model: str, method: str, reason: str) -> dict:
    print(f"  {method} ({model}): skipped: {reason}", flush=True)
    return {"model": model, "method": method, "status": "skipped", "reason": reason}


def reseed(seed: int = 0) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_slow(
    augment: Callable[[str], list[str]],
    sentences: Sequence[str],
    budget_s: float,
    counts_original: bool,
) -> tuple[int, float, int]:
    """(sentences run, seconds, variants) of a one-sentence-at-a-time augmenter (warmed up)."""
    reseed()
    done = variants = 0
    seconds = 0.0
    for s in sentences:
        t0 = time.perf_counter()
        out = augment(s)
        seconds += time.perf_counter() - t0
        done += 1
        variants += len(out) - (1 if counts_original else 0)
        if budget_s and seconds >= budget_s:
            break
    return done, seconds, variants


def kdaug_config(model_dir: Path, args: argparse.Namespace, mode: str):
    from augment import AugmentConfig

    settings: dict[str, Any] = {"mlm": str(model_dir), "device": args.device}
    settings.update(n=args.n, p=args.p, top_k=args.top_k)
    if mode != "exact":
        settings["mode"] = mode
    return AugmentConfig.build(**settings)


def run_kdaug(aug, records: list, warm: list) -> tuple[float, list, list]:
    """Seconds and variants of `augment_stream` over `records` (default batch size), and the
    masked-LM queries it issued (captured by a pass-through wrapper)."""
    captured: list = []
    mlm = aug.mlm
    if warm:
        aug.augment(warm)
    if mlm is not None:
        inner = mlm.predict

        def capture(queries):
            captured.extend(queries)
            return inner(queries)

        mlm.predict = capture
    reseed()
    t0 = time.perf_counter()
    out = [v for _, v in aug.augment_stream(records)]
    seconds = time.perf_counter() - t0
    if mlm is not None:
        del mlm.predict
    return seconds, out, captured


def time_floor(mlm, queries: Sequence, top_k: int, repeats: int = 3) -> dict:
    """Seconds of only the forward passes for the unique masked copies of `queries`: exact
    mode's copies, packed by kdaug's own rule over the whole run (sorted by length, bounded
    padded tokens and length spread), built before the clock starts; encoder, vocabulary head at
    the masks, top-k. Best of `repeats`."""
    import torch

    from augment.candidates.masking import pack

    copies = mlm.masking.copies(list(dict.fromkeys(queries)))
    order = sorted(copies, key=lambda c: len(c.input_ids))
    chunks = [[same[0] for same in chunk] for chunk in pack([[c] for c in order], mlm.batch_tokens)]
    dev = mlm.device
    pad = mlm.tokenizer.pad_token_id or 0
    batches = []
    for chunk in chunks:
        rows = [(c.input_ids, c.type_ids, c.positions[0]) for c in chunk]
        width = max(len(r[0]) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        types_ = torch.zeros((len(rows), width), dtype=torch.long)
        attn = torch.zeros((len(rows), width), dtype=torch.long)
        for j, (input_ids, type_ids, _) in enumerate(rows):
            ids[j, : len(input_ids)] = torch.tensor(input_ids)
            types_[j, : len(type_ids)] = torch.tensor(type_ids)
            attn[j, : len(input_ids)] = 1
        pos = torch.tensor([r[2] for r in rows])
        batches.append((ids.to(dev), types_.to(dev), attn.to(dev), pos.to(dev)))
    valid = getattr(mlm, "_valid", None)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=str(dev).startswith("cuda"))

    def forward(ids, types_, attn, pos):
        if mlm.head is not None:
            hidden = mlm.model.base_model(
                input_ids=ids, attention_mask=attn, token_type_ids=types_
            ).last_hidden_state
            logits = mlm.head(hidden[torch.arange(len(pos), device=dev), pos])
        else:
            logits = mlm.model(input_ids=ids, attention_mask=attn, token_type_ids=types_).logits
            logits = logits[torch.arange(len(pos), device=dev), pos]
        logits = logits.float()
        if valid is not None:
            logits = logits.masked_fill(~valid, float("-inf"))
        return torch.topk(logits, min(top_k + 8, logits.shape[1]), dim=1)

    with torch.inference_mode(), autocast:
        if batches:
            forward(*batches[0])  # warm-up
        sync = torch.cuda.synchronize if str(dev).startswith("cuda") else (lambda: None)
        times = []
        for _ in range(max(1, repeats)):
            sync()
            t0 = time.perf_counter()
            for b in batches:
                forward(*b)
            sync()
            times.append(time.perf_counter() - t0)
    return {"seconds": min(times), "copies": len(copies), "passes": len(batches), "times": times}


# quality -----------------------------------------------------------------------------------
def quality(aug, records: list, variants: list, mode: str) -> dict:
    """POS agreement of the replacements (benchmarks/pos_agreement.py's measure), candidates per
    eligible word after filtering, and where the replacements came from."""
    from pos_agreement import agreement

    from augment.config import SampleParams

    agree, total, per = agreement(aug, records, variants)
    slots = aug.plan(records, [SampleParams.from_config(aug.config)] * len(records))
    words = [s for rs in slots for s in rs]
    sources = Counter(r.source for vs in variants for v in vs for r in v.replacements)
    reps = sum(sources.values())
    return {
        "mode": mode,
        "sentences": len(records),
        "pos_agreement": agree / max(total, 1),
        "pos_agreement_by_source": {k: a / max(t, 1) for k, (a, t) in per.items()},
        "replacements": total,
        "variants_per_sentence": sum(len(v) - 1 for v in variants) / max(1, len(records)),
        "eligible_words": len(words),
        "candidates_per_word": sum(len(s.candidates) for s in words) / max(1, len(words)),
        "words_without_candidates": sum(not s.candidates for s in words) / max(1, len(words)),
        "replacement_sources": {k: v / max(1, reps) for k, v in sorted(sources.items())},
        "_slots": slots,
    }


def slot_overlap(exact_slots: list, fast_slots: list) -> float | None:
    """Mean share of each word's filtered exact-mode candidates that fast mode also has."""
    shares = []
    for es, fs in zip(exact_slots, fast_slots, strict=True):
        fast = {(s.field, s.word.start): {c[0] for c in s.candidates} for s in fs}
        for s in es:
            if s.candidates:
                got = fast.get((s.field, s.word.start), set())
                shares.append(len({c[0] for c in s.candidates} & got) / len(s.candidates))
    return sum(shares) / len(shares) if shares else None


def topk_overlap(exact_mlm, fast_mlm, queries: Sequence, top_k: int) -> float | None:
    """Mean |exact top-k ∩ fast top-k| / k over the same masked-LM queries."""
    uq = list(dict.fromkeys(queries))
    if not uq:
        return None
    ex, fa = exact_mlm.predict(uq), fast_mlm.predict(uq)
    shares = [
        len({w for w, _ in e} & {w for w, _ in f}) / max(1, min(top_k, len(e)))
        for e, f in zip(ex, fa, strict=True)
        if e
    ]
    return sum(shares) / len(shares) if shares else None


# report ------------------------------------------------------------------------------------
def machine(args: argparse.Namespace) -> dict:
    import torch
    from machine_info import cpu_model

    from augment import __version__

    cpu = cpu_model()
    versions = {"python": platform.python_version(), "kdaug": __version__}
    from importlib import metadata

    for pkg in ("torch", "transformers", "numpy", "spacy", "nlpaug", "textattack"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": args.device,
        "gpu": gpu,
        "platform": platform.platform(),
        "load_average_start": round(os.getloadavg()[0], 2),
        "versions": versions,
    }


def add_ratios(rows: list[dict], floors: dict[str, float]) -> None:
    ok = [r for r in rows if r["status"] == "ok"]
    by = {(r["model"], r["method"]): r for r in ok}
    for r in ok:
        off = by.get((r["model"], OFFICIAL))
        ex = by.get((r["model"], EXACT))
        rate = r["sentences_per_s"]
        r["vs_official"] = rate / off["sentences_per_s"] if off else None
        r["vs_kdaug_exact"] = rate / ex["sentences_per_s"] if ex else None
        floor = floors.get(r["model"])
        if r["method"] in (EXACT, FAST) and floor:
            r["time_over_floor"] = r["seconds"] / floor


def check_targets(rows: list[dict]) -> list[dict]:
    by = {(r["model"], r["method"]): r for r in rows if r["status"] == "ok"}
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        ex, fa = by.get((model, EXACT)), by.get((model, FAST))
        if ex and ex.get("time_over_floor"):
            v, t = ex["time_over_floor"], TARGETS["exact_over_floor"]
            out.append(_target(model, "kdaug exact time / floor time", v, f"<= {t}", v <= t))
        want = TARGETS["fast_vs_official"].get(model)
        if want and fa and fa.get("vs_official"):
            v = fa["vs_official"]
            out.append(_target(model, "kdaug fast vs official (x)", v, f">= {want}", v >= want))
        for peer in ("nlpaug",):
            pr = by.get((model, peer))
            if pr and ex:
                v, t = ex["sentences_per_s"] / pr["sentences_per_s"], TARGETS["peer"]
                out.append(_target(model, f"kdaug exact vs {peer} (x)", v, f">= {t}", v >= t))
    return out


def _target(model: str, what: str, value: float, target: str, met: bool) -> dict:
    return {"model": model, "what": what, "value": value, "target": target, "met": met}


def fmt(x: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if x is None else f"{x:{spec}}{suffix}"


def print_report(result: dict) -> None:
    m = result["machine"]
    print(
        f"\n# Augmentation throughput ({m['cpu']}, {m['cores']} cores, torch "
        f"{m['versions']['torch']} with {m['torch_threads']} threads, device {m['device']}; "
        f"N={result['settings']['n']}, p={result['settings']['p']}, "
        f"top-k={result['settings']['top_k']})\n"
    )
    print(
        "| model | method | sentences | wall s | sentences/s | variants/s | vs official | "
        "vs kdaug exact | time / floor |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        if r["status"] != "ok":
            print(f"| {r['model']} | {r['method']} | skipped: {r['reason']} | | | | | | |")
            continue
        print(
            f"| {r['model']} | {r['method']} | {r['sentences']} | {r['seconds']:.2f} | "
            f"{fmt(r['sentences_per_s'], '.3g')} | {fmt(r['variants_per_s'], '.3g')} | "
            f"{fmt(r.get('vs_official'), '.3g', 'x')} | {fmt(r.get('vs_kdaug_exact'), '.3g', 'x')} "
            f"| {fmt(r.get('time_over_floor'), '.2f', 'x')} |"
        )
    s = result["settings"]
    print(
        f"\nkdaug and the floor: the first {s['sentences']} sentences of {s['data']} "
        f"({s['mean_words']} words on average); the official algorithm and the peers: up to "
        f"{s['slow_limit']} of them, evenly spaced ({s['slow_mean_words']} words on average), "
        f"each row stopping after {s['slow_budget_s']:.0f} s. The floor is the best of "
        f"{s['floor_repeats']} runs. Ratios are of sentences/s on the same model; 'time / floor' is "
        "kdaug's wall time over the time of only the masked-LM forward passes exact mode needs "
        "for the same sentences. 'base' has random weights: its variants/s reflects candidates "
        "that the POS filter rejects, not the method."
    )
    if result["targets"]:
        print("\n| model | target | value | wanted | met |\n|---|---|---|---|---|")
        for t in result["targets"]:
            print(
                f"| {t['model']} | {t['what']} | {t['value']:.2f} | {t['target']} | "
                f"{'yes' if t['met'] else 'NO'} |"
            )
    if result["quality"]:
        print(
            "\n| model | mode | top-15 overlap with exact | filtered-candidate overlap | "
            "POS agreement | candidates/word | words without | variants/sentence | sources |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for q in result["quality"]:
            src = ", ".join(f"{k} {v:.0%}" for k, v in q["replacement_sources"].items())
            print(
                f"| {q['model']} | {q['mode']} | {fmt(q.get('topk_overlap'), '.1%')} | "
                f"{fmt(q.get('candidate_overlap'), '.1%')} | {q['pos_agreement']:.1%} | "
                f"{q['candidates_per_word']:.1f} | {q['words_without_candidates']:.1%} | "
                f"{q['variants_per_sentence']:.1f} | {src} |"
            )
    for note in result["notes"]:
        print(f"- {note}")


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in result["rows"] if r["status"] == "ok"]
    models = list(dict.fromkeys(r["model"] for r in ok))
    methods = [m for m in METHOD_ORDER if any(r["method"] == m for r in ok)]
    if not models or not methods:
        return
    by = {(r["model"], r["method"]): r["sentences_per_s"] for r in ok}
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(4.0 + 2.2 * len(models), 4.5))
    for j, method in enumerate(methods):
        xs = [i + (j - (len(methods) - 1) / 2) * width for i in range(len(models))]
        ys = [by.get((mo, method), 0) for mo in models]
        bars = ax.bar(xs, ys, width, label=method)
        for b, y in zip(bars, ys, strict=True):
            if y:
                ax.annotate(
                    f"{y:.3g}",
                    (b.get_x() + b.get_width() / 2, y),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_yscale("log")
    low = min(v for v in by.values() if v)
    ax.set_ylim(bottom=low / 3, top=max(by.values()) * 3)
    ax.set_xticks(range(len(models)), models)
    ax.set_ylabel("sentences / s (log)")
    m = result["machine"]
    ax.set_title(
        f"Augmentation throughput, N={result['settings']['n']} ({m['cpu']}, "
        f"{m['torch_threads']} threads)",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# main --------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="small,base", help="small, base and/or MLM folders")
    ap.add_argument("--mlm-small", type=Path, default=ASSETS / "mlm-minilm-adapted")
    ap.add_argument("--data", type=Path, default=ASSETS / "glue" / "SST-2" / "dev.tsv")
    ap.add_argument("--limit", type=int, default=200, help="sentences for kdaug and the floor")
    ap.add_argument("--slow-limit", type=int, default=20, help="sentences for official/peers")
    ap.add_argument("--slow-budget-s", type=float, default=300.0, help="per slow row; 0: none")
    ap.add_argument("--floor-repeats", type=int, default=3, help="the floor is the best of")
    ap.add_argument("--peers", default="nlpaug,textattack", help="nlpaug,textattack or none")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--p", type=float, default=0.4)
    ap.add_argument("--top-k", type=int, default=15)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "augment_speed.json")
    return ap.parse_args(argv)


@dataclass
class Inputs:
    """What every model is measured on."""

    args: argparse.Namespace
    records: list
    warm: list
    slow_sentences: list[str]
    slow_warm: str
    peers: set[str]
    notes: list[str] = field(default_factory=list)


def load_inputs(args: argparse.Namespace) -> tuple[Inputs, str]:
    from augment import Record

    warm_n = 8
    rows, data_name = read_rows(args.data, args.limit + warm_n)
    if len(rows) > args.limit:
        warm_rows, rows = rows[args.limit :], rows[: args.limit]
    else:
        warm_rows = [(s, None) for s in BUILTIN_SENTENCES[:warm_n]]
    # the slow rows run on an evenly spaced sample of the same sentences
    step = max(1, len(rows) // max(1, args.slow_limit))
    peers = {p.strip().lower() for p in args.peers.split(",")} - {"none", ""}
    unknown = peers - {p.lower() for p in PEERS}
    if unknown:
        raise SystemExit(f"unknown peer(s) {sorted(unknown)}: choose nlpaug, textattack or none")
    inputs = Inputs(
        args=args,
        records=[Record(str(i), s, label=lab) for i, (s, lab) in enumerate(rows)],
        warm=[Record(f"w{i}", s, label=lab) for i, (s, lab) in enumerate(warm_rows)],
        slow_sentences=[s for s, _ in rows[::step]][: args.slow_limit],
        slow_warm=min((s for s, _ in warm_rows), key=len),
        peers=peers,
    )
    return inputs, data_name


def measure_kdaug(name: str, model_dir: Path, random_weights: bool, inp: Inputs) -> tuple:
    """Rows for kdaug exact, the floor and kdaug fast; quality rows; the floor's seconds."""
    from augment import Augmenter
    from augment.config import AugmentConfig

    args, records = inp.args, inp.records
    rows, qrows, floor = [], [], None
    exact = Augmenter(kdaug_config(model_dir, args, "exact"))
    secs, out_exact, queries = run_kdaug(exact, records, inp.warm)
    n_var = sum(len(v) - 1 for v in out_exact)
    rows.append(row(name, EXACT, len(records), secs, n_var, mlm_copies=len(set(queries))))
    print(f"  {EXACT}: {len(records) / secs:.3g} sentences/s", flush=True)
    if exact.mlm is not None and queries:
        fl = time_floor(exact.mlm, queries, args.top_k, args.floor_repeats)
        floor = fl["seconds"]
        extra = {"mlm_copies": fl["copies"], "forward_passes": fl["passes"]}
        rows.append(row(name, FLOOR, len(records), floor, 0, **extra))
        rows[-1].update(variants_per_s=None, repeat_seconds=[round(t, 3) for t in fl["times"]])
    fast = None
    if "mode" in AugmentConfig.model_fields:
        fast = Augmenter(kdaug_config(model_dir, args, "fast"))
        secs, out_fast, _ = run_kdaug(fast, records, inp.warm)
        n_var = sum(len(v) - 1 for v in out_fast)
        extra = {k: getattr(fast.mlm, k, None) for k in ("copies", "forward_passes")}
        rows.append(row(name, FAST, len(records), secs, n_var, **extra))
        print(f"  {FAST}: {len(records) / secs:.3g} sentences/s", flush=True)
    else:
        rows.append(skipped(name, FAST, "this kdaug has no AugmentConfig.mode (fast mode)"))
    if not random_weights:  # quality means nothing for random weights
        qe = quality(exact, records, out_exact, "exact")
        qrows.append({"model": name, **qe})
        if fast is not None:
            qf = quality(fast, records, out_fast, "fast")
            qf["topk_overlap"] = topk_overlap(exact.mlm, fast.mlm, queries, args.top_k)
            qf["candidate_overlap"] = slot_overlap(qe["_slots"], qf["_slots"])
            qrows.append({"model": name, **qf})
    for q in qrows:
        q.pop("_slots", None)
    return rows, qrows, floor, exact.config.vectors if exact.vectors else None


def measure_official(name: str, model_dir: Path, vectors: str | None, inp: Inputs) -> dict:
    from augment.candidates.vectors import VectorIndex

    if vectors is None:
        return skipped(name, OFFICIAL, "kdaug has no word vectors configured")
    args = inp.args
    vec = VectorIndex.load(vectors, limit=100)
    official = OfficialTinyBERT(
        model_dir, vec.words, vec._matrix, m=args.top_k, n=args.n, p=args.p, device=args.device
    )
    reseed()
    official.augment(inp.slow_warm)
    official.mlm_passes = official.vector_searches = 0
    done, secs, n_var = run_slow(official.augment, inp.slow_sentences, args.slow_budget_s, True)
    print(f"  {OFFICIAL}: {done / secs:.3g} sentences/s", flush=True)
    return row(
        name,
        OFFICIAL,
        done,
        secs,
        n_var,
        mlm_passes=official.mlm_passes,
        vector_searches=official.vector_searches,
    )


def measure_peer(name: str, model_dir: Path, peer: str, inp: Inputs) -> dict:
    try:
        augment = PEERS[peer](model_dir, inp.args, inp.notes)
        reseed()
        augment(inp.slow_warm)
        done, secs, n_var = run_slow(augment, inp.slow_sentences, inp.args.slow_budget_s, False)
    except ImportError as exc:
        hint = "pip install --no-deps -r benchmarks/requirements-peers.txt"
        return skipped(name, peer, f"not installed or not importable ({first(exc)}); {hint}")
    except Exception as exc:  # a peer that fails is reported, not fatal
        return skipped(name, peer, first(exc))
    print(f"  {peer}: {done / secs:.3g} sentences/s", flush=True)
    return row(name, peer, done, secs, n_var)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    import torch
    from transformers.utils import logging as hf_logging

    from augment.config import AugmentConfig

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    inp, data_name = load_inputs(args)
    rows: list[dict] = []
    quality_rows: list[dict] = []
    floors: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        models = resolve_models(args.models, args.mlm_small, Path(tmp))
        for name, model_dir, random_weights in models:
            print(f"model {name}: {model_dir.name}", flush=True)
            if not (model_dir / "config.json").is_file():
                rows.append(skipped(name, EXACT, f"no model folder {model_dir}"))
                continue
            krows, qrows, floor, vectors = measure_kdaug(name, model_dir, random_weights, inp)
            rows += krows
            quality_rows += qrows
            if floor:
                floors[name] = floor
            rows.append(measure_official(name, model_dir, vectors, inp))
            for peer in PEERS:
                if peer.lower() in inp.peers:
                    rows.append(measure_peer(name, model_dir, peer, inp))
    if "mode" not in AugmentConfig.model_fields:
        inp.notes.append("kdaug fast mode: skipped, AugmentConfig has no `mode` field here")
    add_ratios(rows, floors)
    mach = machine(args)
    mach["load_average_end"] = round(os.getloadavg()[0], 2)
    result = {
        "machine": mach,
        "settings": {
            "n": args.n,
            "p": args.p,
            "top_k": args.top_k,
            "data": data_name,
            "sentences": len(inp.records),
            "mean_words": mean_words([r.text_a for r in inp.records]),
            "slow_limit": args.slow_limit,
            "slow_mean_words": mean_words(inp.slow_sentences),
            "slow_budget_s": args.slow_budget_s,
            "floor_repeats": args.floor_repeats,
            "models": {name: str(path.name) for name, path, _ in models},
            "threads": args.threads,
        },
        "rows": rows,
        "targets": check_targets(rows),
        "quality": quality_rows,
        "notes": list(dict.fromkeys(inp.notes)),
    }
    print_report(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(result, indent=2, default=str))
    png = args.out.with_suffix(".png")
    try:
        plot(result, png)
        print(f"\nwrote {args.out} and {png}")
    except ImportError as exc:
        print(f"\nwrote {args.out} (no chart: {first(exc)})")
    return result


if __name__ == "__main__":
    main()
