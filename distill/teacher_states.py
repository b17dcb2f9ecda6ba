"""Stage 1's teacher targets on disk, so that a stage passing over its data several times runs
the teacher once: the hidden states of the mapped layers and their pre-softmax attention scores,
fp16, per training row (TinyBERT's official code reruns the teacher every epoch).

Layout: RUN/teacher_states/<key>/hidden.npy (fp16 [tokens, hidden layers, width]: each row's real
tokens, row after row), scores.npy (fp16 [sum of length², attention layers, heads]), index.npy
(int64 [rows, 3]: first token, length, first score of each row, rows in file order) and
meta.json, the completion marker, removed first and written last. The key is the teacher's
fingerprint (every file of it and the max length) with the layers; meta.json also records the
content the targets came from (each file's rows and sha256) and is checked on every read, so
targets of another teacher, other layers or changed data are never used."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill.data import Batch, BatchStream, ExampleSource
from distill.logits_cache import source_content
from kdaug.files import atomic_path, read_marker, write_marker

log = logging.getLogger(__name__)
CACHE_DIR = "teacher_states"
META = "meta.json"
ARRAYS = ("index", "hidden", "scores")


def states_key(fingerprint: str, hidden: list[int], attention: list[int]) -> str:
    """The cache key of a teacher (`teacher_fingerprint`) and the layers whose targets it holds."""
    text = f"{fingerprint}\nhidden={hidden}\nattention={attention}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _settings(key: str, source: ExampleSource) -> dict[str, Any]:
    return {"key": key, "files": source_content(source)}


class TeacherStates:
    """Memory-mapped targets of a source's rows, looked up by the (file, row) keys of a batch and
    padded to the batch's length (padded positions are zero; every loss masks them)."""

    def __init__(self, directory: Path, rows_per_file: list[int]) -> None:
        self.directory = directory
        self.index, self.hidden, self.scores = (
            np.load(directory / f"{name}.npy", mmap_mode="r") for name in ARRAYS
        )
        self.first = np.cumsum([0, *rows_per_file])[:-1]

    def targets(self, batch: Batch, device: torch.device) -> dict[str, Any]:
        """{'hidden': [layer][B, L, width], 'scores': [layer][B, heads, L, L]} as float32."""
        keys = batch.rows.cpu().numpy()
        rows = self.first[keys[:, 0]] + keys[:, 1]
        b, length = len(rows), batch.input_ids.shape[1]
        _, n_hidden, width = self.hidden.shape
        _, n_scores, heads = self.scores.shape
        hidden = np.zeros((b, length, n_hidden, width), np.float16)
        scores = np.zeros((b, length, length, n_scores, heads), np.float16)
        for j, (tok, n, sc) in enumerate(self.index[rows]):
            hidden[j, :n] = self.hidden[tok : tok + n]
            scores[j, :n, :n] = self.scores[sc : sc + n * n].reshape(n, n, n_scores, heads)
        h = torch.from_numpy(hidden).to(device).float()
        s = torch.from_numpy(scores).to(device).float()
        return {
            "hidden": [h[:, :, i] for i in range(n_hidden)],
            "scores": [s[..., i, :].permute(0, 3, 1, 2) for i in range(n_scores)],
        }


def find_states(root: Path, key: str, source: ExampleSource) -> TeacherStates | None:
    """The stored targets of `key` for the source's current content, or None (absent, stale,
    or arrays that do not fit their index)."""
    directory = root / key
    if read_marker(directory / META, _settings(key, source)) is None:
        return None
    try:
        states = TeacherStates(directory, [source.count_rows(f) for f in source.files])
    except (OSError, ValueError) as exc:
        log.info("teacher states in %s unreadable (%s): not used", directory, exc)
        return None
    index = states.index
    fits = index.ndim == 2 and len(index) == len(source) and len(index) > 0
    if fits:
        tokens, scores = index[-1, 0] + index[-1, 1], index[-1, 2] + index[-1, 1] ** 2
        fits = tokens == len(states.hidden) and scores == len(states.scores)
    if not fits:
        log.info("teacher states in %s do not fit their index: not used", directory)
        return None
    return states


def row_lengths(stream: BatchStream) -> np.ndarray:
    """Every row's length in tokens, in file order (`stream` unshuffled; tokenised only)."""
    first = np.cumsum([0, *[stream.source.count_rows(f) for f in stream.source.files]])
    lengths = np.zeros(first[-1], np.int64)
    for batch in stream.epoch(0):
        keys = batch.rows.numpy()
        lengths[first[keys[:, 0]] + keys[:, 1]] = batch.attention_mask.sum(1).numpy()
    return lengths


def states_bytes(lengths: np.ndarray, hidden: tuple[int, int], scores: tuple[int, int]) -> int:
    """What the stored targets of rows of `lengths` take on disk: fp16 hidden states of
    `hidden` = (layers, width) per token and attention scores of `scores` = (layers, heads) per
    pair of tokens."""
    tokens, pairs = int(lengths.sum()), int((lengths**2).sum())
    return 2 * (tokens * hidden[0] * hidden[1] + pairs * scores[0] * scores[1])


@torch.no_grad()
def write_states(
    root: Path,
    key: str,
    targets: Any,
    stream: BatchStream,
    device: Any,
    lengths: np.ndarray | None = None,
) -> Path:
    """Run the teacher (`targets`, a TeacherTargets) over every row of `stream` (unshuffled) once
    and store its stage-1 targets under root/key, keyed on the content read before the run;
    `lengths` are the rows' (`row_lengths`, computed here if not given)."""
    source = stream.source
    directory = root / key
    directory.mkdir(parents=True, exist_ok=True)
    (directory / META).unlink(missing_ok=True)
    settings = _settings(key, source)
    first = np.cumsum([0, *[c["rows"] for c in settings["files"].values()]])
    lengths = row_lengths(stream) if lengths is None else lengths
    assert len(lengths) == first[-1], "lengths of another source"
    index = np.zeros((len(lengths), 3), np.int64)
    index[:, 1] = lengths
    index[1:, 0] = np.cumsum(lengths)[:-1]
    index[1:, 2] = np.cumsum(lengths**2)[:-1]
    out: dict[str, np.ndarray] = {}
    with (
        atomic_path(directory / "hidden.npy") as h_tmp,
        atomic_path(directory / "scores.npy") as s_tmp,
    ):
        for batch in stream.epoch(0):
            t = targets(batch.to(device), stored=False)
            hidden = torch.stack(t["hidden"], 2).half().cpu().numpy()  # [B, L, layers, width]
            scores = torch.stack(t["scores"], 1).permute(0, 3, 4, 1, 2)  # [B, L, L, layers, heads]
            scores = scores.half().cpu().numpy()
            if not out:
                out["hidden"] = np.lib.format.open_memmap(
                    h_tmp, "w+", np.float16, (int(lengths.sum()), *hidden.shape[2:])
                )
                out["scores"] = np.lib.format.open_memmap(
                    s_tmp, "w+", np.float16, (int((lengths**2).sum()), *scores.shape[3:])
                )
            keys = batch.rows.numpy()
            rows = first[keys[:, 0]] + keys[:, 1]
            for j, r in enumerate(rows):
                tok, n, sc = index[r]
                out["hidden"][tok : tok + n] = hidden[j, :n]
                out["scores"][sc : sc + n * n] = scores[j, :n, :n].reshape(n * n, *scores.shape[3:])
        for array in out.values():
            array.flush()
        del out
    with atomic_path(directory / "index.npy") as tmp, tmp.open("wb") as fh:
        np.save(fh, index)
    write_marker(directory / META, settings, {"rows": len(index)})
    return directory
