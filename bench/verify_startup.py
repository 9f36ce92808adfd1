"""Whole-process cost of `cortex plugin verify`, against baselines measured in the same run.

    .venv/bin/python bench/verify_startup.py [--runs 30] [--json]

Runs, interleaved (one of each per round, so machine noise hits all alike):

* ``python -c pass``                                   the interpreter alone
* ``python -c "import sigstore.verify, sigstore.models"``  the bare import of what verify needs
* ``cortex plugin verify`` with a real Sigstore bundle (tests/fixtures/sigstore), a real Trivy
  report (tests/fixtures/trivy, bound to the digest) and JUnit results, on the default policies
* ``cortex --help``

and prints the median of each and the ratio verify / bare import (goal: <= 1.5).

Bytecode matters (PERFORMANCE.md): with PYTHONDONTWRITEBYTECODE=1 an editable install
recompiles on every start. The children run with it unset, after warm-up runs that write the
bytecode caches.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
# The sha256 of tests/fixtures/sigstore/artifacts/a.txt, signed by the bundle below.
DIGEST = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"


def _bound_report(directory: Path) -> Path:
    doc = json.loads((FIX / "trivy" / "alpine-distroless.json").read_text())
    doc["Metadata"]["RepoDigests"] = [f"127.0.0.1:5000/acme/hello@{DIGEST}"]
    path = directory / "report.json"
    path.write_text(json.dumps(doc))
    return path


def _commands(report: Path) -> dict[str, list[str]]:
    py = sys.executable
    cortex = str(Path(py).with_name("cortex"))
    verify = [cortex, "plugin", "verify", str(FIX / "verify" / "manifest.yaml"),
              "--image", f"127.0.0.1:5000/acme/hello@{DIGEST}", "--namespace", "acme",
              "--bundle", str(FIX / "sigstore" / "valid" / "prod-hashedrekord-v0.3.sigstore.json"),
              "--scan", str(report), "--tests", str(FIX / "junit" / "pytest-pass.xml"),
              "--now", "2026-10-31T00:00:00Z", "--format", "json"]
    return {
        "python -c pass": [py, "-c", "pass"],
        "import sigstore.verify, sigstore.models": [
            py, "-c", "import sigstore.verify, sigstore.models"],
        "cortex plugin verify": verify,
        "cortex --help": [cortex, "--help"],
    }


def _time(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp:
        commands = _commands(_bound_report(Path(tmp)))
        for _ in range(args.warmup):  # writes bytecode caches, warms the page cache
            for argv in commands.values():
                _time(argv, env)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                samples[name].append(_time(argv, env))

    medians = {name: statistics.median(v) * 1000 for name, v in samples.items()}
    ratio = medians["cortex plugin verify"] / medians["import sigstore.verify, sigstore.models"]
    if args.json:
        print(json.dumps({"runs": args.runs, "median_ms": medians, "ratio": ratio}, indent=2))
        return
    print(f"{'command':45s} {'median ms':>10s} {'p10':>8s} {'p90':>8s}")
    for name, values in samples.items():
        qs = statistics.quantiles([v * 1000 for v in values], n=10)
        print(f"{name:45s} {medians[name]:10.1f} {qs[0]:8.1f} {qs[-1]:8.1f}")
    print(f"\nverify / bare sigstore import: {ratio:.2f}x (goal <= 1.5x), "
          f"{args.runs} interleaved runs after {args.warmup} warm-up rounds")


if __name__ == "__main__":
    main()
