"""Queued re-tier on PostgreSQL: `cortex registry retier --wait` decided by 1, then 2 workers.

    python bench/queue_bench.py --versions 10000 [--batch 1000] [--out results.json]

Uses the PostgreSQL server of ``CORTEX_TEST_PG_URL`` (else starts one with scripts/postgres.sh
and stops it at the end), creates a fresh database, migrates it, and seeds N versions (10 per
plugin) cloned in SQL from one real publish (real signature facts, real decision), as
bench/registry_bench.py does on SQLite; the database compresses large values with lz4
(``--toast-compression``). Then, on the same catalogue and with the shipped policies, in this
order:

  in-process   cortex registry retier --db URL --in-process --workers 1 --batch B
  1 worker     cortex registry worker --db URL --concurrency 1          (one process)
               cortex registry retier --db URL --wait --batch B
  2 workers    the same with two worker processes

Each is timed as the wall time of the `retier` command (run start, queueing, deciding, switch),
with the workers started and ready before it. Reported: seconds, versions/s, the CPU seconds of
the retier command and of the workers, the load average, and scaling efficiency
(t_1worker / t_2workers) / 2. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._published import cli_command, process_env  # noqa: E402
from bench.registry_bench import VERSIONS_PER_PLUGIN, publish_template  # noqa: E402

__all__ = ["drop_db", "emit", "fresh_db", "main", "pg_server", "seed_pg"]


@contextmanager
def pg_server() -> Iterator[str]:
    """The URL of a PostgreSQL server: ``CORTEX_TEST_PG_URL`` when it is set (the shared one),
    else a throw-away scripts/postgres.sh server, stopped when the block ends."""
    if os.environ.get("CORTEX_TEST_PG_URL"):
        yield os.environ["CORTEX_TEST_PG_URL"]
        return
    script = str(ROOT / "scripts" / "postgres.sh")
    out = subprocess.run([script], capture_output=True, text=True, check=True, timeout=900)
    data_dir = out.stderr.rsplit("postgres data directory: ", 1)[1].split()[0]
    try:
        yield out.stdout.strip()
    finally:
        subprocess.run([script, "stop", data_dir], capture_output=True, check=False, timeout=120)


def fresh_db(server: str, *, toast_compression: str = "lz4") -> str:
    """A new, empty database on ``server``; its URL. Large values (documents, inputs, receipts)
    are compressed with ``toast_compression`` (``pglz``: PostgreSQL's default; ``lz4``: the
    setting the README recommends, several times cheaper to compress)."""
    import psycopg

    name = "cortex_bench_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute(f"ALTER DATABASE \"{name}\" SET default_toast_compression = '{toast_compression}'")
    return f"{server.rpartition('/')[0]}/{name}"


def drop_db(server: str, db_url: str) -> None:
    """Drop the database of ``db_url`` (connections closed by force)."""
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_url.rpartition("/")[2]}" WITH (FORCE)')


def seed_pg(db_url: str, n_versions: int) -> dict[str, Any]:
    """A catalogue of ``n_versions`` versions (10 per plugin) cloned from one real publish.

    The template is published through the API; its plugin, version, evidence and bundle rows are
    then cloned by ``INSERT ... SELECT`` over ``generate_series`` with the names spliced into the
    pre-rendered documents by ``replace()``, and the id sequences moved past the clones. The
    template's other rows (receipt, scan job) are removed: the clones have none.
    """
    from sqlalchemy import text

    engine = publish_template(db_url)

    started = time.perf_counter()
    n_plugins = max(1, n_versions // VERSIONS_PER_PLUGIN)
    per = VERSIONS_PER_PLUGIN
    latest = f"1.0.{per - 1}"

    def compact(doc: dict[str, Any]) -> str:
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    with engine.begin() as con:
        def row(table: str) -> dict[str, Any]:
            return dict(con.execute(text(f"SELECT * FROM {table}")).mappings().one())

        tp, tv, te, tb = row("plugin"), row("plugin_version"), row("evidence"), row("version_bundle")
        for table in ("decision_receipt", "scan_job", "evidence", "version_bundle", "plugin_version", "plugin"):
            con.execute(text(f"DELETE FROM {table}"))
        names = {"namespace": "@@NS@@", "name": "@@NAME@@"}
        full = {**names, "full_name": "@@NS@@/@@NAME@@"}
        templates = {
            "psum": compact({**json.loads(tp["summary_json"]), **full, "latest_version": latest}),
            "pdoc": compact({**json.loads(tp["document_json"]), **full, "latest_version": latest,
                             "versions": per}),
            "vsum": compact({**json.loads(tv["summary_json"]), **names, "version": "@@VER@@"}),
            "vdoc": compact({**json.loads(tv["document_json"]), **names, "version": "@@VER@@"}),
            "vinput": _input_template(tv["input_json"]),
        }

        def fill(tpl: str) -> str:
            return f"replace(replace(replace(CAST(:{tpl} AS text), '@@NS@@', ns), '@@NAME@@', nm), '@@VER@@', ver)"

        def clone(table: str, tmpl: dict[str, Any], overrides: dict[str, str], source: str,
                  params: dict[str, Any]) -> None:
            cols = list(tmpl)
            exprs = [overrides.get(c, f":t_{c}") for c in cols]
            params = {**params, **{f"t_{c}": tmpl[c] for c in cols if c not in overrides}}
            quoted = ", ".join(f'"{c}"' for c in cols)
            con.execute(text(f"{source} INSERT INTO {table} ({quoted}) SELECT {', '.join(exprs)} FROM r"), params)

        plugins = ("WITH r AS (SELECT i, 'ns' || lpad((i % 100)::text, 2, '0') AS ns, 'tool-' || i AS nm, "
                   "'' AS ver FROM generate_series(1, :count) AS i)")
        versions = (f"WITH r AS (SELECT i, (i - 1) / {per} + 1 AS pid, "
                    f"'ns' || lpad((((i - 1) / {per} + 1) % 100)::text, 2, '0') AS ns, "
                    f"'tool-' || ((i - 1) / {per} + 1) AS nm, '1.0.' || ((i - 1) % {per}) AS ver "
                    "FROM generate_series(1, :count) AS i)")
        clone("plugin", tp, {"id": "i", "namespace": "ns", "name": "nm", "key": "ns || '/' || nm",
                             "search_text": "ns || '/' || nm || ' ' || CAST(:t_search_text AS text)",
                             "latest_version": f"'{latest}'", "summary_json": fill("psum"),
                             "document_json": fill("pdoc")},
              plugins, {"count": n_plugins, "t_search_text": tp["search_text"], **templates})
        n = n_plugins * per
        clone("plugin_version", tv, {"id": "i", "plugin_id": "pid", "version": "ver", "input_json": fill("vinput"),
                                     "summary_json": fill("vsum"), "document_json": fill("vdoc")},
              versions, {"count": n, **templates})
        clone("evidence", te, {"id": "i", "version_id": "i"}, versions, {"count": n})
        clone("version_bundle", tb, {"version_id": "i"}, versions, {"count": n})
        for table in ("plugin", "plugin_version", "evidence"):
            con.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                             f"(SELECT max(id) FROM {table}))"))
    with engine.connect() as con:
        con.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return {"versions": n, "plugins": n_plugins, "seed_s": round(time.perf_counter() - started, 1)}


def _input_template(input_json: str) -> str:
    """The template's policy input with its plugin's names and version as placeholders (the
    decision receipt names the plugin and version of the input it decided)."""
    spliced = input_json
    for old, new in (('"document":{"name":"template","version":"1.0.0"',
                      '"document":{"name":"@@NAME@@","version":"@@VER@@"'),
                     ('"plugin":{"namespace":"acme","name":"template","version":"1.0.0","full_name":"acme/template"',
                      '"plugin":{"namespace":"@@NS@@","name":"@@NAME@@","version":"@@VER@@",'
                      '"full_name":"@@NS@@/@@NAME@@"')):
        if old not in spliced:
            raise RuntimeError(f"the template's policy input has no {old}")
        spliced = spliced.replace(old, new)
    return spliced


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return float(usage.ru_utime + usage.ru_stime)


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, with its waited-for children) of the processes of session
    ``pid`` (a worker started in a session of its own and its policy engine processes)."""
    total = 0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == pid:
                total += sum(int(f) for f in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def _postgres_cpu() -> float:
    """CPU seconds of every process named postgres (the server's backends, which die with their
    connections, are only counted while they live: a lower bound)."""
    total = 0.0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == "postgres":
                    fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                    total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except OSError:
                continue
    return total


def timed_retier(db_url: str, extra: list[str], batch: int) -> dict[str, Any]:
    """Run ``cortex registry retier`` once; wall time, its counts, its CPU seconds."""
    cpu0, load0 = _children_cpu(), os.getloadavg()[0]
    started = time.perf_counter()
    out = subprocess.run([*cli_command(), "registry", "retier", "--db", db_url, "--batch", str(batch), *extra],
                         capture_output=True, text=True, env=process_env(), check=False, timeout=3600)
    elapsed = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"retier exited {out.returncode}: {out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"seconds": round(elapsed, 2), "versions_per_s": round(result["versions"] / elapsed),
            "retier_cpu_s": round(_children_cpu() - cpu0, 2), "loadavg_1m_start": round(load0, 2),
            "loadavg_1m_end": round(os.getloadavg()[0], 2), "result": result}


def with_workers(db_url: str, n: int, batch: int, log_dir: Path) -> dict[str, Any]:
    """Start ``n`` workers (one job at a time each), wait until each printed its start line,
    then time a queued ``retier --wait``; the workers' CPU seconds during the run."""
    workers = [subprocess.Popen([*cli_command(), "registry", "worker", "--db", db_url, "--concurrency", "1"],
                                env=process_env(), stdout=(log_dir / f"w{n}-{i}.log").open("wb"),
                                stderr=subprocess.STDOUT, start_new_session=True)
               for i in range(n)]
    try:
        deadline = time.monotonic() + 120
        for i, w in enumerate(workers):
            while b"worker:" not in (log_dir / f"w{n}-{i}.log").read_bytes():
                if w.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker {i} did not start: {(log_dir / f'w{n}-{i}.log').read_text()}")
                time.sleep(0.2)
        time.sleep(2)  # imports done, listening on the queue
        cpu0 = [_proc_cpu(w.pid) for w in workers]
        pg0 = _postgres_cpu()
        run = timed_retier(db_url, ["--wait"], batch)
        run["worker_cpu_s"] = [round(_proc_cpu(w.pid) - c, 2) for w, c in zip(workers, cpu0, strict=True)]
        run["postgres_cpu_s_lower_bound"] = round(_postgres_cpu() - pg0, 2)
        return run
    finally:
        for w in workers:
            if w.poll() is None:
                os.killpg(w.pid, signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)
                w.wait()


def breakdown(db_url: str, batch: int) -> dict[str, Any]:
    """One more re-tier in this process, phase by phase (``Store.retier_start``, ``retier_decide``
    per batch on one policy-engine process, ``retier_apply``): where a version's time goes, in
    microseconds per version. Policy-engine CPU is split as the decider measures it (input
    building, decision, rendering of the documents and the receipt payload); this process's CPU
    is staging (reading the versions, sealing the receipts, writing the staged rows); the switch
    is wall time (the one write that checks every staged receipt and copies the staged rows)."""
    from cortex_trust.policy import load_policy_set
    from registry import make_engine
    from registry._retier import Decider
    from registry._store import Store

    engine = make_engine(db_url)
    store = Store(engine)
    policy_set = load_policy_set([], [], defaults=True)
    with Decider(policy_set, registry_name=store.registry_name) as decider:
        decider.start()
        t0, c0 = time.perf_counter(), time.process_time()
        run_id, batches = store.retier_start(policy_set=policy_set, now=datetime.now(UTC), batch=batch)
        t1, c1 = time.perf_counter(), time.process_time()
        for ids in batches:
            store.retier_decide(run_id, ids, decider=decider)
        t2, c2 = time.perf_counter(), time.process_time()
        result = store.retier_apply(run_id, decider=decider, now=datetime.now(UTC))
        t3, c3 = time.perf_counter(), time.process_time()
        stats = decider.stats
    engine.dispose()
    n = max(1, sum(map(len, batches)))

    def us(seconds: float) -> float:
        return round(seconds / n * 1e6, 1)

    return {"versions": n, "applied": result is not None, "us_per_version": {
        "start (wall)": us(t1 - t0),
        "engine: input building (CPU)": us(stats.build_cpu),
        "engine: decision (CPU)": us(stats.eval_cpu),
        "engine: rendering documents + receipt payload (CPU)": us(stats.render_cpu),
        "deciding phase (wall)": us(t2 - t1),
        "staging in this process: read, seal, write (CPU)": us(c2 - c1),
        "switch: check receipts, copy staged rows (wall)": us(t3 - t2),
        "switch in this process (CPU)": us(c3 - c2),
        "start in this process (CPU)": us(c1 - c0)}}


def bench(versions: int, batch: int, *, toast_compression: str = "lz4", in_process: bool = True,
          phases: bool = True) -> dict[str, Any]:
    """Seed a fresh database, run the re-tiers on it (in-process unless not ``in_process``, then
    1 and 2 workers, then the phase-by-phase re-tier when ``phases``), drop it."""
    with pg_server() as server:
        return _bench(server, versions, batch, toast_compression=toast_compression, in_process=in_process,
                      phases=phases)


def _bench(server: str, versions: int, batch: int, *, toast_compression: str, in_process: bool,
           phases: bool) -> dict[str, Any]:
    db_url = fresh_db(server, toast_compression=toast_compression)
    try:
        seeded = seed_pg(db_url, versions)
        print(json.dumps({"seeded": seeded}), flush=True)
        os.sync()
        with tempfile.TemporaryDirectory() as d:
            runs: dict[str, Any] = {}
            if in_process:
                runs["in_process_1"] = timed_retier(db_url, ["--in-process", "--workers", "1"], batch)
                print(json.dumps({"in_process_1": runs["in_process_1"]}), flush=True)
            for n in (1, 2):
                runs[f"workers_{n}"] = with_workers(db_url, n, batch, Path(d))
                print(json.dumps({f"workers_{n}": runs[f"workers_{n}"]}), flush=True)
            if phases:
                runs["breakdown"] = breakdown(db_url, batch)
                print(json.dumps({"breakdown": runs["breakdown"]}), flush=True)
    finally:
        drop_db(server, db_url)
    t1, t2 = runs["workers_1"]["seconds"], runs["workers_2"]["seconds"]
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpus": os.cpu_count(),
            "batch": batch, "toast_compression": toast_compression, "seed": seeded, **runs,
            "scaling_efficiency": round(t1 / t2 / 2, 2),
            "loadavg_after": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--versions", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=1000, help="versions per batch job")
    p.add_argument("--toast-compression", choices=("lz4", "pglz"), default="lz4",
                   help="the database's default_toast_compression")
    p.add_argument("--no-in-process", dest="in_process", action="store_false",
                   help="skip the in-process baseline (1 and 2 workers only)")
    p.add_argument("--no-breakdown", dest="phases", action="store_false",
                   help="skip the phase-by-phase re-tier at the end")
    p.add_argument("--out")
    args = p.parse_args()
    emit(bench(args.versions, args.batch, toast_compression=args.toast_compression, in_process=args.in_process,
               phases=args.phases), args.out)


def emit(report: dict[str, Any], out: str | None) -> None:
    """Print ``report`` as indented JSON, and write it to the file ``out`` when given."""
    print(json.dumps(report, indent=2))
    if out:
        Path(out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
