"""`kdaug export` (shards -> a TSV the TinyBERT scripts read) and `kdaug inspect` (summary).

Both read a build through its manifest.json and refuse, in one line, a manifest or shard that is
damaged. Export checks every shard against the manifest's sha256 and row count before it writes
anything, never writes inside the build directory (nor over the build's input), and writes the
TSV atomically.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from augment.errors import KdaugError

SHARD_COLUMNS = ("id", "variant", "text_a", "text_b", "label")
REBUILD = "re-run the `kdaug augment` command that built it"


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a built output as one TSV (TinyBERT train_aug.tsv)",
        description="Check every shard against manifest.json, then write them in order as one "
        "TSV file (atomically). OUTPUT must be a file outside OUTDIR.",
    )
    p.add_argument("outdir", help="output directory of `kdaug augment`")
    p.add_argument("--format", choices=["tsv"], default="tsv")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="file to write, e.g. train_aug.tsv (outside OUTDIR; an existing file is replaced)",
    )
    p.add_argument(
        "--task",
        default=None,
        help="GLUE layout (sst2, mnli, ...; default: the build's --task; 'none': the generic "
        "id, variant, text_a[, text_b], label layout)",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("inspect", help="print a built output's summary and sampled variants")
    p.add_argument("outdir")
    p.add_argument("--samples", type=int, default=5, help="variants to show (default 5)")
    p.add_argument("--seed", type=int, default=0, help="which variants to sample")
    p.set_defaults(func=cmd_inspect)


# --- manifest.json ------------------------------------------------------------------------------


class _Entry(BaseModel):
    """The parts of a shard entry that export and inspect use (the builder writes more)."""

    model_config = ConfigDict(extra="allow", strict=True)

    index: int = Field(ge=0)
    file: str
    sha256: str
    rows_in: int = Field(ge=0)
    records: int = Field(ge=0)
    rows_rejected: int = Field(ge=0)
    variants: int = Field(ge=0)


class _Columns(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    text_b: str | None


class _Fingerprint(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    format: str
    columns: _Columns
    shard_size: int
    config: dict[str, Any]


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    format: str
    fingerprint: _Fingerprint
    shards: dict[str, _Entry]
    num_shards: int | None = Field(ge=0)
    complete: bool
    input: dict[str, Any] | None = None


def load_manifest(outdir: str | Path) -> dict[str, Any]:
    """The manifest of a build, or a one-line KdaugError when it is missing or damaged (not
    UTF-8, not JSON, truncated, or without the fields a build records)."""
    out = Path(outdir)
    if not out.is_dir():
        what = "does not exist" if not out.exists() else "is not a directory"
        raise KdaugError(f"{outdir} {what}: give the output directory of `kdaug augment`")
    path = out / "manifest.json"
    if not path.is_file():
        raise KdaugError(f"{outdir} has no manifest.json: is it the output of `kdaug augment`?")

    def damaged(why: str) -> KdaugError:
        return KdaugError(
            f"{path} is damaged ({why}): delete {outdir} (or move it away) and build it again "
            "with `kdaug augment`"
        )

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KdaugError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not raw.strip():
        raise damaged("empty")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise damaged(f"byte 0x{raw[exc.start]:02x} at offset {exc.start} is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise damaged(
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise damaged("nested too deeply") from None
    if not isinstance(manifest, dict):
        raise damaged(f"a JSON {type(manifest).__name__}, not an object")
    try:
        checked = _Manifest.model_validate(manifest)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise damaged(f"{where}: {err['msg']}") from None
    from augment.builder import LAYOUT_FORMAT

    if checked.format != LAYOUT_FORMAT:
        raise KdaugError(
            f"{path} has format {checked.format!r}; this kdaug reads {LAYOUT_FORMAT!r}"
        )
    return manifest


# --- shards -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    """One shard file as export verified it: where it is, what the manifest says, its identity."""

    name: str
    path: Path
    rows: int
    identity: tuple[int, int, int, int]  # (device, inode, size, mtime_ns) when it was verified


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def verified_shards(outdir: str | Path, manifest: dict[str, Any]) -> list[Shard]:
    """The shards of a complete build (the caller checks that) in order, each checked against
    the manifest: every shard 0..num_shards-1 recorded, its file inside `outdir` and present, its
    sha256 and its Parquet row count equal to the recorded ones. Anything else is a one-line
    KdaugError naming the shard."""
    out = Path(outdir)
    root = out.resolve()
    shards: dict[str, dict[str, Any]] = manifest["shards"]
    count = manifest.get("num_shards")
    count = len(shards) if count is None else count
    names = [f"part-{i:05d}" for i in range(count)]
    unexpected = sorted(set(shards) - set(names))
    if unexpected:
        raise KdaugError(
            f"{out} is damaged: manifest.json lists shard {unexpected[0]} beyond its {count} "
            f"shards; {REBUILD}"
        )
    result = []
    for name in names:
        if name not in shards:
            raise KdaugError(
                f"{out} is damaged: shard {name} is missing from manifest.json; {REBUILD}"
            )
        entry = shards[name]
        path = out / entry["file"]
        if not path.resolve().is_relative_to(root):
            raise KdaugError(f"{out}: shard {name} points outside the build ({entry['file']})")
        if not path.is_file():
            raise KdaugError(
                f"{out} is damaged: shard {name} ({entry['file']}) is missing; {REBUILD}"
            )
        st = _check_contents(out, name, entry, path)
        result.append(Shard(name, path, entry["variants"], _identity(st)))
    return result


def _check_contents(out: Path, name: str, entry: dict[str, Any], path: Path) -> os.stat_result:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def damaged(why: str) -> KdaugError:
        return KdaugError(f"{out} is damaged: shard {name} ({entry['file']}) {why}; {REBUILD}")

    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise damaged(f"cannot be read ({exc.strerror or exc})") from None
    if digest.hexdigest() != entry["sha256"]:
        raise damaged("does not match its sha256 in manifest.json (changed or replaced)")
    try:
        meta = pq.read_metadata(path)
        names = set(meta.schema.to_arrow_schema().names)
    except (pa.ArrowException, OSError) as exc:
        raise damaged(f"is not a readable Parquet file ({_first_line(exc)})") from None
    missing = [c for c in SHARD_COLUMNS if c not in names]
    if missing:
        raise damaged(f"lacks the columns {missing}")
    if meta.num_rows != entry["variants"]:
        raise damaged(f"holds {meta.num_rows} rows, manifest.json records {entry['variants']}")
    return st


def _shard_rows(shard: Shard, out: Path) -> Iterator[list[dict[str, Any]]]:
    """Batches of rows of a verified shard, refusing a file that changed since it was verified
    (the open file is checked, so a rename over it cannot slip in between)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with open(shard.path, "rb") as f:
            if _identity(os.fstat(f.fileno())) != shard.identity:
                raise KdaugError(f"{out}: shard {shard.name} changed during the export; try again")
            for batch in pq.ParquetFile(f).iter_batches(
                batch_size=8192, columns=list(SHARD_COLUMNS)
            ):
                yield batch.to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise KdaugError(
            f"{out}: cannot read shard {shard.name} ({_first_line(exc)}); {REBUILD}"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


# --- export -------------------------------------------------------------------------------------


def export_target(output: str, outdir: str | Path, manifest: dict[str, Any]) -> Path:
    """The file `-o` names, refused (one line) if it is a directory or not a regular file, lies
    inside the build directory, or is the build's input."""
    target = Path(output)
    if target.is_dir():
        raise KdaugError(
            f"-o {output} is a directory: give the file to write, e.g. {target / 'train_aug.tsv'}"
        )
    if target.exists() and not target.is_file():
        raise KdaugError(f"-o {output} exists and is not a regular file")
    resolved = target.resolve()
    if resolved.is_relative_to(Path(outdir).resolve()):
        raise KdaugError(
            f"-o {output} is inside the build directory {outdir}: export writes outside it "
            "(the build holds only what `kdaug augment` wrote)"
        )
    source = (manifest.get("input") or {}).get("path")
    if isinstance(source, str) and source:
        same = Path(source).resolve() == resolved
        with contextlib.suppress(OSError):
            same = same or (target.exists() and os.path.samefile(source, target))
        if same:
            raise KdaugError(f"-o {output} is the build's input file: choose another name")
    return target


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """SIGTERM raises SystemExit while exporting, so the temporary file is removed on a kill."""

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_export(args: argparse.Namespace) -> int:
    from augment.io.writers import TsvExportWriter, tsv_layout

    out = Path(args.outdir)
    manifest = load_manifest(out)
    if not manifest.get("complete"):
        raise KdaugError(f"{out} is not complete: re-run its `kdaug augment` command first")
    target = export_target(args.output, out, manifest)
    if args.task and args.task.lower() == "none":
        task = None
    else:
        task = args.task or (manifest.get("input") or {}).get("task")
    pair = manifest["fingerprint"]["columns"]["text_b"] is not None
    try:
        tsv_layout(task, pair)
    except ValueError as exc:
        raise KdaugError(str(exc)) from None
    shards = verified_shards(out, manifest)
    expected = sum(s.rows for s in shards)
    with _terminate_as_exit():
        try:
            with TsvExportWriter(target, task, pair) as writer:
                for shard in shards:
                    for rows in _shard_rows(shard, out):
                        writer.write(rows)
                if writer.rows != expected:
                    raise KdaugError(
                        f"{out}: read {writer.rows} rows from the shards, manifest.json records "
                        f"{expected}; {REBUILD}"
                    )
                writer.close()
        except OSError as exc:
            raise KdaugError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    layout = f"GLUE {task} layout" if task else "generic layout"
    print(
        f"kdaug export: {writer.rows} rows -> {args.output} ({layout}); {writer.changed_rows} "
        "rows had tabs or line breaks inside a field, written as spaces"
    )
    return 0


# --- inspect ------------------------------------------------------------------------------------


def cmd_inspect(args: argparse.Namespace) -> int:
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    from augment.cli_augment import highlight
    from augment.records import Replacement

    out = Path(args.outdir)
    m = load_manifest(out)
    shards = m["shards"]
    total = lambda key: sum(e[key] for e in shards.values())  # noqa: E731
    inp, cfg = m.get("input") or {}, m["fingerprint"]["config"]
    state = "complete" if m.get("complete") else "incomplete (re-run to resume)"
    print(f"{args.outdir}: {state}; {len(shards)} shards of {m['fingerprint']['shard_size']} rows")
    print(f"  input     {inp.get('path')} ({m['fingerprint']['format']}), sha256 {_short(inp)}")
    print(
        f"  rows      {total('rows_in')} in = {total('records')} records + "
        f"{total('rows_rejected')} rejected; {total('variants')} variants out"
    )
    keys = ("n", "p", "seed", "mlm", "vectors", "pos_filter", "sources")
    print("  config    " + " ".join(f"{k}={cfg.get(k, '?')}" for k in keys))
    print(f"  versions  {m.get('versions')}")
    missing = [name for name, e in sorted(shards.items()) if not (out / e["file"]).is_file()]
    if missing:
        raise KdaugError(
            f"{out} is damaged: {len(missing)} of {len(shards)} shard files are missing "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); {REBUILD}"
        )
    if not shards or args.samples <= 0:
        return 0
    rng = random.Random(args.seed)
    name = rng.choice(sorted(shards))
    entry = shards[name]
    try:
        pf = pq.ParquetFile(out / entry["file"])
        if pf.metadata.num_rows == 0:
            return 0
        rows = pf.read_row_group(rng.randrange(pf.num_row_groups)).to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise KdaugError(
            f"{out} is damaged: cannot read shard {name} ({entry['file']}: {_first_line(exc)}); "
            f"{REBUILD}"
        ) from None
    changed = [r for r in rows if r["variant"] > 0] or rows
    print(f"  samples from {entry['file']}:")
    for r in rng.sample(changed, min(args.samples, len(changed))):
        reps = [Replacement(**x) for x in r["replacements"]]
        line = highlight(r["text_a"], reps, "a", False)
        if r["text_b"] is not None:
            line += "  ||  " + highlight(r["text_b"], reps, "b", False)
        print(f"    {r['id']}#{r['variant']} [{r['label']}] {line}")
    return 0


def _short(inp: dict[str, Any]) -> str:
    sha = inp.get("sha256") or inp.get("hub_fingerprint") or "?"
    return str(sha)[:16]
