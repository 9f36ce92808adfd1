"""Registry benchmarks (issue 4): read-path throughput/latency and catalogue re-tiering.

    python bench/registry_bench.py all --sizes 10000,100000 [--seconds 5] [--out results.json]
    python bench/registry_bench.py retier --versions 100000

For each size N (plugin versions; 10 versions per plugin) a fresh SQLite catalogue is seeded
from one real publish (real signature facts, real decision), the registry is started as its own
process pinned to core 0 (`taskset`), and a small asyncio HTTP/1.1 keep-alive load generator
pinned to core 1 measures req/s, p50 and p99 for:

  list      GET /api/v1/plugins                      (first page)
  search    GET /api/v1/plugins?q=tool-4             (LIKE search)
  detail    GET /api/v1/plugins/{ns}/{name}
  versions  GET /api/v1/plugins/{ns}/{name}/versions
  version   GET /api/v1/plugins/{ns}/{name}/versions/{v}
  reference GET /bench/reference   (same server, same size bytes held in memory)

Goals (issue 4): list/detail latency grows < 2x from 10k to 1M; detail >= 0.5x reference;
re-tiering 100k versions < 30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIXTURES = ROOT / "tests" / "fixtures" / "sigstore"
A_TXT_DIGEST = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
VERSIONS_PER_PLUGIN = 10


def _engine_factory() -> Any:
    from cortex_trust.engine.embedded import EmbeddedEngine
    from cortex_trust.policyset import load_policy_set

    policy_set = load_policy_set([], [], defaults=True)
    return lambda: EmbeddedEngine(policy_set)


def _trust_roots() -> tuple[Any, ...]:
    from cortex_trust.evidence.signature import load_trust_root

    return (load_trust_root(FIXTURES / "trusted_roots" / "production.json"),)


def seed(db_url: str, n_versions: int) -> dict[str, Any]:
    """A catalogue of ``n_versions`` versions cloned from one real publish."""
    from fastapi.testclient import TestClient
    from sqlalchemy import insert, select

    from registry import RegistryConfig, create_app, make_engine, migrate
    from registry._models import Evidence, Plugin, PluginVersion
    from tests.registry.conftest import publish_body

    engine = make_engine(db_url)
    migrate(engine)
    app = create_app(RegistryConfig(db_url=db_url, trusted_roots=_trust_roots()),
                     engine_factory=_engine_factory(), db=engine)
    store = app.state.store
    token, _ = store.create_token(namespace="acme", role="publisher",
                                  expires_in=timedelta(days=1), now=datetime.now(UTC))
    with TestClient(app) as client:
        r = client.post("/api/v1/plugins", json=publish_body(name="template"),
                        headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201, r.text
    app.state.evaluator.close()
    with engine.begin() as conn:
        tv = conn.execute(select(PluginVersion)).mappings().one()
        tp = conn.execute(select(Plugin)).mappings().one()
        te = conn.execute(select(Evidence)).mappings().one()
        conn.execute(Evidence.__table__.delete())  # type: ignore[attr-defined]
        conn.execute(PluginVersion.__table__.delete())  # type: ignore[attr-defined]
        conn.execute(Plugin.__table__.delete())  # type: ignore[attr-defined]
    vdoc = json.loads(tv["document_json"])
    vsum = json.loads(tv["summary_json"])
    pdoc = json.loads(tp["document_json"])
    psum = json.loads(tp["summary_json"])
    n_plugins = max(1, n_versions // VERSIONS_PER_PLUGIN)
    started = time.perf_counter()
    chunk = 5000
    vid = 0
    for start in range(0, n_plugins, chunk):
        plugins, versions, evidence = [], [], []
        for pid in range(start + 1, min(n_plugins, start + chunk) + 1):
            ns, name = f"ns{pid % 100:02d}", f"tool-{pid}"
            names = {"namespace": ns, "name": name}
            plugins.append({**{k: tp[k] for k in tp.keys() if k != "id"}, "id": pid,
                            "namespace": ns, "name": name, "key": f"{ns}/{name}",
                            "search_text": f"{ns}/{name} {tp['search_text']}",
                            "latest_version": f"1.0.{VERSIONS_PER_PLUGIN - 1}",
                            "summary_json": json.dumps({**psum, **names, "full_name": f"{ns}/{name}"}),
                            "document_json": json.dumps({**pdoc, **names, "full_name": f"{ns}/{name}",
                                                         "versions": VERSIONS_PER_PLUGIN})})
            for k in range(VERSIONS_PER_PLUGIN):
                vid += 1
                v = {**names, "version": f"1.0.{k}"}
                versions.append({**{c: tv[c] for c in tv.keys() if c != "id"}, "id": vid,
                                 "plugin_id": pid, "version": f"1.0.{k}",
                                 "summary_json": json.dumps({**vsum, **v}),
                                 "document_json": json.dumps({**vdoc, **v})})
                evidence.append({**{c: te[c] for c in te.keys() if c != "id"}, "version_id": vid})
        with engine.begin() as conn:
            conn.execute(insert(Plugin), plugins)
            conn.execute(insert(PluginVersion), versions)
            conn.execute(insert(Evidence), evidence)
    engine.dispose()
    return {"versions": vid, "plugins": n_plugins, "seed_s": round(time.perf_counter() - started, 1),
            "detail_bytes": len(json.dumps({**pdoc, "namespace": "ns01", "name": "tool-1"}))}


def serve(db_url: str, port: int, reference_bytes: int) -> None:
    """Run the registry app plus a /bench/reference route (bytes in memory, same size)."""
    import uvicorn
    from fastapi.responses import Response

    from registry import RegistryConfig, create_app, make_engine

    engine = make_engine(db_url)
    app = create_app(RegistryConfig(db_url=db_url, trusted_roots=_trust_roots()),
                     engine_factory=_engine_factory(), db=engine)
    body = b'{"pad":"' + b"x" * max(0, reference_bytes - 10) + b'"}'

    @app.get("/bench/reference", include_in_schema=False)
    def reference() -> Response:
        return Response(content=body, media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


async def _worker(host: str, port: int, path: str, deadline: float, lat: list[float]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    try:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"{path}: {head[:80]!r}")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
    finally:
        writer.close()


def load(url: str, path: str, seconds: float, concurrency: int) -> dict[str, float]:
    """Closed-loop load: ``concurrency`` keep-alive connections for ``seconds``."""
    host, port = url.removeprefix("http://").split(":")
    lat: list[float] = []

    async def main() -> None:
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(_worker(host, int(port), path, deadline, lat)
                               for _ in range(concurrency)))

    asyncio.run(main())
    lat.sort()
    return {"rps": round(len(lat) / seconds), "p50_ms": round(lat[len(lat) // 2] * 1000, 2),
            "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 2), "n": len(lat)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _taskset(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 \
        else []


def http_bench(db_url: str, reference_bytes: int, seconds: float,
               concurrency: int) -> dict[str, Any]:
    port = _free_port()
    server = subprocess.Popen([*_taskset(0), sys.executable, __file__, "serve", "--db", db_url,
                               "--port", str(port), "--reference-bytes", str(reference_bytes)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("bench server did not start") from None
                time.sleep(0.2)
        paths = {"list": "/api/v1/plugins", "search": "/api/v1/plugins?q=tool-4",
                 "detail": "/api/v1/plugins/ns01/tool-1",
                 "versions": "/api/v1/plugins/ns01/tool-1/versions",
                 "version": "/api/v1/plugins/ns01/tool-1/versions/1.0.3",
                 "reference": "/bench/reference"}
        results: dict[str, Any] = {}
        for name, path in paths.items():
            load(url, path, 0.5, concurrency)  # warm up
            out = subprocess.run([*_taskset(1), sys.executable, __file__, "load", "--url", url,
                                  "--path", path, "--seconds", str(seconds),
                                  "--concurrency", str(concurrency)],
                                 capture_output=True, text=True, check=True)
            results[name] = json.loads(out.stdout)
        return results
    finally:
        server.terminate()
        server.wait(timeout=10)


def retier_bench(db_url: str) -> dict[str, Any]:
    from registry import make_engine
    from registry._evaluate import ThreadEvaluator
    from registry._store import Store

    engine = make_engine(db_url)
    evaluator = ThreadEvaluator(_engine_factory())
    evaluator([])  # build the engine outside the timing
    started = time.perf_counter()
    result = Store(engine).retier_all(now=datetime.now(UTC), evaluate=evaluator)
    elapsed = time.perf_counter() - started
    evaluator.close()
    engine.dispose()
    return {**result, "seconds": round(elapsed, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("all")
    a.add_argument("--sizes", default="10000,100000")
    a.add_argument("--seconds", type=float, default=5)
    a.add_argument("--concurrency", type=int, default=8)
    a.add_argument("--out")
    r = sub.add_parser("retier")
    r.add_argument("--versions", type=int, default=100_000)
    s = sub.add_parser("serve")
    s.add_argument("--db", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--reference-bytes", type=int, required=True)
    ld = sub.add_parser("load")
    ld.add_argument("--url", required=True)
    ld.add_argument("--path", required=True)
    ld.add_argument("--seconds", type=float, default=5)
    ld.add_argument("--concurrency", type=int, default=8)
    args = p.parse_args()

    if args.cmd == "serve":
        serve(args.db, args.port, args.reference_bytes)
    elif args.cmd == "load":
        print(json.dumps(load(args.url, args.path, args.seconds, args.concurrency)))
    elif args.cmd == "retier":
        with tempfile.TemporaryDirectory() as d:
            url = f"sqlite:///{d}/bench.db"
            info = seed(url, args.versions)
            print(json.dumps({"seed": info, "retier": retier_bench(url)}, indent=2))
    else:
        report: dict[str, Any] = {}
        for size in (int(x) for x in args.sizes.split(",")):
            with tempfile.TemporaryDirectory() as d:
                url = f"sqlite:///{d}/bench.db"
                info = seed(url, size)
                report[str(size)] = {"seed": info,
                                     "http": http_bench(url, info["detail_bytes"], args.seconds,
                                                        args.concurrency)}
                print(json.dumps({size: report[str(size)]}), flush=True)
        sizes = list(report)
        first, last = report[sizes[0]]["http"], report[sizes[-1]]["http"]
        report["goals"] = {
            "detail_vs_reference": round(last["detail"]["rps"] / last["reference"]["rps"], 2),
            **{f"p50_growth_{k}": round(last[k]["p50_ms"] / first[k]["p50_ms"], 2)
               for k in ("list", "search", "detail", "versions", "version")},
        }
        print(json.dumps(report["goals"], indent=2))
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
