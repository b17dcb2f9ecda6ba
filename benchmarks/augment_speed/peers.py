"""The peers: nlpaug's and TextAttack's masked-LM word substitution, each made to run against
this environment's transformers (what was changed goes into the notes)."""

from __future__ import annotations

import argparse
import sys
import types
from collections.abc import Callable
from pathlib import Path

from benchmarks.augment_speed.baselines import STOP_WORDS
from benchmarks.augment_speed.rows import first


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
