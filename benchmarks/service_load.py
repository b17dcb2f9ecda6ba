"""Load test of `kdaug serve` on loopback: micro-batching on vs off, in the same run.

Starts two servers (batching on and off) with the same models and the service's defaults (mode,
torch threads) unless told otherwise, then for each concurrency level sends the same
one-sentence requests to each (interleaved, so background load hits both alike) and prints
throughput and p50 / p99 latency as a markdown table, with the on/off ratio and the p99 at 16
clients against the latency target (250 ms).

Every level sends the same sentences, so the servers run with the masked-LM cache off
(`mlm_cache_size: 0`): each request costs what a new text costs, and a later level is not
answered from what an earlier one computed. `--warm-cache` keeps the service's cache (20,000
masked copies), which measures clients that repeat their texts.

    python -m benchmarks.service_load --mlm PATH --requests 2000 --concurrency 1 16 64
    python -m benchmarks.service_load --mode fast --torch-threads 2

`--attack` measures something else: one client sends 64 texts of 2,000 characters at `--n` (the
costly request of issue 23), first to a server with the service's budget (which refuses it),
then to one whose budget admits it; while that runs, another client sends one-sentence
requests one after another and the latency of each is reported.

    python -m benchmarks.service_load --attack --n 5 --probes 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.paths import REPO, shared_assets
from kdaug.files import write_text_atomic
from kdaug.machine import available_cores

FALLBACK_SENTENCES = [
    "the film is a charming and often affecting journey",
    "a gripping story told with real warmth and wit",
    "the plot drags and the jokes fall flat",
    "an ambitious but uneven drama about a small town",
    "the actors give quiet, careful performances",
    "it is a dull movie that never finds its voice",
    "a funny and surprisingly tender look at family life",
    "the music carries scenes that the script cannot",
]


def assets_dir() -> Path | None:
    path = shared_assets()
    return path if path.is_dir() else None


def load_sentences(path: Path | None) -> list[str]:
    """One sentence per request: the SST-2 dev sentences when given, else a built-in few."""
    if path is None or not path.is_file():
        return FALLBACK_SENTENCES
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [row["sentence"] for row in rows if row.get("sentence")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    args: argparse.Namespace, batching: bool, **env_settings: str
) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "kdaug.cli", "serve", "--port", str(port), "--mlm", args.mlm]
    cmd += ["--device", args.device]
    if args.torch_threads:
        cmd += ["--torch-threads", str(args.torch_threads)]
    if args.mode:
        cmd += ["--mode", args.mode]
    if not batching:
        cmd.append("--no-micro-batching")
    if args.cold_config:
        cmd += ["--config", str(args.cold_config)]
    env = {**os.environ, "KDAUG_LOG_LEVEL": "warning", "KDAUG_QUEUE_MAX": "1024"}
    env.update({f"KDAUG_{k.upper()}": v for k, v in env_settings.items()})
    proc = subprocess.Popen(cmd, env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("server did not become ready in 300 s")


def served_with(url: str) -> dict:
    """How the server runs its model (mode, torch threads), from /readyz."""
    ready = httpx.get(f"{url}/readyz", timeout=10).json()
    return {k: ready.get(k) for k in ("mode", "torch_threads")}


def batch_stats(url: str) -> tuple[float, float]:
    """(batches run, records in them) so far, from /metrics."""
    values = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for s in family.samples:
            values[s.name] = s.value
    return values.get("kdaug_batches_total", 0.0), values.get("kdaug_batch_records_sum", 0.0)


async def load(url: str, sentences: list[str], total: int, concurrency: int, n: int) -> dict:
    """`total` requests from `concurrency` clients; per-request latency and status."""
    latencies: list[float] = []
    errors = 0
    next_index = 0

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal next_index, errors
        while next_index < total:
            i = next_index
            next_index += 1
            body = {"texts": [sentences[i % len(sentences)]], "n": n, "seed": i}
            start = time.perf_counter()
            r = await client.post("/augment", json=body)
            latencies.append(time.perf_counter() - start)
            errors += r.status_code != 200

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "requests": total,
        "errors": errors,
        "seconds": round(wall, 2),
        "throughput_rps": round(total / wall, 2),
        "p50_ms": round(q[49] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
    }


def run_level(url: str, args, sentences: list[str], concurrency: int) -> dict:
    before = batch_stats(url)
    result = asyncio.run(load(url, sentences, args.requests, concurrency, args.n))
    after = batch_stats(url)
    batches = after[0] - before[0]
    result["batches"] = int(batches)
    result["records_per_batch"] = round((after[1] - before[1]) / batches, 2) if batches else 0.0
    return result


def against_target(p99_ms: float, target_ms: float) -> str:
    """`met` or how many times over the target a p99 is."""
    return "met" if p99_ms <= target_ms else f"{p99_ms / target_ms:.1f}x over"


def table(results: list[dict], target_ms: float) -> str:
    head = "| micro-batching | concurrency | requests | throughput (req/s) | p50 (ms) | p99 (ms) "
    head += f"| p99 vs {target_ms:g} ms | records / batch | errors |\n"
    head += "|---|---|---|---|---|---|---|---|---|\n"
    rows = [
        f"| {r['batching']} | {r['concurrency']} | {r['requests']} | {r['throughput_rps']} "
        f"| {r['p50_ms']} | {r['p99_ms']} | {against_target(r['p99_ms'], target_ms)} "
        f"| {r['records_per_batch']} | {r['errors']} |"
        for r in results
    ]
    return head + "\n".join(rows)


def long_texts(sentences: list[str], count: int, chars: int) -> list[str]:
    """`count` different texts of `chars` characters, each sentences run together."""
    out, i = [], 0
    for _ in range(count):
        text = ""
        while len(text) < chars:
            text += sentences[i % len(sentences)] + " "
            i += 1
        out.append(text[:chars].strip())
    return out


def queue_depth(url: str) -> float:
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for s in family.samples:
            if s.name == "kdaug_queue_depth":
                return s.value
    return 0.0


def probe(url: str, sentences: list[str], args, attack_done: dict | None, offset: int = 0) -> list:
    """One-sentence requests one after another: latency, status, whether the attack ran
    (`attack_done` stays empty until it has ended; None: no attack)."""
    probes = []
    with httpx.Client(base_url=url, timeout=600) as client:
        for i in range(offset, offset + args.probes):
            t0 = time.perf_counter()
            r = client.post("/augment", json={"texts": [sentences[i]], "n": args.n})
            ms = round((time.perf_counter() - t0) * 1000, 1)
            during = attack_done is not None and not attack_done
            probes.append({"ms": ms, "status": r.status_code, "during_attack": during})
    return probes


def attack(args: argparse.Namespace, sentences: list[str]) -> dict:
    """One client's costly request, and the latency of one-sentence requests meanwhile."""
    body = {"texts": long_texts(sentences, args.attack_texts, args.attack_chars), "n": args.n}
    out: dict = {"attack": {"texts": args.attack_texts, "chars": args.attack_chars, "n": args.n}}
    proc, url = start_server(args, True)
    try:
        start = time.perf_counter()
        r = httpx.post(f"{url}/augment", json=body, timeout=600)
        out["default_budget"] = {
            "status": r.status_code,
            "seconds": round(time.perf_counter() - start, 3),
            "detail": r.json().get("detail") if r.status_code != 200 else None,
        }
        print(f"with the service's budget: {out['default_budget']}", flush=True)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    proc, url = start_server(args, True, max_request_work=str(10**12))
    try:
        alone = probe(url, sentences, args, None)  # the same requests with no attack running
        print(f"one-sentence requests alone (ms): {[p['ms'] for p in alone]}", flush=True)
        done: dict = {}

        def send() -> None:
            t0 = time.perf_counter()
            r = httpx.post(f"{url}/augment", json=body, timeout=600)
            done.update(status=r.status_code, seconds=round(time.perf_counter() - t0, 2))

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        while queue_depth(url) < 1:  # admitted: its first batch is at the model
            time.sleep(0.05)
        time.sleep(0.5)
        probes = probe(url, sentences, args, done, offset=args.probes)
        sender.join(timeout=600)
        during = [p["ms"] for p in probes if p["during_attack"] and p["status"] == 200]
        base = [p["ms"] for p in alone if p["status"] == 200]
        out["admitted"] = {
            "attack": done,
            "alone": alone,
            "alone_p50_ms": round(statistics.median(base), 1) if base else None,
            "alone_max_ms": max(base) if base else None,
            "probes": probes,
            "during_attack": len(during),
            "p50_ms": round(statistics.median(during), 1) if during else None,
            "max_ms": max(during) if during else None,
        }
        print(f"one-sentence requests: {json.dumps(out['admitted'])}", flush=True)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    return out


def main() -> int:
    assets = assets_dir()
    default_mlm = str(assets / "mlm-minilm-adapted") if assets else "default"
    default_data = assets / "glue" / "SST-2" / "dev.tsv" if assets else None
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mlm", default=default_mlm, help="masked-LM path or name")
    p.add_argument("--data", type=Path, default=default_data, help="SST-2 style tsv of sentences")
    p.add_argument("--requests", type=int, default=2000, help="requests per level and mode")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    p.add_argument("--n", type=int, default=4, help="variants per request")
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--mode", choices=["exact", "fast"], help="augmenter mode (default: the service's)"
    )
    p.add_argument(
        "--torch-threads", type=int, help="torch threads per server (default: the service's)"
    )
    p.add_argument("--p99-target-ms", type=float, default=250.0, help="latency target of p99")
    p.add_argument("--target-concurrency", type=int, default=16, help="clients the target is for")
    p.add_argument(
        "--warm-cache",
        action="store_true",
        help="keep the service's masked-LM cache (default: off, every request as if new)",
    )
    p.add_argument("--attack", action="store_true", help="the costly-request test (see above)")
    p.add_argument("--attack-texts", type=int, default=64, help="texts of the costly request")
    p.add_argument("--attack-chars", type=int, default=2000, help="characters of each")
    p.add_argument("--probes", type=int, default=10, help="one-sentence requests meanwhile")
    p.add_argument("--out", type=Path, default=REPO / "bench-out" / "service_load.json")
    args = p.parse_args()
    args.cold_config = None
    if not args.warm_cache:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.cold_config = args.out.resolve().with_name(args.out.stem + "-cold.yaml")
        write_text_atomic(args.cold_config, "mlm_cache_size: 0\n")

    sentences = load_sentences(args.data)
    if args.attack:
        record = attack(args, sentences)
        record["machine"] = {"cpus": os.cpu_count(), "cores_available": available_cores()}
        out = args.out.with_name(args.out.stem + "-attack.json")
        write_text_atomic(out, json.dumps(record, indent=2))
        print(f"wrote {out}")
        return 0
    servers = {"on": start_server(args, True), "off": start_server(args, False)}
    served = served_with(servers["on"][1])
    cache = "kept (--warm-cache)" if args.warm_cache else "off: every request as if new"
    print(f"servers run mode {served['mode']} with {served['torch_threads']} torch threads each;")
    print(f"masked-LM cache {cache}")
    results = []
    try:
        for concurrency in args.concurrency:
            for mode, (_, url) in servers.items():
                asyncio.run(load(url, sentences, 20, min(concurrency, 4), args.n))  # warm
                r = run_level(url, args, sentences, concurrency)
                results.append({"batching": mode, "concurrency": concurrency, **r})
                print(f"batching {mode:3} concurrency {concurrency:3}: {r}", flush=True)
    finally:
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGINT)
        for proc, _ in servers.values():
            proc.wait(timeout=60)

    by = {(r["batching"], r["concurrency"]): r for r in results}
    ratios = {
        c: round(by[("on", c)]["throughput_rps"] / by[("off", c)]["throughput_rps"], 2)
        for c in args.concurrency
    }
    target, clients = args.p99_target_ms, args.target_concurrency
    for r in results:
        r["p99_target_met"] = r["p99_ms"] <= target
    print()
    print(table(results, target))
    print()
    for c, ratio in ratios.items():
        print(f"throughput ratio, micro-batching on / off, concurrency {c}: {ratio}x")
    for mode in servers:
        r = by.get((mode, clients))
        if r is not None:
            print(
                f"p99 at {clients} clients, micro-batching {mode}: {r['p99_ms']} ms against the "
                f"{target:g} ms target: {against_target(r['p99_ms'], target)}"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "results": results,
        "ratio_on_off": ratios,
        "settings": {
            "mlm": Path(args.mlm).name,
            "n": args.n,
            "device": args.device,
            "mode": served["mode"],
            "torch_threads": served["torch_threads"],
            "sentences": len(sentences),
            "mlm_cache": "service default" if args.warm_cache else "off",
        },
        "p99_target": {"ms": target, "concurrency": clients},
        "machine": {
            "cpus": os.cpu_count(),
            "cores_available": available_cores(),
            "python": platform.python_version(),
        },
    }
    write_text_atomic(args.out, json.dumps(record, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
