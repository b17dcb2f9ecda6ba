"""Training runs on tiny models: both stages learn, resume is exact, the logits cache changes
nothing but skips the teacher, and 2 gloo processes match 1 process."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import torch

from distill import checkpoint as ckpt
from distill.config import DistillConfig
from distill.pipeline import cache_teacher_logits, distill, finetune_teacher


def _cfg(**stage: Any) -> DistillConfig:
    stages = {"batch_size": 4, "epochs": 2, **stage}
    return DistillConfig.build(
        task="mrpc",
        max_length=32,
        checkpoint_every=4,
        finetune={**stages, "lr": 2e-3},
        intermediate={**stages, "lr": 1e-3},
        prediction={**stages, "lr": 1e-3},
    )


@pytest.fixture(scope="module")
def teacher(
    tmp_path_factory: pytest.TempPathFactory, make_classifier: Any, write_shards: Any, pairs: list
) -> Path:
    """A tiny teacher fine-tuned on the shards, so that its logits carry signal."""
    root = tmp_path_factory.mktemp("ft")
    base = make_classifier(root / "base", layers=4)
    data = write_shards(root / "aug", pairs)
    cfg = _cfg(epochs=4)
    metrics = finetune_teacher(cfg, str(base), str(data), [], root / "teacher")
    assert metrics["stages"]["finetune"]["steps"] == 24
    return root / "teacher"


def _final_weights(out: Path, stage: str) -> dict[str, torch.Tensor]:
    return torch.load(ckpt.latest(out / "checkpoints" / stage) / ckpt.STATE)["model"]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 0.0) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=atol, rtol=0) for k in a)


def test_both_stages_learn(teacher: Path, shards: Path, mrpc_dev: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    m = distill(_cfg(epochs=3), str(teacher), "teacher-layers:2", str(shards), [str(mrpc_dev)], out)
    hist = json.loads((out / "metrics.json").read_text())
    assert hist["layer_map"] == [2, 4] and set(hist["stages"]) == {"intermediate", "prediction"}
    assert m["parameters"]["student"] < m["parameters"]["teacher"]
    assert set(m["student_dev"]["dev"]) == {"accuracy", "f1"} and m["inference"]["speedup"] > 0
    assert (out / "curves.png").stat().st_size > 0
    from transformers import AutoModelForSequenceClassification

    best = AutoModelForSequenceClassification.from_pretrained(out / "best")
    assert best.config.num_hidden_layers == 2 and best.config.id2label[1] == "equivalent"
    for stage in ("intermediate", "prediction"):
        state = torch.load(ckpt.latest(out / "checkpoints" / stage) / ckpt.STATE)
        losses = [h["loss"] for h in state["trainer"]["history"] if "loss" in h]
        assert sum(losses[-3:]) < sum(losses[:3]), (stage, losses)


def test_resume_continues_exactly(
    teacher: Path,
    shards: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_classifier: Any,
) -> None:
    # a student with dropout, so the restored RNG matters
    student = make_classifier(tmp_path / "student", layers=2, seed=3)
    cfgj = json.loads((student / "config.json").read_text())
    cfgj.update(hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2)
    (student / "config.json").write_text(json.dumps(cfgj))
    cfg = _cfg(epochs=2, max_steps=9)
    args = (str(teacher), str(student), str(shards), [])
    distill(cfg, *args, tmp_path / "whole")

    from distill.trainer import StageTrainer

    real = StageTrainer._record

    def crash(self: StageTrainer, *a: Any) -> None:
        real(self, *a)
        if self.name == "prediction" and self.state.step == 7:
            raise KeyboardInterrupt

    monkeypatch.setattr(StageTrainer, "_record", crash)
    with pytest.raises(KeyboardInterrupt):
        distill(cfg, *args, tmp_path / "cut")
    monkeypatch.setattr(StageTrainer, "_record", real)
    distill(cfg, *args, tmp_path / "cut", resume=True)
    for stage in ("intermediate", "prediction"):
        assert _same(
            _final_weights(tmp_path / "whole", stage), _final_weights(tmp_path / "cut", stage)
        )


def test_logits_cache_skips_teacher_and_changes_nothing(
    teacher: Path, shards: Path, tmp_path: Path
) -> None:
    cfg = _cfg(max_steps=5)
    args = (str(teacher), "teacher-layers:2", str(shards), [])
    plain = distill(cfg, *args, tmp_path / "plain", stages="prediction")
    cache = cache_teacher_logits(cfg, str(shards), str(teacher), batch_size=7)
    assert cache.parent.name == "teacher_logits" and (cache / "part-00000.npy").is_file()
    cached = distill(cfg, *args, tmp_path / "cached", stages="prediction")
    assert plain["stages"]["prediction"]["teacher_forwards"] == 5
    assert cached["stages"]["prediction"]["teacher_forwards"] == 0
    a = _final_weights(tmp_path / "plain", "prediction")
    assert _same(a, _final_weights(tmp_path / "cached", "prediction"), atol=1e-5)
    other = _cfg(max_steps=5).model_copy(update={"max_length": 16})  # another fingerprint
    again = distill(other, *args, tmp_path / "other", stages="prediction")
    assert again["stages"]["prediction"]["teacher_forwards"] == 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, args: tuple, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    distill(_cfg(max_steps=4), *args, Path(out))


def test_two_gloo_processes_and_accumulation_match_one(
    teacher: Path, shards: Path, tmp_path: Path
) -> None:
    import torch.multiprocessing as mp

    args = (str(teacher), "teacher-layers:2", str(shards), [])
    distill(_cfg(max_steps=4), *args, tmp_path / "one")
    mp.start_processes(
        _worker,
        args=(2, _free_port(), args, str(tmp_path / "two")),
        nprocs=2,
        join=True,
        start_method="fork",
    )
    distill(_cfg(max_steps=4, grad_accum=2), *args, tmp_path / "accum")
    for stage in ("intermediate", "prediction"):
        one = _final_weights(tmp_path / "one", stage)
        assert _same(one, _final_weights(tmp_path / "two", stage), atol=1e-5), stage
        assert _same(one, _final_weights(tmp_path / "accum", stage), atol=1e-5), stage
    assert json.loads((tmp_path / "two" / "metrics.json").read_text())["world_size"] == 2


def test_finetune_metrics_describe_the_best_model(
    tmp_path: Path, make_classifier: Any, write_shards: Any, pairs: list, mrpc_dev: Path
) -> None:
    from distill.pipeline import evaluate_model

    base = make_classifier(tmp_path / "base", layers=2)
    data = write_shards(tmp_path / "aug", pairs)
    cfg = _cfg(epochs=3).model_copy(update={"eval_every": 3})
    m = finetune_teacher(cfg, str(base), str(data), [str(mrpc_dev)], tmp_path / "t")
    history = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert history["dev"] == m["dev"] and "last_dev" in m
    state = torch.load(ckpt.latest(tmp_path / "t" / "checkpoints" / "finetune") / ckpt.STATE)
    evals = [h["dev"] for h in state["trainer"]["history"] if "dev" in h]
    assert len(evals) > 1
    best = max(evals, key=lambda d: d["dev"]["f1"])  # first of the best, as the trainer keeps
    assert m["dev"] == best and m["last_dev"] == evals[-1]
    again = evaluate_model(cfg, str(tmp_path / "t" / "best"), [str(mrpc_dev)])
    assert {k: again[k] for k in m["dev"]} == m["dev"]
