"""Registry benchmarks (issue 4): read-path throughput/latency and catalogue re-tiering.

    python bench/registry_bench.py all --sizes 10000,100000,1000000 [--seconds 5]
        [--out results.json] [--keep DIR]
    python bench/registry_bench.py retier --versions 100000

For each size N (plugin versions; 10 versions per plugin) an SQLite catalogue is seeded from
one real publish (real signature facts, real decision; cloned in SQL, ~3 min and ~21 GB for
1M). One registry per catalogue runs as its own process, all pinned to core 0 (`taskset`), and
an asyncio HTTP/1.1 keep-alive load generator pinned to core 1 drives one endpoint on every
catalogue together with the reference, interleaved in 0.25 s slices, measuring req/s, p50 and
p99 of:

  list      GET /api/v1/plugins                      (first page)
  search    GET /api/v1/plugins?q=tool-4             (LIKE search)
  detail    GET /api/v1/plugins/{ns}/{name}
  versions  GET /api/v1/plugins/{ns}/{name}/versions
  version   GET /api/v1/plugins/{ns}/{name}/versions/{v}
  reference GET /bench/reference   (same server, same size bytes held in memory)

Detail and version requests rotate over 1,000 random plugins. The machine is shared: read the
paired numbers (endpoint/reference of the same size, largest/smallest size of the same
endpoint), measured in the same interleaved window.

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
    from cortex_trust.engine import EmbeddedEngine
    from cortex_trust.policy import load_policy_set

    policy_set = load_policy_set([], [], defaults=True)
    return lambda: EmbeddedEngine(policy_set, precompute=True)


def _trust_roots() -> tuple[Any, ...]:
    from cortex_trust.evidence import load_trust_root

    return (load_trust_root(FIXTURES / "trusted_roots" / "production.json"),)


def publish_template(db_url: str) -> Any:
    """Migrate ``db_url`` and publish ``acme/template`` 1.0.0 through the API (real signature
    facts, real decision); the migrated engine (the caller disposes of it)."""
    from fastapi.testclient import TestClient

    from registry import RegistryConfig, create_app, make_engine, migrate
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
    return engine


def seed(db_url: str, n_versions: int) -> dict[str, Any]:
    """A catalogue of ``n_versions`` versions (10 per plugin) cloned from one real publish.

    The template is published through the API (real signature facts, real decision); its rows
    are then cloned inside SQLite by ``INSERT ... SELECT`` over a recursive counter, with the
    names spliced into the pre-rendered documents by ``replace()`` (the catalogue's page
    fragments are left empty: rendered on a page's first read): no Python per row, one
    transaction, journal off while seeding (a throw-away database). 1M versions take a few
    minutes and ~21 GB of disk, mostly the bundle, input and documents kept per version.
    """
    import sqlite3

    if not db_url.startswith("sqlite:///"):
        raise SystemExit("the seeder writes SQLite files (sqlite:///PATH)")
    publish_template(db_url).dispose()

    started = time.perf_counter()
    n_plugins = max(1, n_versions // VERSIONS_PER_PLUGIN)
    con = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    con.row_factory = sqlite3.Row
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-262144")  # 256 MB: index pages stay in memory
    con.execute("BEGIN")
    tp = dict(con.execute("SELECT * FROM plugin").fetchone())
    tv = dict(con.execute("SELECT * FROM plugin_version").fetchone())
    te = dict(con.execute("SELECT * FROM evidence").fetchone())
    tb = dict(con.execute("SELECT * FROM version_bundle").fetchone())
    for table in ("evidence", "version_bundle", "plugin_version", "plugin"):
        con.execute(f"DELETE FROM {table}")

    def compact(doc: dict[str, Any]) -> str:
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    names = {"namespace": "@@NS@@", "name": "@@NAME@@"}
    full = {**names, "full_name": "@@NS@@/@@NAME@@"}
    latest = f"1.0.{VERSIONS_PER_PLUGIN - 1}"
    templates = {
        "psum": compact({**json.loads(tp["summary_json"]), **full, "latest_version": latest}),
        "pdoc": compact({**json.loads(tp["document_json"]), **full, "latest_version": latest,
                         "versions": VERSIONS_PER_PLUGIN}),
        "vsum": compact({**json.loads(tv["summary_json"]), **names, "version": "@@VER@@"}),
        "vdoc": compact({**json.loads(tv["document_json"]), **names, "version": "@@VER@@"}),
    }

    def fill(tpl: str) -> str:
        return (f"replace(replace(replace(:{tpl}, '@@NS@@', ns), '@@NAME@@', nm), "
                "'@@VER@@', ver)")

    def clone(table: str, row: dict[str, Any], overrides: dict[str, str], source: str,
              params: dict[str, Any]) -> None:
        cols = list(row)
        exprs = [overrides.get(c, f":t_{c}") for c in cols]
        params = {**params, **{f"t_{c}": row[c] for c in cols if c not in overrides}}
        quoted = ", ".join(f'"{c}"' for c in cols)
        con.execute(f"{source} INSERT INTO {table} ({quoted}) "
                    f"SELECT {', '.join(exprs)} FROM r", params)

    # r: one row per plugin (i = plugin id), then one per version (i = version id).
    per = VERSIONS_PER_PLUGIN
    plugins = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count), "
               "r AS (SELECT i, printf('ns%02d', i % 100) AS ns, 'tool-' || i AS nm, '' AS ver "
               "FROM n)")
    versions = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count), "
                f"r AS (SELECT i, (i - 1) / {per} + 1 AS pid, "
                f"printf('ns%02d', ((i - 1) / {per} + 1) % 100) AS ns, "
                f"'tool-' || ((i - 1) / {per} + 1) AS nm, '1.0.' || ((i - 1) % {per}) AS ver "
                "FROM n)")
    clone("plugin", tp, {"id": "i", "namespace": "ns", "name": "nm", "key": "ns || '/' || nm",
                         "search_text": "ns || '/' || nm || ' ' || :t_search_text",
                         "latest_version": f"'{latest}'", "summary_json": fill("psum"),
                         "document_json": fill("pdoc"), "page_html": "NULL"},
          plugins, {"count": n_plugins, "t_search_text": tp["search_text"], **templates})
    clone("plugin_version", tv, {"id": "i", "plugin_id": "pid", "version": "ver",
                                 "summary_json": fill("vsum"), "document_json": fill("vdoc"),
                                 "page_html": "NULL"},
          versions, {"count": n_plugins * per, **templates})
    clone("evidence", te, {"id": "i", "version_id": "i"}, versions,
          {"count": n_plugins * per})
    clone("version_bundle", tb, {"version_id": "i"}, versions, {"count": n_plugins * per})
    con.execute("COMMIT")
    detail_bytes = len(con.execute("SELECT document_json FROM plugin WHERE key = 'ns01/tool-1'")
                       .fetchone()[0].encode())
    con.execute("PRAGMA journal_mode=WAL")  # what the registry runs with
    con.close()
    return {"versions": n_plugins * per, "plugins": n_plugins,
            "seed_s": round(time.perf_counter() - started, 1), "detail_bytes": detail_bytes,
            "db_bytes": Path(db_url.removeprefix("sqlite:///")).stat().st_size}


def serve(db_url: str, port: int, reference_bytes: int) -> None:
    """Run the registry app plus a /bench/reference route (bytes in memory, same size).

    The reference is an ``async`` route like the registry's read routes: both pay the same
    server and framework costs, so the ratio measures what the database read adds.
    """
    import uvicorn
    from fastapi.responses import Response

    from registry import RegistryConfig, create_app, make_engine

    engine = make_engine(db_url)
    app = create_app(RegistryConfig(db_url=db_url, trusted_roots=_trust_roots()),
                     engine_factory=_engine_factory(), db=engine)
    body = b'{"pad":"' + b"x" * max(0, reference_bytes - 10) + b'"}'

    @app.get("/bench/reference", include_in_schema=False)
    async def reference() -> Response:
        return Response(content=body, media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


class _Client(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: while a slice lasts, it sends the next request as
    soon as a response is complete, and records each latency.

    A protocol, not streams: the client must cost much less than the server it measures.
    """

    def __init__(self, requests: list[bytes], offset: int) -> None:
        self.requests, self.i = requests, offset
        self.buf = b""
        self.need = -1
        self.t0 = 0.0
        self.deadline = 0.0
        self.stop_at: int | None = None
        self.lat: list[float] = []
        self.idle: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def run(self, deadline: float, lat: list[float],
            limit: int | None = None) -> asyncio.Future[None]:
        """Send requests until ``deadline`` (or ``limit`` requests); the future resolves after
        the last response."""
        self.deadline, self.lat = deadline, lat
        self.stop_at = None if limit is None else self.i + limit
        self.idle = asyncio.get_running_loop().create_future()
        self._send()
        return self.idle

    def _send(self) -> None:
        assert self.transport is not None and self.idle is not None
        now = time.perf_counter()
        if now >= self.deadline or self.i == self.stop_at:
            if not self.idle.done():
                self.idle.set_result(None)
            return
        self.t0 = now
        self.transport.write(self.requests[self.i % len(self.requests)])
        self.i += 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            at = head.find(b"content-length:")
            if not head.startswith(b"http/1.1 200") or at < 0:
                self._fail(RuntimeError(f"unexpected response: {bytes(self.buf[:120])!r}"))
                return
            stop = head.find(b"\r\n", at)
            self.need = end + 4 + int(head[at + 15:stop if stop >= 0 else len(head)])
        if len(self.buf) >= self.need:
            self.lat.append(time.perf_counter() - self.t0)
            self.buf = self.buf[self.need:]
            self.need = -1
            self._send()

    def _fail(self, exc: Exception) -> None:
        if self.idle is not None and not self.idle.done():
            self.idle.set_exception(exc)
        assert self.transport is not None
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle is not None and not self.idle.done():
            self.idle.set_exception(exc or RuntimeError("the server closed the connection"))


def load(groups: dict[str, tuple[Any, list[str]]], seconds: float, concurrency: int,
         slice_s: float = 0.25, warmup: float = 0.0) -> dict[str, dict[str, float]]:
    """Closed-loop load on several targets, interleaved in time.

    ``groups`` maps a name to ``(base_url, paths)`` (or ``([base_url, ...], paths)``: servers
    sharing the group's connections). Each group gets ``concurrency`` keep-alive
    connections (each cycling through the paths from its own offset); the groups take turns in
    slices of ``slice_s`` until each had ``seconds`` of load. Everything a shared machine
    does to the server during the run is spread over all groups alike, so their ratios hold
    even when the absolute numbers move.
    """
    async def main() -> dict[str, dict[str, float]]:
        loop = asyncio.get_running_loop()
        clients: dict[str, list[_Client]] = {}
        for name, (url, paths) in groups.items():
            clients[name] = []
            for k in range(concurrency):
                # A list of servers: the group's connections are spread over them in turn.
                host, port = (url[k % len(url)] if isinstance(url, list) else url).removeprefix("http://").split(":")
                requests = [f"GET {p} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for p in paths]
                _, proto = await loop.create_connection(
                    lambda r=requests, k=k: _Client(r, k * 7919), host, int(port))  # type: ignore[misc]
                clients[name].append(proto)

        async def slices(total: float, record: bool) -> dict[str, tuple[list[float], float]]:
            got: dict[str, tuple[list[float], float]] = {n: ([], 0.0) for n in groups}
            while min(t for _, t in got.values()) < total:
                for name, conns in clients.items():
                    lat, active = got[name]
                    t0 = time.perf_counter()
                    await asyncio.gather(*(c.run(t0 + slice_s, lat) for c in conns))
                    got[name] = (lat, active + time.perf_counter() - t0)
            return got if record else {}

        if warmup:
            # Every path once (the catalogue's pages in the OS cache: the run measures the
            # server, not a cold disk), then ``warmup`` seconds of the interleaved load.
            for name, conns in clients.items():
                first = conns[0]
                offset, first.i = first.i, 0
                await first.run(float("inf"), [], limit=len(groups[name][1]))
                first.i = offset
            await slices(warmup, record=False)
        cpu = time.process_time()
        got = await slices(seconds, record=True)
        cpu_share = (time.process_time() - cpu) / sum(t for _, t in got.values())
        for conns in clients.values():
            for c in conns:
                assert c.transport is not None
                c.transport.close()
        out = {}
        for name, (lat, active) in got.items():
            lat.sort()
            # client_cpu near 1.0 would mean the load generator, not the server, is the limit.
            out[name] = {"rps": round(len(lat) / active),
                         "p50_ms": round(lat[len(lat) // 2] * 1000, 3),
                         "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 3), "n": len(lat),
                         "client_cpu": round(cpu_share, 2)}
        return out

    return asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _taskset(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 \
        else []


def start_server(argv: list[str], *, pin: bool = True) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python ARGV --port PORT`` on a free port, pinned to core 0 when ``pin``;
    ``(process, url)``."""
    port = _free_port()
    proc = subprocess.Popen([*(_taskset(0) if pin else []), sys.executable, *argv, "--port", str(port)])
    return proc, f"http://127.0.0.1:{port}"


def wait_ready(proc: subprocess.Popen[bytes], url: str, label: str) -> None:
    """Wait (up to 2 minutes) until the server ``proc`` accepts connections at ``url``."""
    port = int(url.rsplit(":", 1)[1])
    deadline = time.monotonic() + 120
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bench server for {label} did not start") from None
            time.sleep(0.2)


def run_load(groups: dict[str, tuple[Any, list[str]]], seconds: float, concurrency: int, *,
             pin: bool = True) -> dict[str, Any]:
    """:func:`load` in a process of its own, pinned to core 1 when ``pin`` (the servers are on
    core 0)."""
    out = subprocess.run([*(_taskset(1) if pin else []), sys.executable, __file__, "load",
                          "--groups", "-", "--seconds", str(seconds),
                          "--warmup", "0.5", "--concurrency", str(concurrency)],
                         input=json.dumps(groups), capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def paired_runs(targets: dict[str, dict[str, list[str]]], urls: dict[str, tuple[Any, Any, str]],
                seconds: float, concurrency: int, *, pin: bool = True) -> dict[str, dict[str, Any]]:
    """For each endpoint of ``targets`` (``label -> endpoint -> paths``), one load run of that
    endpoint on every label together with the label's reference, interleaved (:func:`load`).
    ``urls`` maps a label to ``(server url, reference server url, reference path)``; the
    result maps an endpoint to the run's ``{"LABEL ENDPOINT": ..., "LABEL reference": ...}``.
    A server url may be a list (:func:`load`); ``pin`` as :func:`run_load`."""
    runs: dict[str, dict[str, Any]] = {}
    for endpoint in targets[next(iter(targets))]:
        groups: dict[str, tuple[Any, list[str]]] = {}
        for label, (url, ref_url, ref_path) in urls.items():
            groups[f"{label} {endpoint}"] = (url, targets[label][endpoint])
            groups[f"{label} reference"] = (ref_url, [ref_path])
        runs[endpoint] = run_load(groups, seconds, concurrency, pin=pin)
        print(json.dumps({endpoint: runs[endpoint]}), flush=True)
    return runs


def stop_servers(servers: dict[str, tuple[subprocess.Popen[bytes], str]]) -> None:
    """Terminate the bench servers and wait for them."""
    for proc, _ in servers.values():
        proc.terminate()
    for proc, _ in servers.values():
        proc.wait(timeout=30)


def read_paths(n_plugins: int) -> dict[str, list[str]]:
    """The paths of each endpoint for a seeded catalogue of ``n_plugins`` plugins: detail, version
    and versions requests rotate over 1,000 random plugins (the same random seed at every size)."""
    import random

    rng = random.Random(4)
    sample = [rng.randint(1, n_plugins) for _ in range(1000)]
    plugin = [f"/api/v1/plugins/ns{i % 100:02d}/tool-{i}" for i in sample]
    return {"detail": plugin, "list": ["/api/v1/plugins"],
            "search": ["/api/v1/plugins?q=tool-4"],
            "versions": [p + "/versions" for p in plugin],
            "version": [f"{p}/versions/1.0.{i % VERSIONS_PER_PLUGIN}"
                        for i, p in zip(sample, plugin, strict=True)]}


def http_bench(catalogues: dict[str, dict[str, Any]], seconds: float,
               concurrency: int) -> dict[str, Any]:
    """Measure every endpoint of every catalogue in the same time window.

    ``catalogues`` maps a size label to its seed info (``db_url``, ``plugins``,
    ``detail_bytes``). One server per catalogue runs at once (all pinned to core 0; only the
    one under load uses it). For each endpoint one load process (pinned to core 1) drives that
    endpoint and the reference on every catalogue, interleaved in 0.25 s slices (see
    :func:`load`): the endpoint/reference ratios and the growth from the smallest to the
    largest catalogue compare runs that shared the machine's load. Detail and version requests
    rotate over 1,000 random plugins of the catalogue (the same random seed at every size),
    not one hot row.
    """
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    try:
        for label, info in catalogues.items():
            servers[label] = start_server([__file__, "serve", "--db", info["db_url"],
                                           "--reference-bytes", str(info["detail_bytes"])])
        for label, (proc, url) in servers.items():
            wait_ready(proc, url, label)

        targets = {label: read_paths(info["plugins"]) for label, info in catalogues.items()}
        labels = list(catalogues)
        endpoints = list(targets[labels[0]])
        runs = paired_runs(targets, {label: (url, url, "/bench/reference") for label, (_, url) in servers.items()},
                           seconds, concurrency)
    finally:
        stop_servers(servers)

    report: dict[str, Any] = {}
    for label in labels:
        report[label] = {}
        for endpoint in endpoints:
            m, ref = runs[endpoint][f"{label} {endpoint}"], runs[endpoint][f"{label} reference"]
            report[label][endpoint] = {**{k: m[k] for k in ("rps", "p50_ms", "p99_ms")},
                                       "vs_reference": round(m["rps"] / ref["rps"], 2),
                                       "reference_rps": ref["rps"],
                                       "client_cpu": m["client_cpu"]}
    first, last = labels[0], labels[-1]
    report["p50_growth"] = {"from": first, "to": last, **{
        e: round(runs[e][f"{last} {e}"]["p50_ms"] / runs[e][f"{first} {e}"]["p50_ms"], 2)
        for e in endpoints}}
    report["reference_p50_growth"] = {e: round(runs[e][f"{last} reference"]["p50_ms"]
                                               / runs[e][f"{first} reference"]["p50_ms"], 2)
                                      for e in endpoints}
    return report


def retier_bench(db_url: str, *, workers: int | None = None, batch: int = 500,
                 data_files: tuple[str, ...] = ()) -> dict[str, Any]:
    """Re-tier the whole catalogue with the default policies (`Store.retier_all` on a
    `LocalDeciders`): wall time, versions/s, CPU per version split into evaluation (inside
    `decide()`, in the workers), input building and rendering (workers) and the main process
    (SQL reads, writes, commit), and the load average while it ran (the machine is shared)."""
    import resource
    import threading

    from cortex_trust.policy import load_policy_set
    from registry import make_engine
    from registry._retier import LocalDeciders
    from registry._store import Store

    engine = make_engine(db_url)
    samples: list[float] = []
    done = threading.Event()

    def sample_load() -> None:
        while not done.wait(1.0):
            samples.append(os.getloadavg()[0])

    # data_files: an organization's policy change (its own data): decided on the interpreter.
    policy_set = load_policy_set([], list(data_files), defaults=True)
    with LocalDeciders(policy_set, workers=workers) as deciders:
        deciders.start()  # spawn the engine processes and build their engines outside the timing
        sampler = threading.Thread(target=sample_load, daemon=True)
        load_start = os.getloadavg()[0]
        sampler.start()
        cpu0 = time.process_time()
        started = time.perf_counter()
        result = Store(engine).retier_all(now=datetime.now(UTC), deciders=deciders, batch=batch)
        elapsed = time.perf_counter() - started
        main_cpu = time.process_time() - cpu0
        done.set()
        stats = deciders.stats
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers, after they exited
    children_cpu = float(usage.ru_utime + usage.ru_stime)
    engine.dispose()
    n = max(1, int(result["versions"]))
    worker_cpu = stats.build_cpu + stats.eval_cpu + stats.render_cpu

    def us(seconds: float) -> float:
        return round(seconds / n * 1e6, 1)

    return {
        **result,
        "seconds": round(elapsed, 2),
        "versions_per_s": round(result["versions"] / elapsed),
        "workers": stats.workers,
        "engine_mode": stats.extra.get("engine_mode"),
        "batch": batch,
        "start_s": round(stats.start_s, 2),
        "cpu_us_per_version": {
            "evaluation (decide, workers)": us(stats.eval_cpu),
            "input building (workers)": us(stats.build_cpu),
            "rendering (workers)": us(stats.render_cpu),
            "main process (SQL read/write, IPC, commit)": us(main_cpu),
            "main: reading + building batches": us(stats.main_read_cpu),
            "main: storing results": us(stats.main_write_cpu),
            "total": us(worker_cpu + main_cpu),
        },
        "cpu_s": {"main": round(main_cpu, 2), "workers_measured": round(worker_cpu, 2),
                  "workers_with_start_and_ipc": round(children_cpu, 2)},
        "loadavg_1m": {"start": round(load_start, 2),
                       "mean": round(sum(samples) / len(samples), 2) if samples else None,
                       "max": round(max(samples), 2) if samples else None},
        "crashes": stats.crashes, "timeouts": stats.timeouts,
    }

def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("all")
    a.add_argument("--sizes", default="10000,100000")
    a.add_argument("--seconds", type=float, default=5,
                   help="seconds of load per endpoint and catalogue (and as much for the "
                        "reference), interleaved")
    a.add_argument("--concurrency", type=int, default=8)
    a.add_argument("--out")
    a.add_argument("--tmp", help="directory for the databases (1M versions need ~21 GB)")
    a.add_argument("--keep", metavar="DIR",
                   help="keep the seeded databases in DIR and reuse them in later runs")
    r = sub.add_parser("retier")
    r.add_argument("--versions", type=int, default=100_000)
    r.add_argument("--workers", type=int, help="policy engine processes (default: usable CPUs)")
    r.add_argument("--batch", type=int, default=500, help="versions per batch")
    r.add_argument("--data", action="append", default=[], metavar="FILE",
                   help="policy data over the defaults (an organization's policy change: decided "
                        "on the interpreter, not in compiled mode)")
    s = sub.add_parser("serve")
    s.add_argument("--db", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--reference-bytes", type=int, required=True)
    ld = sub.add_parser("load")
    ld.add_argument("--groups", required=True,
                    help='JSON {"name": ["http://127.0.0.1:PORT", ["/path", ...]], ...}, '
                         'or - to read it from standard input')
    ld.add_argument("--seconds", type=float, default=3)
    ld.add_argument("--warmup", type=float, default=0.0, help="seconds of load not counted")
    ld.add_argument("--concurrency", type=int, default=8)
    args = p.parse_args()

    if args.cmd == "serve":
        serve(args.db, args.port, args.reference_bytes)
    elif args.cmd == "load":
        text = sys.stdin.read() if args.groups == "-" else args.groups
        groups = {k: (v[0], v[1]) for k, v in json.loads(text).items()}
        print(json.dumps(load(groups, args.seconds, args.concurrency, warmup=args.warmup)))
    elif args.cmd == "retier":
        with tempfile.TemporaryDirectory() as d:
            url = f"sqlite:///{d}/bench.db"
            info = seed(url, args.versions)
            # The seed wrote gigabytes: let the kernel write them back before the timing starts,
            # or its writeback threads compete with the run for the same two cores.
            os.sync()
            result = retier_bench(url, workers=args.workers, batch=args.batch,
                                  data_files=tuple(args.data))
            print(json.dumps({"seed": info, "retier": result}, indent=2))
    else:
        sizes = [int(x) for x in args.sizes.split(",")]
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            d = Path(args.keep or tmp)
            d.mkdir(parents=True, exist_ok=True)
            catalogues: dict[str, dict[str, Any]] = {}
            for size in sizes:
                url = f"sqlite:///{d}/bench-{size}.db"
                info_file = d / f"bench-{size}.json"
                if args.keep and info_file.exists():  # seeded by an earlier run: reuse it
                    catalogues[str(size)] = json.loads(info_file.read_text())
                else:
                    Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
                    catalogues[str(size)] = {"db_url": url, **seed(url, size)}
                    info_file.write_text(json.dumps(catalogues[str(size)]))
                print(json.dumps({"seeded": catalogues[str(size)]}), flush=True)
            http = http_bench(catalogues, args.seconds, args.concurrency)
        report: dict[str, Any] = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "seed": {k: {f: v[f] for f in ("versions", "plugins", "seed_s", "db_bytes")}
                     for k, v in catalogues.items()},
            "http": http,
        }
        report["goals"] = {
            **{f"detail_vs_reference_{k}": http[k]["detail"]["vs_reference"] for k in catalogues},
            **{f"p50_growth_{k}": v for k, v in http["p50_growth"].items()},
        }
        print(json.dumps(report["http"]))
        print(json.dumps(report["goals"], indent=2))
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
