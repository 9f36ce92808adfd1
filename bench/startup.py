"""Start-up benchmark (issue 13): whole ``cortex`` processes against a bare process doing the same work.

Run:  python bench/startup.py [--runs 20]            # help and lint (no containers needed)
      python bench/startup.py --call [--runs 20]     # also `cortex plugin call` (Podman)
      python bench/startup.py --call --only-call --json
      python bench/startup.py --call --baseline /tmp/base   # also every cortex command from another
                                                            # tree (git archive of main): before/after

Every command is a fresh process, run the way a user runs it (the ``cortex`` console script
beside this interpreter, importing this tree; bytecode written and reused). The variants are
interleaved: each round runs every variant once, in an order rotated from round to round, after one
warm-up round. Each comparison's ratio is median over median, measured in the same rounds, because
the machine is shared and absolute times move between runs.

Comparisons (each ``cortex`` command against the bare process that anchors it):

* ``cortex --help``, ``cortex plugin --help`` and ``cortex plugin call --help`` against
  ``python -c "import typer"`` (the help text comes from typer; the goal is the bare import);
* ``cortex manifest lint FILE`` against ``python -c`` calling ``cortex_trust.manifest.load_manifest``
  on the same file and printing the same line (the library's work without the CLI);
* with ``--call``: ``cortex plugin call acme/hello-bench-<hex> health`` against ``python -c`` importing httpx and
  sending one ``GET`` of the same endpoint (``httpx.get``: the HTTP client cortex itself uses; a
  ``urllib.request`` process is shown as well). This needs the container engine and the local OCI
  registry (scripts/podman.sh, started if needed): the hello test plugin is built, published to a
  real registry process (bench/_published.py), installed and run with ``cortex`` before the rounds.
  ``cortex plugin call`` does more than the anchor by design: it syncs the plugin's revocation
  feed with the registry, asks the policy (operation ``run``) and asks the engine whether the
  container still runs at that address under the decided sandbox, then sends the same request.

With ``--baseline DIR`` every ``cortex`` command is also run from another source tree (e.g. ``git
archive`` of main) in the same rounds, compared with the same anchor: before and after measured
together. For ``plugin call`` a second plugin is published, installed and run by that tree.

Goals (issue 13): ``cortex --help`` <= 1.3x ``import typer``; ``cortex plugin call`` <= 1.5x the bare
httpx process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._published import ROOT, Published, cli_command, container_env, process_env, published_hello

if TYPE_CHECKING:
    from cortex_trust.runtime import ContainerRuntime

MANIFEST = ROOT / "examples" / "plugins" / "hello" / "manifest.yaml"
GOALS = {"cortex --help": 1.3, "cortex plugin call": 1.5}


@dataclass(frozen=True)
class Variant:
    """One command measured as a whole process; ``anchor`` names the variant it is compared with."""

    label: str
    argv: list[str]
    anchor: str | None = None
    #: Exit codes that count as success (``--help`` of a group exits 0; lint of a valid file 0).
    ok: tuple[int, ...] = (0,)
    #: Another source tree to import cortex from (``--baseline``), instead of this one.
    tree: str | None = None


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def help_variants() -> list[Variant]:
    """The no-container comparisons."""
    cli = cli_command()
    bare_lint = ("import sys; from pathlib import Path; from cortex_trust.manifest import load_manifest; "
                 f"p = {str(MANIFEST)!r}; m = load_manifest(Path(p)); print(f'ok: {{p}} ({{m.name}}@{{m.version}})')")
    return [
        Variant("python -c pass", _py("pass")),
        Variant("import typer", _py("import typer")),
        Variant("cortex --help", [*cli, "--help"], anchor="import typer"),
        Variant("cortex plugin --help", [*cli, "plugin", "--help"], anchor="import typer"),
        Variant("cortex plugin call --help", [*cli, "plugin", "call", "--help"], anchor="import typer"),
        Variant("load_manifest (bare)", _py(bare_lint)),
        Variant("cortex manifest lint", [*cli, "manifest", "lint", str(MANIFEST)],
                anchor="load_manifest (bare)"),
    ]


def call_variants(target: Target) -> list[Variant]:
    """The ``plugin call`` comparison against one GET of the plugin's health endpoint; with a
    baseline tree, its ``plugin call`` of the second plugin (installed and run by that tree)."""
    url = target.health_url()
    main, *others = target.installs
    variants = [
        Variant("httpx.get (bare)", _py(f"import httpx; httpx.get({url!r}, trust_env=False).raise_for_status()")),
        Variant("urllib GET (bare)", _py(f"import urllib.request; urllib.request.urlopen({url!r}, timeout=10).read()")),
        Variant("cortex plugin call", [*cli_command(), "plugin", "call", main.name, "health"],
                anchor="httpx.get (bare)"),
    ]
    variants += [Variant("cortex plugin call (baseline)", [*cli_command(), "plugin", "call", other.name, "health"],
                         anchor="httpx.get (bare)", tree=other.tree) for other in others]
    return variants


class _Failed(Exception):
    """A measured command did not exit as expected."""


def with_baseline(variants: list[Variant], tree: str | None) -> list[Variant]:
    """``variants`` and, with ``tree``, each ``cortex`` command again run from that tree (labelled
    ``(baseline)``, compared with the same anchor): before and after in the same rounds."""
    if tree is None:
        return variants
    base = [dataclasses.replace(v, label=f"{v.label} (baseline)", tree=tree) for v in variants
            if v.anchor is not None]
    return [*variants, *base]


def _run_once(v: Variant, env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run of ``v``."""
    if v.tree is not None:
        rest = [p for p in env["PYTHONPATH"].split(os.pathsep) if p != str(ROOT)]
        env = {**env, "PYTHONPATH": os.pathsep.join([v.tree, *rest])}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(v.argv, env=env, capture_output=True, timeout=300, check=False)
    elapsed = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if proc.returncode not in v.ok:
        raise _Failed(f"{v.label} exited {proc.returncode}:\n{proc.stderr.decode(errors='replace')[-2000:]}")
    return elapsed, cpu


def measure(make: Callable[[], list[Variant]], env: dict[str, str], runs: int, *,
            recover: Callable[[], None] | None = None
            ) -> tuple[list[Variant], dict[str, list[tuple[float, float]]], int]:
    """``runs`` interleaved rounds after one warm-up round: (variants, (wall, CPU) seconds of each
    run per variant, rounds redone). When a command fails and ``recover`` is given, it is called,
    the variants are made again and the whole round is redone (at most 3 times)."""
    variants = make()
    for v in variants:
        _run_once(v, env)  # warm-up: bytecode written, files in the page cache
    times: dict[str, list[tuple[float, float]]] = {v.label: [] for v in variants}
    redone = 0
    r = 0
    while r < runs:
        k = r % len(variants)
        try:
            one = {v.label: _run_once(v, env) for v in variants[k:] + variants[:k]}
        except _Failed as e:
            if recover is None or redone >= 3:
                raise SystemExit(str(e)) from None
            print(f"round {r} redone: {e}", file=sys.stderr)
            recover()
            variants = make()
            redone += 1
            continue
        for label, wall_cpu in one.items():
            times[label].append(wall_cpu)
        r += 1
    return variants, times, redone


def _p90(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=10)[-1] if len(xs) >= 2 else xs[0]


def summarise(variants: list[Variant], times: dict[str, list[tuple[float, float]]]) -> list[dict[str, object]]:
    """One row per variant: n, median and p90 wall-clock ms, median CPU ms, and the ratios of the
    medians to its anchor's (wall: the goal; CPU: less sensitive to other jobs on the machine)."""
    med = {k: statistics.median(w for w, _ in v) for k, v in times.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in times.items()}
    rows: list[dict[str, object]] = []
    for v in variants:
        row: dict[str, object] = {"command": v.label, "n": len(times[v.label]),
                                  "median_ms": round(med[v.label] * 1000, 1),
                                  "p90_ms": round(_p90([w for w, _ in times[v.label]]) * 1000, 1),
                                  "cpu_ms": round(cpu[v.label] * 1000, 1)}
        if v.anchor:
            row["anchor"] = v.anchor
            row["ratio"] = round(med[v.label] / med[v.anchor], 2)
            row["cpu_ratio"] = round(cpu[v.label] / cpu[v.anchor], 2)
            goal = GOALS.get(v.label.removesuffix(" (baseline)"))
            if goal is not None:
                row["goal"] = goal
                row["goal_met"] = med[v.label] / med[v.anchor] <= goal
        rows.append(row)
    return rows


def table(rows: list[dict[str, object]]) -> str:
    """The rows as a Markdown table."""
    out = ["| command | n | median ms | p90 ms | CPU ms | vs | ratio (medians) | CPU ratio |",
           "|---|---:|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        ratio = ""
        if "ratio" in r:
            ratio = f"**{r['ratio']:.2f}x**"
            if "goal" in r:
                ratio += f" (goal <= {r['goal']}x: {'met' if r['goal_met'] else 'NOT met'})"
        cpu_ratio = f"{r['cpu_ratio']:.2f}x" if "cpu_ratio" in r else ""
        out.append(f"| `{r['command']}` | {r['n']} | {r['median_ms']:.0f} | {r['p90_ms']:.0f} | {r['cpu_ms']:.0f} | "
                   f"{r.get('anchor', '')} | {ratio} | {cpu_ratio} |")
    return "\n".join(out)


@dataclass(frozen=True)
class Installed:
    """A published plugin installed and run by the ``cortex`` of one source tree."""

    name: str
    container: str
    tree: str | None  #: None: this tree


@dataclass(frozen=True)
class Target:
    """What ``cortex plugin call`` is measured on: one plugin per source tree, each installed and
    run by that tree's ``cortex`` (a container started by one tree is refused by another: the
    seccomp profile it runs under is named by the starting tree's path)."""

    env: dict[str, str]
    published: Published
    runtime: ContainerRuntime
    installs: list[Installed]

    def health_url(self) -> str:
        """The URL of the first plugin's health endpoint now (it changes when it is restarted)."""
        running = self.runtime.running(self.installs[0].container)
        if running is None:
            raise _Failed(f"{self.installs[0].container} is not running")
        return f"{running.base_url}/health"

    def cortex(self, *args: str, tree: str | None = None) -> None:
        """Run ``cortex ARGS`` (from ``tree``) in the plugins' environment; exit if it fails."""
        variant = Variant(" ".join(args), [*cli_command(), *args], tree=tree)
        try:
            _run_once(variant, self.env)
        except _Failed as e:
            raise SystemExit(str(e)) from None

    def restart(self) -> None:
        """Start every plugin again (other test runs on the same engine remove every plugin
        container when their session starts)."""
        for i in self.installs:
            self.cortex("plugin", "run", i.name, tree=i.tree)


@contextmanager
def running_hello(tmp: Path, *, baseline: str | None = None) -> Iterator[Target]:
    """Publish, install and run the hello plugin with ``cortex`` (and a second one with the
    ``cortex`` of ``baseline``); the containers and the registry are stopped afterwards."""
    from cortex_trust.runtime import connect

    cenv = container_env()
    trees = [None] if baseline is None else [None, baseline]
    with published_hello(tmp, cenv, count=len(trees)) as published:
        env = process_env({**cenv, "CORTEX_CONFIG": str(published.config_path),
                           "CORTEX_DATA_DIR": str(tmp / "data")})
        installs = [Installed(name=f"acme/{plugin}", container=f"cortex-{plugin}", tree=tree)
                    for plugin, tree in zip(published.plugins, trees, strict=True)]
        target = Target(env=env, published=published, runtime=connect(cenv["DOCKER_HOST"]), installs=installs)
        for i in installs:
            target.cortex("plugin", "install", i.name, "--yes", "--trusted-root",
                          str(published.sigstore.trusted_root_path), tree=i.tree)
        try:
            target.restart()
            yield target
        finally:
            for i in installs:
                target.runtime.stop(i.container)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="interleaved rounds (default 20)")
    parser.add_argument("--call", action="store_true", help="also measure `cortex plugin call` (Podman)")
    parser.add_argument("--only-call", action="store_true", help="only the `plugin call` comparison")
    parser.add_argument("--baseline", metavar="DIR",
                        help="also run each cortex command from this source tree (e.g. `git archive` of main)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    baseline = str(Path(args.baseline).resolve()) if args.baseline else None

    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_before = os.getloadavg()[0]
    sections: dict[str, list[dict[str, object]]] = {}
    redone = 0
    if not args.only_call:
        variants, times, _ = measure(lambda: with_baseline(help_variants(), baseline), process_env(), args.runs)
        sections["help and lint"] = summarise(variants, times)
    if args.call or args.only_call:
        with tempfile.TemporaryDirectory(prefix="cortex-bench-startup-") as tmp, \
                running_hello(Path(tmp), baseline=baseline) as target:
            variants, times, redone = measure(lambda: call_variants(target), target.env, args.runs,
                recover=target.restart)
            sections["plugin call"] = summarise(variants, times)
    result = {"started": started,
              "machine": f"{platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}",
              "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
              "runs": args.runs, "rounds_redone": redone, "sections": sections}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{started}, {result['machine']}, {args.runs} interleaved rounds, load average "
          f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}\n")
    for title, rows in sections.items():
        print(f"### {title}\n\n{table(rows)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
