"""Web catalogue benchmark: plugin pages and the search page against bytes held in memory.

    python bench/web.py [--sizes 10000,100000] [--seconds 3] [--concurrency 8] [--out FILE]

For each size N (plugin versions, 10 per plugin) an SQLite catalogue is seeded like the
registry benchmark's (``bench/registry_bench.py``: one real publish cloned in SQL); its plugins
are then given distinct publish times and usage counts so the sorts have something to order.
Per catalogue two servers run pinned to core 0: the registry (``cortex registry serve``'s app)
and a bare Starlette app whose one route returns, from memory, the exact bytes of one plugin
page of that catalogue. The registry benchmark's load generator (pinned to core 1) drives them
interleaved in 0.25 s slices, so ratios compare runs that shared the machine:

  page       GET /plugins/{ns}/{name}          (500 random plugins, rotating; each requested
                                               once before the load, which renders and stores
                                               its fragments: seeded rows have none)
  reference  GET /page                         (the bare Starlette app, one page's bytes)
  search     GET /?q=tool-4                    (the search page: text search, by name)
  recent     GET /?sort=recent&needs=neither   (a sort and a filter, first page)
  used       GET /?sort=used&cursor=...        (most used, a page deep in the order)

Goals: the plugin page >= 0.5x the reference's throughput; the search page's p50 grows <= 2x
from the smallest to the largest catalogue.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import registry_bench as rb

#: Distinct plugin pages the load rotates over.
_PAGES = 500
_SEARCHES = {"search": "/?q=tool-4", "recent": "/?sort=recent&needs=neither"}


def seed(db_url: str, n_versions: int) -> dict[str, Any]:
    """The registry benchmark's catalogue, with a publish time (one minute apart) and a usage
    count (0-499, many ties) per plugin."""
    info = {"db_url": db_url, **rb.seed(db_url, n_versions)}
    con = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    con.execute("UPDATE plugin SET latest_published_at = strftime('%Y-%m-%dT%H:%M:%SZ', 1767225600 + id * 60, "
                "'unixepoch'), usage_count = (id * 7919) % 500")
    con.close()
    return info


def serve_reference(body_file: str, port: int) -> None:
    """A bare Starlette app: ``GET /page`` returns the bytes of ``body_file`` held in memory."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    body = Path(body_file).read_bytes()

    async def page(_request: Request) -> Response:
        return Response(body, media_type="text/html; charset=utf-8")

    uvicorn.run(Starlette(routes=[Route("/page", page)]), host="127.0.0.1", port=port, log_level="error",
                access_log=False)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()  # type: ignore[no-any-return]


def bench(catalogues: dict[str, dict[str, Any]], seconds: float, concurrency: int, tmp: Path) -> dict[str, Any]:
    """Every measurement of every catalogue, each against its reference in one interleaved run."""
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    targets: dict[str, dict[str, list[str]]] = {}
    try:
        for label, info in catalogues.items():
            servers[label] = rb.start_server([rb.__file__, "serve", "--db", info["db_url"],
                                              "--reference-bytes", "10"])
            rb.wait_ready(*servers[label], label)
            rng = random.Random(4)
            sample = [rng.randint(1, info["plugins"]) for _ in range(_PAGES)]
            pages = [f"/plugins/ns{i % 100:02d}/tool-{i}" for i in sample]
            # Each page once before the load (seeded rows have no page fragments: the first read
            # renders and stores them); the load then reads stored fragments only.
            started = time.perf_counter()
            body = b"".join(_get(servers[label][1] + p) for p in pages[:1])
            for path in pages[1:]:
                _get(servers[label][1] + path)
            info["first_render_ms"] = round((time.perf_counter() - started) / len(pages) * 1000, 1)
            (tmp / f"page-{label}.html").write_bytes(body)
            info["page_bytes"] = len(body)
            ref = rb.start_server([__file__, "reference", "--body", str(tmp / f"page-{label}.html")])
            servers[f"{label} ref"] = ref
            rb.wait_ready(*ref, f"{label} reference")
            # A cursor from the second page of "most used": the union of ties and lower counts.
            first = _get(servers[label][1] + "/?sort=used").decode()
            cursor = first.split("cursor=", 1)[1].split('"', 1)[0]
            targets[label] = {"page": pages, **{k: [v] for k, v in _SEARCHES.items()},
                              "used": [f"/?sort=used&cursor={cursor}"]}
        runs = rb.paired_runs(targets, {label: (servers[label][1], servers[f"{label} ref"][1], "/page")
                                        for label in catalogues}, seconds, concurrency)
    finally:
        rb.stop_servers(servers)
    labels = list(catalogues)
    report: dict[str, Any] = {}
    for label in labels:
        report[label] = {}
        for endpoint, run in runs.items():
            m, ref = run[f"{label} {endpoint}"], run[f"{label} reference"]
            report[label][endpoint] = {**{k: m[k] for k in ("rps", "p50_ms", "p99_ms")},
                                       "vs_reference": round(m["rps"] / ref["rps"], 2),
                                       "reference_rps": ref["rps"], "reference_p50_ms": ref["p50_ms"],
                                       "client_cpu": m["client_cpu"]}
    first, last = labels[0], labels[-1]
    report["p50_growth"] = {"from": first, "to": last, **{
        e: round(runs[e][f"{last} {e}"]["p50_ms"] / runs[e][f"{first} {e}"]["p50_ms"], 2) for e in runs}}
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd")
    r = sub.add_parser("reference")
    r.add_argument("--body", required=True)
    r.add_argument("--port", type=int, required=True)
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--seconds", type=float, default=3, help="seconds of load per measurement and catalogue")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--out")
    args = p.parse_args()
    if args.cmd == "reference":
        serve_reference(args.body, args.port)
        return
    with tempfile.TemporaryDirectory() as d:
        catalogues = {}
        for size in (int(x) for x in args.sizes.split(",")):
            catalogues[str(size)] = seed(f"sqlite:///{d}/web-{size}.db", size)
            print(json.dumps({"seeded": catalogues[str(size)]}), flush=True)
        os.sync()
        http = bench(catalogues, args.seconds, args.concurrency, Path(d))
    report = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
              "loadavg_after": [round(x, 2) for x in os.getloadavg()],
              "page_bytes": {k: v["page_bytes"] for k, v in catalogues.items()},
              "first_render_ms": {k: v["first_render_ms"] for k, v in catalogues.items()}, "http": http,
              "goals": {**{f"page_vs_reference_{k}": http[k]["page"]["vs_reference"] for k in catalogues},
                        "search_p50_growth": http["p50_growth"]["search"]}}
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
