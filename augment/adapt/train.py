"""Masked-LM adaptation: fine-tune a BERT-family model on a corpus, optionally label-conditional.

One readable recipe: `setup` (data, model, optimizer, resume), `train` (the loop with periodic
checkpoints), `finish` (save_pretrained, held-out evaluation, `kdaug_mlm.json`).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from augment.adapt.conditional import add_label_types
from augment.adapt.corpus import Corpus, read_corpus
from augment.adapt.evaluate import logits_at, masked_token_accuracy
from augment.adapt.settings import AdaptSettings, digest, model_fingerprint
from augment.candidates.conditioning import RECORD_FILE, TOKEN_TYPE
from kdaug.files import atomic_path, read_marker, write_marker
from kdaug.resolve import ResolveError, resolve_device, resolve_model

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint/state.pt"
INPUTS_KEY = "inputs_fingerprint"


def cached_record(output: Path, inputs_fingerprint: str) -> dict | None:
    """The record of a finished model in `output` built from exactly these inputs, else None
    (the record is the model's completion marker, its settings the inputs' fingerprint)."""
    if not (output / "config.json").is_file():
        return None
    return read_marker(output / RECORD_FILE, inputs_fingerprint, key=INPUTS_KEY)


class MLMAdapter:
    """Adapts `settings.base` to `settings.corpus`; `run()` returns the saved record."""

    def __init__(self, settings: AdaptSettings) -> None:
        settings.validate()
        self.s = settings
        self.state: dict[str, Any] = {}

    def run(self) -> dict:
        self.setup()
        cached = None if self.s.force else cached_record(self.s.output, self.inputs_fp)
        if cached is not None:
            log.info("%s is up to date with its inputs (cached); nothing to do", self.s.output)
            return {**cached, "cached": True}
        self.load_model()
        self.train()
        return self.finish()

    # ---- setup -------------------------------------------------------------------------------
    def setup(self) -> None:
        """Read the corpus, split off the held-out part and compute the fingerprints."""
        s = self.s
        self.base_path = resolve_model(s.base)
        corpus = read_corpus(s.corpus, s.text_column, s.label_column)
        if s.eval_file is not None:
            self.train_set = corpus
            self.eval_set = read_corpus([s.eval_file], s.text_column, s.label_column)
        else:
            self.train_set, self.eval_set = corpus.split(s.heldout, s.seed, s.max_eval)
        if s.corpus_repeat:
            self.train_set = self.train_set.repeated(s.corpus_repeat)
        self.labels = corpus.label_set() if s.label_column else None
        self.train_fp = digest(
            {
                "base": model_fingerprint(self.base_path),
                "corpus": self.train_set.fingerprint(),
                "eval": self.eval_set.fingerprint(),
                "labels": self.labels,
                "hparams": s.training_dict(),
            }
        )
        from augment import __version__

        self.inputs_fp = digest(
            {"train": self.train_fp, "minutes": s.minutes, "steps": s.steps, "kdaug": __version__}
        )

    def load_model(self) -> None:
        import torch
        from transformers import AutoModelForMaskedLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        s = self.s
        if s.threads:
            torch.set_num_threads(s.threads)
        self.device = resolve_device(s.device)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the missing-head report is replaced by one line below
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.base_path)
            model, info = AutoModelForMaskedLM.from_pretrained(
                self.base_path, output_loading_info=True
            )
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ResolveError(f"cannot load {s.base!r} as a masked-LM: {first}") from None
        finally:
            hf_logging.set_verbosity(verbosity)
        prefix = model.base_model_prefix + "."
        self.head_created = any(not k.startswith(prefix) for k in info.get("missing_keys", ()))
        if self.head_created:
            # A fresh head shares its decoder with the trained word embeddings.
            model.config.tie_word_embeddings = True
            model.tie_weights()
            log.info("no MLM head in %s: created one, tied to the input embeddings", s.base)
        if self.labels:
            add_label_types(model, self.labels)
        self.model = model.to(self.device)
        self.before: dict | None = None

    # ---- data ----------------------------------------------------------------------------------
    def _type_of(self, corpus: Corpus) -> list[int]:
        if not self.labels or corpus.labels is None:
            return [0] * len(corpus)
        index = {lab: i + 1 for i, lab in enumerate(self.labels)}
        return [index.get(lab, 0) for lab in corpus.labels]

    def _encode_train(self) -> None:
        enc = self.tokenizer(
            self.train_set.texts,
            truncation=True,
            max_length=self.s.max_length,
            return_special_tokens_mask=True,
            return_offsets_mapping=self.s.whole_word_mask,
        )
        self.features = [{k: enc[k][i] for k in enc} for i in range(len(self.train_set))]
        self.label_types = self._type_of(self.train_set)

    def _epoch_plan(self, epoch: int) -> tuple[list[int], list[bool]]:
        """Example order and label-dropout draws of an epoch: a function of (seed, epoch) only,
        so a resumed run sees exactly the batches the first run would have seen."""
        import torch

        gen = torch.Generator().manual_seed(self.s.seed * 100_003 + epoch)
        if self.s.group_by_length:
            order = self._length_grouped(gen)
        else:
            order = torch.randperm(len(self.features), generator=gen).tolist()
        drop = (torch.rand(len(self.features), generator=gen) < self.s.label_dropout).tolist()
        return order, drop

    def _length_grouped(self, gen) -> list[int]:
        """Batches of similar lengths, so a step pads little: transformers' length grouping
        (random mega-batches of up to 50 batches, each sorted by length), then the full batches
        in a random order, so that lengths do not fall from long to short within each mega-batch;
        a short remainder stays last, where the epoch's last slice takes it."""
        import torch
        from transformers.trainer_pt_utils import get_length_grouped_indices

        b = self.s.batch_size
        lengths = [len(f["input_ids"]) for f in self.features]
        grouped = get_length_grouped_indices(lengths, b, generator=gen)
        full = len(grouped) // b
        batches = [grouped[k * b : (k + 1) * b] for k in range(full)]
        order = [i for k in torch.randperm(full, generator=gen).tolist() for i in batches[k]]
        return order + grouped[full * b :]

    def _batch(self, idx: list[int], drop: list[bool]) -> dict:
        pad = self.tokenizer.pad_token_id
        width = max(len(self.features[i]["input_ids"]) for i in idx)
        rows = []
        for i in idx:
            f, n = self.features[i], len(self.features[i]["input_ids"])
            t = 0 if drop[i] else self.label_types[i]
            row = {
                "input_ids": f["input_ids"] + [pad] * (width - n),
                "attention_mask": [1] * n + [0] * (width - n),
                "token_type_ids": [t] * n + [0] * (width - n),
                "special_tokens_mask": f["special_tokens_mask"] + [1] * (width - n),
            }
            if "offset_mapping" in f:
                row["offset_mapping"] = list(f["offset_mapping"]) + [(0, 0)] * (width - n)
            rows.append(row)
        return self.collator(rows)

    # ---- training -------------------------------------------------------------------------------
    def train(self) -> None:
        import torch
        from transformers import DataCollatorForLanguageModeling, get_constant_schedule_with_warmup

        from kdaug.progress import progress

        s = self.s
        self._encode_train()
        wwm = {"mask_replace_prob": 1.0, "random_replace_prob": 0.0} if s.whole_word_mask else {}
        self.collator = DataCollatorForLanguageModeling(
            self.tokenizer, mlm_probability=s.mlm_probability, whole_word_mask=s.whole_word_mask,
            seed=s.seed, **wwm,
        )  # fmt: skip
        self.collator.create_rng()
        self.optimizer = torch.optim.AdamW(self._param_groups(), lr=s.lr)
        # Constant after warm-up: a time budget fixes no step count, and a resumed run with a
        # larger budget continues on the same schedule.
        self.scheduler = get_constant_schedule_with_warmup(self.optimizer, s.warmup_steps)
        st = {"step": 0, "epoch": 0, "pos": 0, "seconds": 0.0, "cpu_seconds": 0.0, "losses": []}
        torch.manual_seed(s.seed)  # dropout; a resumed run restores the saved state instead
        self._maybe_resume(st)
        if self.before is None:
            self.before = self._evaluate()
            log.info("held-out before training: %s", self.before)
        self.model.train()
        order, drop = self._epoch_plan(st["epoch"])
        bar = progress(total=s.steps, initial=st["step"], desc="adapt-mlm", unit="step")
        start, ema = time.monotonic() - st["seconds"], None
        cpu_start = time.process_time() - st["cpu_seconds"]
        while not self._budget_spent(st):
            if st["pos"] >= len(order):
                st["epoch"], st["pos"] = st["epoch"] + 1, 0
                order, drop = self._epoch_plan(st["epoch"])
            idx = order[st["pos"] : st["pos"] + s.batch_size]
            st["pos"] += len(idx)
            batch = {k: v.to(self.device) for k, v in self._batch(idx, drop).items()}
            select = batch["labels"] != -100
            if not select.any():
                continue
            loss = torch.nn.functional.cross_entropy(
                logits_at(self.model, batch, select), batch["labels"][select]
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            st["step"] += 1
            st["seconds"] = time.monotonic() - start
            st["cpu_seconds"] = time.process_time() - cpu_start
            value = loss.item()
            st["losses"].append(round(value, 4))
            ema = value if ema is None else 0.9 * ema + 0.1 * value
            bar.update(1)
            bar.set_postfix(loss=f"{ema:.3f}", min=f"{st['seconds'] / 60:.1f}")
            if st["step"] % s.checkpoint_every == 0:
                self.save_checkpoint(st)
        bar.close()
        self.save_checkpoint(st)
        self.state = st

    def _param_groups(self) -> list[dict]:
        """Weight decay on matrices only; the label (token type) rows learn `label_lr_scale`
        times faster, since a few minutes at the encoder's rate barely move them, and a head
        created here (its transform and output bias; the decoder is the tied input embeddings)
        learns `head_lr_scale` times faster, since it starts from noise."""
        s = self.s
        label = (
            self.model.base_model.embeddings.token_type_embeddings.weight if self.labels else None
        )
        prefix = self.model.base_model_prefix + "."
        scaled = self.head_created and s.head_lr_scale != 1.0
        named = [(n, p) for n, p in self.model.named_parameters() if p is not label]
        out = []
        for head in (False, True):
            mine = [p for n, p in named if (scaled and not n.startswith(prefix)) == head]
            lr = s.lr * (s.head_lr_scale if head else 1.0)
            for matrix, decay in ((True, s.weight_decay), (False, 0.0)):
                params = [p for p in mine if (p.ndim >= 2) == matrix]
                if params:
                    out.append({"params": params, "weight_decay": decay, "lr": lr})
        if label is not None:
            out.append({"params": [label], "weight_decay": 0.0, "lr": s.lr * s.label_lr_scale})
        return out

    def _budget_spent(self, st: dict) -> bool:
        s = self.s
        if s.steps is not None and st["step"] >= s.steps:
            return True
        return s.minutes is not None and st["seconds"] >= s.minutes * 60

    def save_checkpoint(self, st: dict) -> None:
        """Weights, optimizer, scheduler, data position and RNG states, written atomically."""
        import torch

        path = self.s.output / CHECKPOINT
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "train_fingerprint": self.train_fp,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "collator_rng": self.collator.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "before": self.before,
            "progress": st,
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    def _maybe_resume(self, st: dict) -> None:
        import torch

        path = self.s.output / CHECKPOINT
        if not self.s.resume or not path.is_file():
            return
        payload = torch.load(path, map_location=self.device, weights_only=False)
        if payload.get("train_fingerprint") != self.train_fp:
            log.warning("%s was made from other inputs or settings: starting afresh", path)
            return
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.collator.generator.set_state(payload["collator_rng"])
        torch.set_rng_state(payload["torch_rng"])
        self.before = payload["before"]
        st.update(payload["progress"])
        log.info("resumed from %s at step %d", path, st["step"])

    # ---- results --------------------------------------------------------------------------------
    def _evaluate(self, conditional: bool = True) -> dict:
        types = self._type_of(self.eval_set) if conditional else None
        return masked_token_accuracy(
            self.model, self.tokenizer, self.eval_set.texts, types, self.s.max_length,
            seed=self.s.seed, device=self.device,
        )  # fmt: skip

    def finish(self) -> dict:
        """save_pretrained + tokenizer + kdaug_mlm.json, with before/after held-out accuracy."""
        import torch
        import transformers

        from augment import __version__

        s, st = self.s, self.state
        evals = {"before": self.before, "after": self._evaluate()}
        if self.labels:
            evals["after_unconditional"] = self._evaluate(conditional=False)
        tail = st["losses"][-20:]
        record = {
            "base": s.base,
            "head_created": self.head_created,
            "corpus": s.corpus_names or [Path(p).name for p in s.corpus],
            "corpus_fingerprint": self.train_set.fingerprint(),
            "corpus_sentences": len(self.train_set),
            "eval_source": Path(s.eval_file).name if s.eval_file else f"held-out {s.heldout:.0%}",
            "steps": st["step"],
            "epochs": round(st["step"] * s.batch_size / max(1, len(self.train_set)), 3),
            "train_seconds": round(st["seconds"], 1),
            "train_cpu_seconds": round(st["cpu_seconds"], 1),
            "final_loss": round(sum(tail) / len(tail), 4) if tail else None,
            "loss_curve": st["losses"][:: max(1, len(st["losses"]) // 50)],
            "budget": {"minutes": s.minutes, "steps": s.steps},
            "hparams": s.training_dict(),
            "eval": evals,
            "label_conditional": bool(self.labels),
            "labels": self.labels,
            "conditioning": TOKEN_TYPE if self.labels else None,
            INPUTS_KEY: self.inputs_fp,
            "train_fingerprint": self.train_fp,
            "versions": {"kdaug": __version__, "torch": torch.__version__,
                         "transformers": transformers.__version__},
        }  # fmt: skip
        s.output.mkdir(parents=True, exist_ok=True)
        (s.output / RECORD_FILE).unlink(missing_ok=True)  # no marker while the files change
        self.model.save_pretrained(s.output)
        self.tokenizer.save_pretrained(s.output)
        write_marker(s.output / RECORD_FILE, self.inputs_fp, record, key=INPUTS_KEY)
        return record

    def drop_checkpoint(self) -> None:
        """Remove the training checkpoint (the finished model stays)."""
        shutil.rmtree(self.s.output / "checkpoint", ignore_errors=True)
