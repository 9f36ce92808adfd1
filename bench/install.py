"""Install benchmark (issue 5): from `cortex plugin install` to a container answering its first call.

Run:  .venv/bin/python bench/install.py [--rounds 5] [--json]

Needs the container engine and the local OCI registry (it runs scripts/podman.sh, which starts
them if they are not running). It builds the hello test plugin (tests/images/hello) under a name
of its own, pushes it to the local OCI registry, starts a real cortex registry on loopback as its
own process (temporary SQLite database) and publishes the plugin there with a bundle from the
test-only private Sigstore (bench/_published.py). Then, per round:

* **in-process breakdown** with the library, timing each step: ``resolve`` (registry lookups,
  version selection, version record), ``verify`` (bundle re-verified locally, registry evidence,
  revocation feed), ``decide`` (policy input + embedded engine), ``pull`` (the local image is
  removed first, so this is a real pull by digest with the digest and label checks), ``start``
  (run check with operation ``run`` + container start until the port listens), ``first call``;
* **whole process**: ``cortex plugin install --yes``, ``cortex plugin run`` and ``cortex plugin
  call`` as separate processes, as a user runs them;
* **call overhead**: ``cortex plugin call NAME health`` (a process that syncs the revocation
  feed and asks the policy before calling) against a direct HTTP GET of the same endpoint, both
  from a fresh ``python`` process (``python -c "import httpx; httpx.get(...)"``) and in-process.

Goal (issue 5): the decision steps (resolve, verify, decide) add under 0.5 s to pull and start.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._published import cli_command, container_env, process_env, published_hello


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _ms(x: float) -> str:
    return f"{x * 1000:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20, help="calls per round for the overhead")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile-call", action="store_true",
                        help="also print where one `cortex plugin call` process spends its time")
    args = parser.parse_args()

    with ExitStack() as stack:
        return _run(args, stack)


def _run(args: argparse.Namespace, stack: ExitStack) -> int:
    cenv = container_env()
    os.environ.update(cenv)

    import httpx

    from cortex_trust import __version__
    from cortex_trust.engine import EmbeddedEngine
    from cortex_trust.evidence import load_trust_root, production_trust_root
    from cortex_trust.install import CortexConfig, Installer, judge_install
    from cortex_trust.policy import load_policy_set
    from cortex_trust.runtime import connect, container_spec

    tmp = Path(tempfile.mkdtemp(prefix="cortex-bench-install-"))
    published = stack.enter_context(published_hello(tmp, cenv))
    image, sig, url, config_path = (published.image, published.sigstore, published.registry_url,
                                    published.config_path)
    name, container = published.name, published.container
    policy_set = load_policy_set()
    cli = cli_command()
    runtime = connect(cenv["DOCKER_HOST"])
    network = cenv.get("CORTEX_SANDBOX_NETWORK", "cortex-sandbox")
    roots = [production_trust_root(), load_trust_root(sig.trusted_root_path)]

    def remove_local_image() -> None:
        runtime.stop(container)
        subprocess.run(["podman", "rmi", "-f", image.pinned.split(":0.1.0")[0] + "@" + image.digest],
                       env={**os.environ, **cenv}, capture_output=True, check=False)

    steps: dict[str, list[float]] = {k: [] for k in (
        "resolve", "verify", "decide", "pull", "start", "first call", "total")}
    for i in range(args.rounds):
        remove_local_image()
        data_dir = tmp / f"data-{i}"
        t0 = time.perf_counter()
        with Installer(config=CortexConfig(registry=url), data_dir=data_dir,
                       engine_factory=lambda: EmbeddedEngine(policy_set), trusted_roots=roots,
                       cortex_version=__version__) as inst:
            now = datetime.now(UTC)
            plan = inst.plan(name, now=now)
            outcome = judge_install(plan, yes=True, allow_blocked=False)
            tp = time.perf_counter()
            inst.commit(plan, now=now, outcome=outcome,
                        pull=lambda p: runtime.pull_pinned(p.image, plugin=p.plugin,
                                                           version=p.version))
            pull = time.perf_counter() - tp
            ts = time.perf_counter()
            check = inst.check_run(name, now=now)
            spec = container_spec(check.decision, plugin=published.plugin, version="0.1.0",
                                  image=plan.image, internal_network=network)
            running = runtime.start(spec)
            start = time.perf_counter() - ts
        tc = time.perf_counter()
        resp = runtime.call(running, "/health")
        assert resp.status == 200, resp
        first = time.perf_counter() - tc
        total = time.perf_counter() - t0
        for k in ("resolve", "verify", "decide"):
            steps[k].append(plan.timings.get(k, 0.0))
        steps["pull"].append(pull)
        steps["start"].append(start)
        steps["first call"].append(first)
        steps["total"].append(total)
        runtime.stop(container)

    # Whole processes, as a user runs them.
    # Bytecode written and reused, or every process recompiles (PERFORMANCE.md).
    penv = process_env({**cenv, "CORTEX_CONFIG": str(config_path)})
    proc: dict[str, list[float]] = {k: [] for k in ("install", "run", "call", "total")}
    for i in range(args.rounds):
        remove_local_image()
        penv["CORTEX_DATA_DIR"] = str(tmp / f"proc-{i}")
        times = []
        for cmd in (["plugin", "install", name, "--yes", "--trusted-root",
                     str(sig.trusted_root_path)], ["plugin", "run", name],
                    ["plugin", "call", name, "health"]):
            t = time.perf_counter()
            subprocess.run(cli + cmd, env=penv, check=True, capture_output=True)
            times.append(time.perf_counter() - t)
        for k, v in zip(("install", "run", "call"), times, strict=True):
            proc[k].append(v)
        proc["total"].append(sum(times))
    # Call overhead against a running container (left running by the last round).
    running_now = runtime.running(container)
    assert running_now is not None
    url = f"{running_now.base_url}/health"
    overhead: dict[str, list[float]] = {k: [] for k in (
        "cortex plugin call (process)", "python -c httpx.get (process)", "httpx.get (in-process)")}
    with httpx.Client(trust_env=False) as client:
        for _ in range(args.calls):
            t = time.perf_counter()
            subprocess.run([*cli, "plugin", "call", name, "health"], env=penv, check=True,
                           capture_output=True)
            overhead["cortex plugin call (process)"].append(time.perf_counter() - t)
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c",
                            f"import httpx; httpx.get({url!r}, trust_env=False).raise_for_status()"],
                           env=penv, check=True, capture_output=True)
            overhead["python -c httpx.get (process)"].append(time.perf_counter() - t)
            t = time.perf_counter()
            client.get(url).raise_for_status()
            overhead["httpx.get (in-process)"].append(time.perf_counter() - t)
    if args.profile_call:
        prof = tmp / "call.prof"
        subprocess.run([sys.executable, "-m", "cProfile", "-o", str(prof), cli[0], "plugin", "call",
                        name, "health"], env=penv, check=True, capture_output=True)
        import pstats

        pstats.Stats(str(prof)).sort_stats("cumulative").print_stats(30)
    runtime.stop(container)

    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}",
        "rounds": args.rounds,
        "in_process_ms": {k: round(_median(v) * 1000, 1) for k, v in steps.items()},
        "processes_ms": {k: round(_median(v) * 1000, 1) for k, v in proc.items()},
        "call_ms": {k: round(_median(v) * 1000, 1) for k, v in overhead.items()},
    }
    decision_steps = sum(_median(steps[k]) for k in ("resolve", "verify", "decide"))
    result["decision_steps_ms"] = round(decision_steps * 1000, 1)
    result["goal_met"] = decision_steps < 0.5
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['machine']}, {args.rounds} rounds, medians\n")
    print("| step (in-process) | ms |\n|---|---:|")
    for k, vals in steps.items():
        print(f"| {k} | {_ms(_median(vals))} |")
    print(f"\ndecision steps (resolve + verify + decide): {_ms(decision_steps)} ms "
          f"({'under' if decision_steps < 0.5 else 'OVER'} the 500 ms goal)\n")
    print("| command (whole process) | ms |\n|---|---:|")
    for k, vals in proc.items():
        print(f"| {k} | {_ms(_median(vals))} |")
    print("\n| one call of /health | ms |\n|---|---:|")
    for k, vals in overhead.items():
        print(f"| {k} | {_ms(_median(vals))} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
