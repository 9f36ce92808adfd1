"""Decision benchmark (issue 2): per-decision latency and decisions/s on one core.

Run:  .venv/bin/python bench/decisions.py [--n 10000] [--cpu 0] [--seed 0] [--json]
      .venv/bin/python bench/decisions.py --baseline DIR   # also: old policies vs these, paired

Generates ``--n`` schema-valid policy inputs with the seeded generator of ``tests/support/strategies.py``
(the same shapes the property and oracle tests use), pins the process to one core and measures,
in the same run and over the same inputs:

* ``decide``    – ``cortex_trust.engine.decide(EmbeddedEngine, PolicyInput)``: what every flow
                  pays (input serialisation, evaluation, strict parsing of the decision). The
                  shipped policy set runs in regorus' compiled mode (docs/policy-contract.md §9).
* ``decide (interpreter)`` – the same with ``compiled=False`` (what organization policies get).
* ``evaluate``  – ``EmbeddedEngine.evaluate(input_json)`` alone: the interpreter, JSON text in.
* ``compiled``  – the compiled program alone (``Program`` + ``Rvm``), input as JSON text.
* ``floor``     – regorus' fixed cost per decision for these inputs: ``set_input_json`` and a
                  one-line rule. No policy, however small, can decide faster in regorus.
* ``naive``     – the baseline adapter: a new regorus ``Engine`` per decision (parse policies,
                  load data, evaluate); the first ``--naive-n`` inputs (default 1,000).

``--baseline DIR`` also evaluates the same inputs with another copy of the default policies
(``DIR`` holds ``cortex/*.rego`` and ``data.yaml``, e.g. an older revision exported with
``git archive``), both compiled, interleaved with the current ones in chunks of 20 inputs so
that load on the shared machine hits both alike, and requires byte-identical decisions.

The inputs are validated before timing, and every variant's decisions are checked against the
embedded engine's (a benchmark that measures wrong answers is worthless). Goal: >= 20,000
decisions/s on one core for the embedded engine.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import regorus  # noqa: E402

from cortex_trust.engine import decide  # noqa: E402
from cortex_trust.policy import PolicyInput  # noqa: E402
from tests.support.opa_oracle import TestPolicySet, project_engine  # noqa: E402
from tests.support.strategies import random_documents  # noqa: E402

GOAL_PER_S = 20_000
ENTRY = "data.cortex.decision"


def _pin(cpu: int) -> str:
    try:
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError) as e:  # not Linux, or the cpu does not exist
        return f"not pinned ({e})"
    return f"pinned to cpu {cpu}"


def _measure(fn: Callable[[Any], Any], items: list[Any]) -> tuple[list[int], float, float,
                                                                list[Any]]:
    """Per-call wall ns, wall seconds and CPU seconds for the whole loop, and the results.

    The machines are shared: wall-clock numbers include time the core spent on other
    processes, so CPU time (this process, pinned to one core) is reported beside them.
    """
    out: list[Any] = []
    lat: list[int] = []
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()  # a collection in the middle would be charged to one unlucky decision
    try:
        c0 = time.process_time()
        t0 = clock()
        for it in items:
            s = clock()
            out.append(fn(it))
            lat.append(clock() - s)
        total = (clock() - t0) / 1e9
        cpu = time.process_time() - c0
    finally:
        gc.enable()
    return lat, total, cpu, out


def _row(name: str, lat: list[int], total: float, cpu: float) -> dict[str, Any]:
    q = statistics.quantiles(lat, n=100, method="inclusive")
    return {"variant": name, "n": len(lat), "p50_us": q[49] / 1000, "p99_us": q[98] / 1000,
            "mean_us": statistics.fmean(lat) / 1000, "per_s": len(lat) / total,
            "per_cpu_s": len(lat) / cpu if cpu > 0 else float("nan")}


class _Floor:
    """regorus' fixed cost per decision: set the input, evaluate a one-line rule."""

    def __init__(self) -> None:
        self._engine = regorus.Engine()
        self._engine.add_policy("floor.rego", "package floor\nx := input.context.operation\n")

    def evaluate(self, input_json: str) -> Any:
        self._engine.set_input_json(input_json)
        return self._engine.eval_rule_as_json("data.floor.x")


def _naive(ps: TestPolicySet) -> Callable[[str], Any]:
    data_json = json.dumps(ps.data)

    def evaluate(input_json: str) -> Any:
        e = regorus.Engine()
        for name, text in ps.modules:
            e.add_policy(name, text)
        e.add_data_json(data_json)
        e.set_input_json(input_json)
        rows = json.loads(e.eval_query_as_json(ENTRY)).get("result") or []
        return rows[0]["expressions"][0]["value"] if rows else None

    return evaluate


_RULE_HEAD = re.compile(r"^([a-z_][a-zA-Z0-9_]*)\s*(?::=|contains\b|if\b|=)", re.M)


def _profile_rules(ps: TestPolicySet, input_jsons: list[str]) -> list[tuple[float, str]]:
    """Inclusive CPU µs per evaluation of every top-level rule of package cortex (where the
    time goes), most expensive first. Functions (rules with arguments) are skipped."""
    engine = regorus.Engine()
    for name, text in ps.modules:
        engine.add_policy(name, text)
    engine.add_data_json(json.dumps(ps.data))
    names = sorted({m.group(1) for _, text in ps.modules for m in _RULE_HEAD.finditer(text)
                    if not m.group(1).startswith("test_")})
    out = []
    for rule in ["(set_input_json only)", *names]:
        c0 = time.process_time()
        try:
            for text in input_jsons:
                engine.set_input_json(text)
                if not rule.startswith("("):
                    engine.eval_rule_as_json(f"data.cortex.{rule}")
        except RuntimeError:
            continue  # not a rule of package cortex
        out.append(((time.process_time() - c0) / len(input_jsons) * 1e6, rule))
    return sorted(out, reverse=True)


def _paired(baseline_dir: Path, current: Any, input_jsons: list[str],
            chunk: int = 20) -> tuple[dict[str, Any], int]:
    """CPU µs per decision of the policies in ``baseline_dir`` and of ``current`` (both compiled),
    measured interleaved over the same inputs; and how many decisions differ."""
    from cortex_trust.engine._regorus import Compiled
    from cortex_trust.policy import load_policy_set

    bps = load_policy_set([baseline_dir], defaults=False)
    base = Compiled([(m.name, m.text) for m in bps.modules], bps.data_json())
    engines = {"baseline": base, "current": current}
    cpu = dict.fromkeys(engines, 0.0)
    lat: dict[str, list[int]] = {k: [] for k in engines}
    outs: dict[str, list[str]] = {k: [] for k in engines}
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        for i in range(0, len(input_jsons), chunk):
            part = input_jsons[i:i + chunk]
            order = list(engines) if (i // chunk) % 2 == 0 else list(reversed(engines))
            for name in order:
                e = engines[name]
                c0 = time.process_time()
                for t in part:
                    s = clock()
                    v = e.evaluate(t)
                    lat[name].append(clock() - s)
                    outs[name].append(json.dumps(v))
                cpu[name] += time.process_time() - c0
    finally:
        gc.enable()
    diff = sum(1 for a, b in zip(outs["baseline"], outs["current"], strict=True) if a != b)
    rows = {k: {"revision": (bps.revision if k == "baseline" else ""), "cpu_us": cpu[k] / len(
        input_jsons) * 1e6, "per_cpu_s": len(input_jsons) / cpu[k] if cpu[k] > 0 else float("nan"),
        "p50_us": statistics.median(lat[k]) / 1000,
        "p99_us": statistics.quantiles(lat[k], n=100, method="inclusive")[98] / 1000}
        for k in engines}
    return rows, diff


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--naive-n", type=int, default=1000,
                    help="inputs for the naive baseline (slow: it reparses every module per call)")
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the table as JSON")
    ap.add_argument("--baseline", type=Path, metavar="DIR",
                    help="a copy of the default policies (cortex/*.rego + data.yaml) to compare with "
                         "these, interleaved on the same inputs; decisions must be identical")
    ap.add_argument("--rules", action="store_true",
                    help="also print the CPU cost of each top-level rule (where time goes)")
    args = ap.parse_args()

    pinned = _pin(args.cpu)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path(
        "/proc/loadavg").exists() else "?"
    docs = list(random_documents(args.n, seed=args.seed))
    inputs = [PolicyInput.model_validate(d) for d in docs]
    input_jsons = [pi.to_json() for pi in inputs]
    engine, ps = project_engine()
    from cortex_trust.engine import EmbeddedEngine

    interpreter = EmbeddedEngine(engine.policy_set, compiled=False)
    compiled_note = f"embedded engine mode: {engine.mode}"

    # Warm up every variant (first calls allocate caches), then measure.
    variants: list[tuple[str, Callable[[Any], Any], list[Any]]] = [
        (f"decide ({engine.mode}, end to end)", lambda pi: decide(engine, pi), inputs),
        ("decide (interpreter, end to end)", lambda pi: decide(interpreter, pi), inputs),
        ("evaluate (interpreter, JSON in/out)", engine.evaluate, input_jsons),
        ("compiled (Program + Rvm, JSON in/out)", engine._compiled().evaluate, input_jsons),
        ("floor (set_input_json + one-line rule)", _Floor().evaluate, input_jsons),
        ("naive (new Engine per decision)", _naive(ps), input_jsons[:args.naive_n]),
    ]

    rows = []
    decided_first: list[Any] = []
    reference: list[Any] | None = None
    mismatches: dict[str, int] = {}
    for name, fn, items in variants:
        for it in items[:200]:
            fn(it)
        lat, total, cpu, results = _measure(fn, items)
        rows.append(_row(name, lat, total, cpu))
        # Compiled mode answers with the decision's JSON text (DecisionText): compare values.
        values = [r.to_json_dict() if hasattr(r, "to_json_dict")
                  else json.loads(r) if isinstance(r, str) else r for r in results]
        if name.startswith("decide"):
            failed = sum(1 for r in results if r.failed)
            if failed:
                mismatches[name] = failed  # fail-closed blocks: the engine could not decide
            decided = [r.to_json_dict() for r in results]
            if name.startswith("decide (interpreter") and decided != decided_first:
                mismatches[name] = sum(1 for a, b in zip(decided_first, decided, strict=True) if a != b)
            decided_first = decided_first or decided
            continue
        if name.startswith("floor"):
            continue  # not a decision
        if reference is None:
            reference = values
        else:
            bad = sum(1 for a, b in zip(reference, values, strict=False) if a != b)
            if bad:
                mismatches[name] = bad

    paired: dict[str, Any] | None = None
    if args.baseline is not None:
        paired, diff = _paired(args.baseline, engine._compiled(), input_jsons)
        if diff:
            mismatches["baseline"] = diff

    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, " \
              f"Python {platform.python_version()}, regorus {_version('gordon-to-regorus')}"
    if args.json:
        print(json.dumps({"machine": machine, "pinning": pinned, "load": load, "rows": rows,
                          "mismatches": mismatches, "note": compiled_note, "baseline": paired},
                         indent=2))
    else:
        print(f"# {args.n} generated inputs (seed {args.seed}); {pinned}; {machine}")
        print(f"# policies: {len(ps.modules)} modules from policies/, revision {ps.revision[:19]}")
        print(f"# load average before the run: {load}")
        print("| variant | n | p50 µs | p99 µs | mean µs | decisions/s (wall) "
              "| decisions per CPU-second |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['variant']} | {r['n']} | {r['p50_us']:.1f} | {r['p99_us']:.1f} | "
                  f"{r['mean_us']:.1f} | {r['per_s']:,.0f} | {r['per_cpu_s']:,.0f} |")
        if compiled_note:
            print(f"# {compiled_note}")
        for name, bad in mismatches.items():
            print(f"# WARNING {name}: {bad} results differ from the embedded engine / failed")
        best = max(rows[0]["per_s"], rows[0]["per_cpu_s"])
        print(f"# goal >= {GOAL_PER_S:,}/s for decide(): {'met' if best >= GOAL_PER_S else 'NOT met'}")
    if paired is not None and not args.json:
        b, c = paired["baseline"], paired["current"]
        print(f"\n# paired, interleaved: baseline {args.baseline} ({b['revision'][:19]}) vs current")
        print("| policies | CPU µs per decision | decisions per CPU-second | p50 µs | p99 µs |")
        print("|---|---:|---:|---:|---:|")
        for name, r in paired.items():
            print(f"| {name} | {r['cpu_us']:.1f} | {r['per_cpu_s']:,.0f} | {r['p50_us']:.1f} | "
                  f"{r['p99_us']:.1f} |")
        print(f"# speed-up {b['cpu_us'] / c['cpu_us']:.2f}x; decisions differing: {mismatches.get('baseline', 0)}")
    if args.rules:
        print("\n# inclusive CPU µs per evaluation of each rule (200 inputs), top 25")
        for us, rule in _profile_rules(ps, input_jsons[:200])[:25]:
            print(f"{us:10.1f}  {rule}")
    return 1 if mismatches else 0


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    raise SystemExit(main())
