"""Signed index (TUF) benchmarks: build, one publish, client resolve, static serving.

    python bench/index.py all --sizes 10000,100000 [--seconds 3] [--keep DIR] [--out FILE]

For each size N (plugin versions, 10 per plugin) a registry catalogue is seeded the way
bench/registry_bench.py seeds it (one real publish cloned in SQLite), then:

  build     `replace_all(all_documents(store))` on a new index with 256 hashed bins (what
            `cortex registry index build` does): wall time, files, bytes of documents and of
            metadata;
  publish   one publish's changes (a new version: its document and bundle, the version list, the
            plugin document and its catalogue shard) applied with `update()`: time and bytes
            re-signed, median of 7 (of 3 with 2 bins), with 256 bins and after re-delegating the same index to 2
            bins (the fewest the repository allows: each bin holds half the catalogue, which is
            what signing without hashed bins costs), and after re-delegating it to as many bins
            as keep about a hundred documents in each;
  client    `get_version` through `IndexClient` (TUF, served by nginx) cold (empty trust cache:
            root, timestamp, snapshot, targets, one bin, the document), warm (trust cache kept:
            timestamp, then the document from the verified cache; and a document not yet
            cached), and through `RegistryClient` on the registry's API; a new client per call,
            interleaved, median of 30;
  serve     nginx (scripts/nginx.sh with NGINX_FILE_CACHE=1, pinned to core 0) serving 1,000 random version documents of
            the index vs the same nginx serving one plain file of their median size vs the
            registry's API (same core) serving the same versions; the load generator of
            bench/registry_bench.py on core 1, interleaved in 0.25 s slices.

Only ratios measured in the same run hold on these shared machines.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import registry_bench as rb  # noqa: E402  (bench/ is not a package)

NGINX = ROOT / "scripts" / "nginx.sh"
PER = rb.VERSIONS_PER_PLUGIN


def _store(db_url: str) -> tuple[Any, Any]:
    from registry import make_engine
    from registry._store import Store

    engine = make_engine(db_url)
    return engine, Store(engine, registry_name="bench")


def _tree_bytes(path: Path) -> tuple[int, int]:
    files = size = 0
    for p in path.rglob("*"):
        if p.is_file():
            files += 1
            size += p.stat().st_size
    return files, size


def build(db_url: str, out: Path, keys: Path, *, bins: int = 256) -> tuple[Any, dict[str, Any]]:
    """A new index of the catalogue in ``db_url``: the repository and what it cost."""
    from registry._index import IndexRepository, KeyRing, all_documents

    repo = IndexRepository(out, KeyRing(keys))
    now = datetime.now(UTC)
    repo.create(bins=bins, now=now)
    engine, store = _store(db_url)
    try:
        t0 = time.perf_counter()
        stats = repo.replace_all(all_documents(store), now=now)
        elapsed = time.perf_counter() - t0
    finally:
        engine.dispose()
    md_files, md_bytes = _tree_bytes(repo.metadata)
    doc_files, doc_bytes = _tree_bytes(repo.targets_dir)
    return repo, {"build_s": round(elapsed, 1), "documents": stats.documents,
                  "bins": bins, "metadata_files": md_files, "metadata_mb": round(md_bytes / 1e6, 1),
                  "document_files": doc_files, "documents_mb": round(doc_bytes / 1e6, 1),
                  "bytes_signed_mb": round(stats.bytes_signed / 1e6, 1)}


def publish_changes(repo: Any, plugin: int, release: int) -> dict[str, bytes]:
    """What publishing ``tool-<plugin>`` version 1.1.<release> changes in the index."""
    from cortex_trust.sources import IndexLayout

    ns, name = f"ns{plugin % 100:02d}", f"tool-{plugin}"
    new = f"1.1.{release}"

    def doc(path: str) -> bytes:
        data = repo.document(path)
        assert data is not None, path
        return bytes(data)

    version = doc(IndexLayout.version(ns, name, "1.0.0")).replace(b'"1.0.0"', f'"{new}"'.encode())
    bundle = doc(IndexLayout.bundle(ns, name, "1.0.0"))
    versions = json.loads(doc(IndexLayout.versions(ns, name)))
    versions["items"].append({**versions["items"][-1], "version": new})
    plugin_doc = json.loads(doc(IndexLayout.plugin(ns, name)))
    plugin_doc.update(latest_version=new, versions=plugin_doc["versions"] + 1)
    shard = IndexLayout.catalogue(IndexLayout.shard(f"{ns}/{name}"))
    page = json.loads(doc(shard))
    for item in page["items"]:
        if item["name"] == name and item["namespace"] == ns:
            item["latest_version"] = new
    enc = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
    return {IndexLayout.version(ns, name, new): version,
            IndexLayout.bundle(ns, name, new): bundle,
            IndexLayout.versions(ns, name): enc(versions).encode(),
            IndexLayout.plugin(ns, name): enc(plugin_doc).encode(),
            shard: enc(page).encode()}


def publish_cost(repo: Any, plugins: int, *, runs: int = 7, start: int = 0) -> dict[str, Any]:
    """Median time and bytes re-signed of one publish (``runs`` publishes of random plugins)."""
    rng = random.Random(17 + start)
    times, signed, bins = [], [], []
    for k in range(runs):
        changes = publish_changes(repo, rng.randint(1, plugins), start + k)
        t0 = time.perf_counter()
        stats = repo.update(changes, now=datetime.now(UTC))
        times.append(time.perf_counter() - t0)
        signed.append(stats.bytes_signed)
        bins.append(stats.bins_signed)
    return {"ms": round(statistics.median(times) * 1000, 1),
            "kb_signed": round(statistics.median(signed) / 1000, 1),
            "bins_signed": statistics.median(bins)}


def redelegate(repo: Any, *, bins: int) -> float:
    """Delegate the same documents to ``bins`` bins (what ``replace_all(..., bins=)`` does,
    from the signed lengths and hashes instead of re-reading every document); seconds."""
    from registry._index import IndexStats

    t0 = time.perf_counter()
    with repo._locked():
        snapshot = repo.snapshot()
        documents: dict[str, Any] = {}
        for role in repo.bin_names():
            documents.update(repo._bin(role, snapshot).signed.targets)
        previous = {name: meta.version for name, meta in snapshot.signed.meta.items()}
        repo._delegate(repo.root(), bit_length=bins.bit_length() - 1, now=datetime.now(UTC),
                       documents=documents, stats=IndexStats(), previous=previous,
                       targets_version=previous["targets.json"] + 1)
    assert len(repo.bin_names()) == bins
    return round(time.perf_counter() - t0, 1)


def _start_nginx(root: Path) -> str:
    cmd = [*rb._taskset(0), str(NGINX), str(root)]
    return subprocess.run(cmd, capture_output=True, text=True, check=True,
                          env={**os.environ, "NGINX_FILE_CACHE": "1"}).stdout.strip()


def _start_api(db_url: str, reference_bytes: int) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    port = rb._free_port()
    proc = subprocess.Popen([*rb._taskset(0), sys.executable, str(ROOT / "bench" / "registry_bench.py"),
                             "serve", "--db", db_url, "--port", str(port),
                             "--reference-bytes", str(reference_bytes)])
    deadline = time.monotonic() + 120
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the registry API did not start") from None
            time.sleep(0.2)


def client_bench(index_url: str, api_url: str, plugins: int, work: Path, *,
                 runs: int = 30) -> dict[str, Any]:
    """Median ms of one ``get_version`` (new client each call): TUF cold, TUF warm (cached
    document, and a new one), the plain API."""
    from cortex_trust.sources import IndexClient, RegistryClient

    rng = random.Random(5)
    warm_cache = work / "warm"
    with IndexClient(index_url, cache_dir=warm_cache) as c:
        c.get_version("ns01", "tool-1", "1.0.0")
    times: dict[str, list[float]] = {"tuf_cold": [], "tuf_warm_cached": [], "tuf_warm_new": [],
                                     "api": []}
    for k in range(runs):
        i = rng.randint(2, plugins)
        ns, name, v = f"ns{i % 100:02d}", f"tool-{i}", f"1.0.{i % PER}"
        for kind in times:
            t0 = time.perf_counter()
            if kind == "api":
                with RegistryClient(api_url) as r:
                    r.get_version(ns, name, v)
            elif kind == "tuf_cold":
                with IndexClient(index_url, cache_dir=work / f"cold-{k}") as c:
                    c.get_version(ns, name, v)
            elif kind == "tuf_warm_cached":
                with IndexClient(index_url, cache_dir=warm_cache) as c:
                    c.get_version("ns01", "tool-1", "1.0.0")
            else:
                with IndexClient(index_url, cache_dir=warm_cache) as c:
                    c.get_version(ns, name, v)
            times[kind].append(time.perf_counter() - t0)
    return {k: round(statistics.median(v) * 1000, 2) for k, v in times.items()}


def serve_bench(repo: Any, root: Path, nginx_url: str, api_url: str, plugins: int, *,
                seconds: float, concurrency: int) -> dict[str, Any]:
    """req/s of nginx serving index documents, nginx serving one plain file of their median
    size, and the API serving the same versions, interleaved in one load run."""
    from cortex_trust.sources import IndexLayout

    rng = random.Random(4)
    succinct = repo._succinct()
    snapshot = repo.snapshot()
    prefix = "/" + repo.dir.relative_to(root).as_posix()
    docs, api, sizes = [], [], []
    for _ in range(1000):
        i = rng.randint(1, plugins)
        ns, name, v = f"ns{i % 100:02d}", f"tool-{i}", f"1.0.{i % PER}"
        path = IndexLayout.version(ns, name, v)
        info = repo._bin(succinct.get_role_for_target(path), snapshot).signed.targets[path]
        file = repo._target_file(path, info.hashes["sha256"])
        docs.append(f"{prefix}/targets/{file.relative_to(repo.targets_dir).as_posix()}")
        api.append(f"/api/v1/plugins/{ns}/{name}/versions/{v}")
        sizes.append(info.length)
    plain = root / "plain.json"
    plain.write_bytes(b"x" * int(statistics.median(sizes)))
    plain.chmod(0o644)
    groups = {"nginx index documents": (nginx_url, docs),
              "nginx plain file": (nginx_url, ["/plain.json"]),
              "registry API": (api_url, api)}
    out = subprocess.run([*rb._taskset(1), sys.executable, str(ROOT / "bench" / "registry_bench.py"),
                          "load", "--groups", "-", "--seconds", str(seconds), "--warmup", "0.5",
                          "--concurrency", str(concurrency)],
                         input=json.dumps(groups), capture_output=True, text=True, check=True,
                         timeout=seconds * 20 + 120)
    got = json.loads(out.stdout)
    plain_rps = got["nginx plain file"]["rps"]
    return {"document_bytes_median": int(statistics.median(sizes)),
            **{k: {f: v[f] for f in ("rps", "p50_ms", "p99_ms", "client_cpu")} for k, v in got.items()},
            "documents_vs_plain": round(got["nginx index documents"]["rps"] / plain_rps, 2),
            "api_vs_plain": round(got["registry API"]["rps"] / plain_rps, 3)}


def run(sizes: list[int], *, seconds: float, concurrency: int, keep: Path | None,
        tmp: str | None) -> dict[str, Any]:
    report: dict[str, Any] = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "sizes": {}}
    with tempfile.TemporaryDirectory(dir=tmp) as scratch:
        work = Path(scratch)
        work.chmod(0o755)  # nginx's workers (nobody) read the trees below
        dbs = keep or work
        dbs.mkdir(parents=True, exist_ok=True)
        nginx_url = _start_nginx(work)
        try:
            for size in sizes:
                db_url = f"sqlite:///{dbs}/bench-{size}.db"
                info_file = dbs / f"bench-{size}.json"
                if keep and info_file.exists():
                    seeded = json.loads(info_file.read_text())
                else:
                    Path(db_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
                    seeded = {"db_url": db_url, **rb.seed(db_url, size)}
                    info_file.write_text(json.dumps(seeded))
                os.sync()
                plugins = seeded["plugins"]
                repo, built = build(db_url, work / str(size) / "www", work / str(size) / "keys")
                print(json.dumps({size: {"build": built}}), flush=True)
                entry: dict[str, Any] = {"build": built,
                                         "publish_256_bins": publish_cost(repo, plugins)}
                api, api_url = _start_api(db_url, 2000)
                try:
                    index_url = f"{nginx_url}/{size}/www"
                    entry["client_ms"] = client_bench(index_url, api_url, plugins,
                                                      work / str(size) / "clients")
                    entry["serve"] = serve_bench(repo, work, nginx_url, api_url, plugins,
                                                 seconds=seconds, concurrency=concurrency)
                finally:
                    api.terminate()
                    api.wait(30)
                entry["redelegate_to_2_bins_s"] = redelegate(repo, bins=2)
                entry["publish_2_bins"] = publish_cost(repo, plugins, runs=3, start=100)
                # As many bins as keep about a hundred documents in each.
                scaled = 1 << max(1, (built["documents"] // 100 - 1).bit_length())
                entry["redelegate_to_scaled_bins_s"] = redelegate(repo, bins=scaled)
                entry[f"publish_{scaled}_bins"] = publish_cost(repo, plugins, start=200)
                print(json.dumps({size: entry}), flush=True)
                report["sizes"][size] = entry
        finally:
            subprocess.run([str(NGINX), "stop", str(work)], check=False)
    report["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("all")
    a.add_argument("--sizes", default="10000,100000")
    a.add_argument("--seconds", type=float, default=3, help="seconds of load per target")
    a.add_argument("--concurrency", type=int, default=8)
    a.add_argument("--keep", type=Path, metavar="DIR", help="keep the seeded databases in DIR")
    a.add_argument("--tmp", help="directory for the indexes")
    a.add_argument("--out")
    args = p.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the clients; servers on core 0
    report = run([int(x) for x in args.sizes.split(",")], seconds=args.seconds,
                 concurrency=args.concurrency, keep=args.keep, tmp=args.tmp)
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
