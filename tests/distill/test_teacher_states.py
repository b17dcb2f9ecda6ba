"""Stage 1's teacher targets stored on disk (distill.teacher_states): one teacher pass for a
stage of several epochs, the same targets within fp16 rounding, never a stale set; the fused
optimizer; and losses that padding does not change (dynamic padding changes no figure)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from distill.config import DistillConfig
from distill.models import build_student, layer_map, load_teacher
from distill.objectives import IntermediateObjective, PredictionObjective, TeacherTargets
from distill.pipeline import distill
from distill.stages import streams
from distill.teacher_states import (
    find_states,
    row_lengths,
    states_bytes,
    states_key,
    write_states,
)


def _cfg(**update: Any) -> DistillConfig:
    stage = {"batch_size": 4, "epochs": 3, "lr": 1e-3}
    cfg = DistillConfig.build(
        task="mrpc", max_length=32, checkpoint_every=100, intermediate=stage, prediction=stage
    )
    return cfg.model_copy(update=update)


def _history(out: Path) -> list[float]:
    from distill import checkpoint as ckpt

    state = torch.load(ckpt.latest(out / "checkpoints" / "intermediate") / ckpt.STATE)
    return [h["loss"] for h in state["trainer"]["history"] if "loss" in h]


def _setup(teacher_dir: Path, shards: Path) -> tuple[Any, Any, Any, TeacherTargets]:
    cfg = _cfg()
    teacher, tok = load_teacher(str(teacher_dir), cfg.spec)
    student = build_student("teacher-layers:2", teacher, tok, cfg.spec)
    g = layer_map(2, teacher.config.num_hidden_layers, "uniform")
    targets = TeacherTargets(teacher, hidden=[0, *g], attention=[x - 1 for x in g])
    stream, _ = streams(cfg, tok, str(shards), [], 4)
    return cfg, student, stream, targets


def test_stage_one_runs_the_teacher_once_over_several_epochs(
    tiny_teacher: Path, shards: Path, tmp_path: Path
) -> None:
    args = (str(tiny_teacher), "teacher-layers:2", str(shards), [])
    stored = distill(_cfg(), *args, tmp_path / "stored", stages="intermediate")
    plain = distill(_cfg(cache_teacher=False), *args, tmp_path / "plain", stages="intermediate")
    # 24 rows, batch 4, 3 epochs: 18 steps; the stored run's one forward is its pass at 128 rows
    assert plain["stages"]["intermediate"]["steps"] == 18
    assert plain["stages"]["intermediate"]["teacher_forwards"] == 18
    assert stored["stages"]["intermediate"]["teacher_forwards"] == 1
    assert (tmp_path / "stored" / "teacher_states").is_dir()
    assert not (tmp_path / "plain" / "teacher_states").exists()
    # fp16 targets: the first step's loss within their rounding; the runs then drift apart a
    # little (this student starts as a copy of the teacher's layers, so its losses are tiny
    # differences of close numbers)
    a, b = _history(tmp_path / "stored"), _history(tmp_path / "plain")
    assert len(a) == len(b) == 18
    assert a[0] == pytest.approx(b[0], rel=5e-3)
    assert a == pytest.approx(b, rel=0.05)


def test_a_set_over_the_size_limit_is_not_stored_and_the_teacher_runs_every_step(
    tiny_teacher: Path, shards: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    args = (str(tiny_teacher), "teacher-layers:2", str(shards), [])
    with caplog.at_level(logging.WARNING, logger="distill.pipeline"):
        run = distill(_cfg(cache_teacher_max_gb=1e-6), *args, tmp_path / "o", stages="intermediate")
    assert run["stages"]["intermediate"]["teacher_forwards"] == 18  # as with cache_teacher off
    assert not list((tmp_path / "o" / "teacher_states").glob("*/*"))
    assert "the teacher runs at every step instead" in caplog.text


def test_the_size_estimate_is_what_the_stored_arrays_take(
    tiny_teacher: Path, shards: Path, tmp_path: Path
) -> None:
    _, _, stream, targets = _setup(tiny_teacher, shards)
    once = type(stream)(stream.source, stream.tokenizer, 32, 5, shuffle=False)
    lengths = row_lengths(once)
    written = write_states(tmp_path, "k", targets, once, torch.device("cpu"), lengths)
    config = targets.model.config
    shapes = (
        (len(targets.hidden), config.hidden_size),
        (
            len(targets.scores.layers),
            config.num_attention_heads,
        ),
    )
    data = sum(np.load(written / f"{n}.npy", mmap_mode="r").nbytes for n in ("hidden", "scores"))
    assert states_bytes(lengths, *shapes) == data > 0


def test_stored_targets_are_the_teachers_at_real_tokens(
    tiny_teacher: Path, shards: Path, tmp_path: Path
) -> None:
    cfg, _, stream, targets = _setup(tiny_teacher, shards)
    once = type(stream)(stream.source, stream.tokenizer, 32, 5, shuffle=False)
    write_states(tmp_path, "k", targets, once, torch.device("cpu"))
    states = find_states(tmp_path, "k", stream.source)
    assert states is not None
    for batch in stream.epoch(1):  # shuffled, length-grouped: other rows side by side
        want, got = targets(batch, stored=False), states.targets(batch, torch.device("cpu"))
        mask = batch.attention_mask.bool()
        for w, g in zip(want["hidden"], got["hidden"], strict=True):
            assert g.shape == w.shape and not g[~mask].any()
            torch.testing.assert_close(g[mask], w[mask], rtol=2e-3, atol=2e-3)
        pair = mask[:, None, :, None] & mask[:, None, None, :]
        for w, g in zip(want["scores"], got["scores"], strict=True):
            assert g.shape == w.shape
            torch.testing.assert_close(
                g[pair.expand_as(g)], w[pair.expand_as(w)], rtol=2e-3, atol=2e-3
            )


def test_stale_or_broken_states_are_never_used(
    tiny_teacher: Path, shards: Path, tmp_path: Path
) -> None:
    _, _, stream, targets = _setup(tiny_teacher, shards)
    root = tmp_path / "states"
    key = states_key("fp", [0, 2, 4], [1, 3])
    write_states(root, key, targets, stream, torch.device("cpu"))
    assert find_states(root, key, stream.source) is not None
    assert find_states(root, states_key("fp", [0, 2, 4], [3]), stream.source) is None
    assert json.loads((root / key / "meta.json").read_text())["rows"] == 24

    # the data changed: one shard rewritten with other text, same rows
    part = shards / "data" / "part-00000.parquet"
    table = pq.read_table(part)
    texts = [t.upper() + " again" for t in table["text_a"].to_pylist()]
    table = table.set_column(table.schema.get_field_index("text_a"), "text_a", [texts])
    pq.write_table(table, part)
    changed = type(stream.source)(shards, stream.source.task)
    assert find_states(root, key, changed) is None

    # arrays cut short (the marker still names the old content): refused too
    write_states(root, key, targets, type(stream)(changed, stream.tokenizer, 32, 4), "cpu")
    assert find_states(root, key, changed) is not None
    hidden = root / key / "hidden.npy"
    hidden.write_bytes(hidden.read_bytes()[:-64])
    assert find_states(root, key, changed) is None


def test_a_rerun_on_changed_data_runs_the_teacher_again(
    tiny_teacher: Path, shards: Path, tmp_path: Path
) -> None:
    args = (str(tiny_teacher), "teacher-layers:2", str(shards), [])
    out = tmp_path / "run"
    assert (
        distill(_cfg(), *args, out, stages="intermediate")["stages"]["intermediate"][
            "teacher_forwards"
        ]
        == 1
    )
    part = shards / "data" / "part-00001.parquet"
    table = pq.read_table(part).slice(0, 6)  # fewer rows
    pq.write_table(table, part)
    m = distill(_cfg(), *args, out, stages="intermediate")
    assert m["stages"]["intermediate"]["teacher_forwards"] == 1
    assert len(list((out / "teacher_states").iterdir())) == 1  # the same key, rewritten
    meta = json.loads(next((out / "teacher_states").glob("*/meta.json")).read_text())
    assert meta["rows"] == 18


def test_stage_optimizer_is_the_fused_adamw(
    tiny_teacher: Path, shards: Path, tmp_path: Path
) -> None:
    from distill.runtime import Runtime
    from distill.trainer import StageTrainer

    cfg, student, stream, _ = _setup(tiny_teacher, shards)
    objective = PredictionObjective(student, cfg.weights, 1.0, False)
    rt = Runtime(torch.device("cpu"))
    trainer = StageTrainer("prediction", cfg, objective, student, None, stream, rt, tmp_path)
    assert trainer.optimizer.defaults["fused"] is True


@pytest.mark.parametrize("stage", ["intermediate", "prediction"])
def test_padding_changes_no_loss(tiny_teacher: Path, shards: Path, stage: str) -> None:
    """A batch padded to the max length and the same batch cut to its longest row (what every
    batch is) give the same losses within float tolerance."""
    cfg, student, stream, targets = _setup(tiny_teacher, shards)
    if stage == "intermediate":
        objective = IntermediateObjective(student, 32, cfg.weights, 2)
    else:
        objective = PredictionObjective(student, cfg.weights, 1.0, False)
        targets = TeacherTargets(targets.model)
    batch = next(iter(stream.epoch(0)))
    pad = 32 - batch.input_ids.shape[1]
    assert pad > 0
    padded = type(batch)(
        *(torch.nn.functional.pad(t, (0, pad)) for t in (batch.inputs().values())),
        batch.labels,
        None,
        batch.rows,
    )
    with torch.no_grad():
        cut = objective(batch, targets(batch))
        full = objective(padded, targets(padded))
    assert cut.keys() == full.keys()
    for k in cut:
        torch.testing.assert_close(cut[k], full[k], rtol=1e-4, atol=1e-5)
