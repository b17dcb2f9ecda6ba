"""What kdaug is measured against besides its peers: the official TinyBERT algorithm, step for
step, and the floor, the time of only the masked-LM forward passes exact mode needs."""

from __future__ import annotations

import random
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

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
