"""The registry on PostgreSQL: read throughput (list, detail) and publish throughput with 1 and 2
API processes on one database, next to the pre-rendered in-memory reference.

    python bench/pg_bench.py --sizes 10000,1000000 [--seconds 5] [--concurrency 8]
        [--publish-seconds 10] [--out results.json]

Uses the PostgreSQL server of ``CORTEX_TEST_PG_URL`` (else starts one with scripts/postgres.sh
and stops it at the end) and creates one fresh database per size, seeded as bench/queue_bench.py
seeds (one real publish, its rows cloned in SQL over ``generate_series``; lz4 compression of
large values). For every size one registry process serves the catalogue (bench/registry_bench.py
``serve``: ``create_app`` + uvicorn, as ``cortex registry serve``, plus ``GET
/bench/reference``: bytes of the detail document's size held in memory); the largest catalogue
gets a second process on the same database. Then, as the SQLite benchmark does, one load-
generator process per endpoint drives that endpoint and the reference on every target,
interleaved in 0.25 s slices:

  SIZE       the one process of that catalogue
  SIZE x2    both processes of the largest catalogue (the connections split between them)

Last, publishes (a real Sigstore bundle and a real decision each, new plugins in the namespace
that owns the seeded digest) run against the largest catalogue through one process, then through
both, for ``--publish-seconds`` each: publishes/s and p50. Nothing is pinned to a core: the API
processes, PostgreSQL and the load generator share the machine's cores, as they would on one
host. The databases are dropped at the end."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import registry_bench as rb  # noqa: E402
from bench.queue_bench import drop_db, emit, fresh_db, pg_server, seed_pg  # noqa: E402

__all__ = ["main"]

ENDPOINTS = ("list", "detail")


def seed(server: str, size: int) -> dict[str, Any]:
    """A fresh database on ``server`` seeded with ``size`` versions; its URL, counts and the
    size of a detail document."""
    import psycopg

    db_url = fresh_db(server)
    info = seed_pg(db_url, size)
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT octet_length(document_json) FROM plugin WHERE key = 'ns01/tool-1'").fetchone()
        db_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    assert row is not None and db_bytes is not None
    return {"db_url": db_url, **info, "detail_bytes": int(row[0]), "db_bytes": int(db_bytes[0])}


#: The namespace of the publishes: the seeded catalogue's digest belongs to it (the first
#: namespace that published it with a verified signature).
NAMESPACE = "ns01"


def publish_token(db_url: str) -> str:
    """A publisher token of :data:`NAMESPACE`."""
    from registry import make_engine
    from registry._store import Store

    engine = make_engine(db_url)
    token, _ = Store(engine).create_token(namespace=NAMESPACE, role="publisher", expires_in=timedelta(days=1),
                                          now=datetime.now(UTC))
    engine.dispose()
    return token


def publish_load(urls: list[str], token: str, *, seconds: float, concurrency: int, tag: str) -> dict[str, Any]:
    """Closed-loop publishes of new plugins for ``seconds`` through ``urls`` (the connections
    spread over them): publishes/s, p50 and p99 in ms."""
    import httpx

    from tests.registry.conftest import publish_body

    async def run() -> list[float]:
        lat: list[float] = []
        deadline = time.perf_counter() + seconds
        counter = iter(range(10**9))

        async def one(k: int) -> None:
            async with httpx.AsyncClient(base_url=urls[k % len(urls)], timeout=60,
                                         headers={"Authorization": f"Bearer {token}"}) as client:
                while time.perf_counter() < deadline:
                    body = publish_body(name=f"pub-{tag}-{next(counter)}", namespace=NAMESPACE)
                    t0 = time.perf_counter()
                    r = await client.post("/api/v1/plugins", json=body)
                    if r.status_code != 201:
                        raise RuntimeError(f"publish answered {r.status_code}: {r.text[:500]}")
                    lat.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(one(k) for k in range(concurrency)))
        lat.append(time.perf_counter() - started)  # the elapsed time, popped below
        return lat

    lat = asyncio.run(run())
    elapsed = lat.pop()
    lat.sort()
    return {"publishes": len(lat), "per_s": round(len(lat) / elapsed, 1),
            "p50_ms": round(lat[len(lat) // 2] * 1000, 1), "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 1)}


def bench(sizes: list[int], *, seconds: float, concurrency: int, publish_seconds: float) -> dict[str, Any]:
    """Seed, serve, load, publish, drop (see the module's documentation)."""
    with pg_server() as server:
        return _bench(server, sizes, seconds=seconds, concurrency=concurrency, publish_seconds=publish_seconds)


def _bench(server: str, sizes: list[int], *, seconds: float, concurrency: int,
           publish_seconds: float) -> dict[str, Any]:
    catalogues: dict[str, dict[str, Any]] = {}
    servers: dict[str, tuple[Any, str]] = {}
    try:
        for size in sizes:
            catalogues[str(size)] = seed(server, size)
            os.sync()
            print(json.dumps({"seeded": catalogues[str(size)]}), flush=True)
        largest = str(max(sizes))

        def start(label: str, info: dict[str, Any]) -> None:
            servers[label] = rb.start_server([rb.__file__, "serve", "--db", info["db_url"],
                                              "--reference-bytes", str(info["detail_bytes"])], pin=False)

        for label, info in catalogues.items():
            start(label, info)
        start(f"{largest} second", catalogues[largest])
        for label, (proc, url) in servers.items():
            rb.wait_ready(proc, url, label)
        both = [servers[largest][1], servers[f"{largest} second"][1]]
        urls: dict[str, tuple[Any, Any, str]] = {
            label: (servers[label][1], servers[label][1], "/bench/reference") for label in catalogues}
        urls[f"{largest} x2"] = (both, both, "/bench/reference")
        targets = {label: {e: rb.read_paths(catalogues[label.split()[0]]["plugins"])[e] for e in ENDPOINTS}
                   for label in urls}
        load0 = os.getloadavg()[0]
        runs = rb.paired_runs(targets, urls, seconds, concurrency, pin=False)
        token = publish_token(catalogues[largest]["db_url"])
        publish = {"1 process": publish_load(both[:1], token, seconds=publish_seconds, concurrency=concurrency,
                                             tag="a"),
                   "2 processes": publish_load(both, token, seconds=publish_seconds, concurrency=concurrency,
                                               tag="b")}
        print(json.dumps({"publish": publish}), flush=True)
        load1 = os.getloadavg()[0]
    finally:
        rb.stop_servers(servers)
        for info in catalogues.values():
            drop_db(server, info["db_url"])

    reads: dict[str, Any] = {}
    for label in urls:
        reads[label] = {}
        for e in ENDPOINTS:
            m, ref = runs[e][f"{label} {e}"], runs[e][f"{label} reference"]
            reads[label][e] = {**{k: m[k] for k in ("rps", "p50_ms", "p99_ms")}, "reference_rps": ref["rps"],
                               "vs_reference": round(m["rps"] / ref["rps"], 2), "client_cpu": m["client_cpu"]}
    smallest = str(min(sizes))
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpus": os.cpu_count(),
        "loadavg_1m": {"start": round(load0, 2), "end": round(load1, 2)},
        "seed": {k: {f: v[f] for f in ("versions", "plugins", "seed_s", "db_bytes", "detail_bytes")}
                 for k, v in catalogues.items()},
        "reads": reads,
        "p50_growth": {e: round(runs[e][f"{largest} {e}"]["p50_ms"] / runs[e][f"{smallest} {e}"]["p50_ms"], 2)
                       for e in ENDPOINTS},
        "reference_p50_growth": {e: round(runs[e][f"{largest} reference"]["p50_ms"]
                                          / runs[e][f"{smallest} reference"]["p50_ms"], 2) for e in ENDPOINTS},
        "two_processes_vs_one": {e: round(runs[e][f"{largest} x2 {e}"]["rps"] / runs[e][f"{largest} {e}"]["rps"], 2)
                                 for e in ENDPOINTS},
        "publish": {**publish, "two_vs_one": round(publish["2 processes"]["per_s"] / publish["1 process"]["per_s"], 2)},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="10000,1000000")
    p.add_argument("--seconds", type=float, default=5, help="seconds of load per endpoint and target, interleaved")
    p.add_argument("--concurrency", type=int, default=8, help="connections per target (and concurrent publishes)")
    p.add_argument("--publish-seconds", type=float, default=10)
    p.add_argument("--out")
    args = p.parse_args()
    emit(bench([int(x) for x in args.sizes.split(",")], seconds=args.seconds, concurrency=args.concurrency,
               publish_seconds=args.publish_seconds), args.out)


if __name__ == "__main__":
    main()
