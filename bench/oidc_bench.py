"""Trusted publishing: what authenticating a publish costs with an OIDC identity token (warm key
cache) next to a registry token, measured in the same run.

    python bench/oidc_bench.py [--n 500] [--json]

One SQLite registry database (migrated) and the local OIDC issuer of the tests
(tests/support/oidc_issuer.py: real RSA-2048 and P-256 keys, discovery and JWKS over HTTP on
loopback; fetched once, then cached). Tokens are minted before timing (unique ``jti`` each).
Variants, interleaved in chunks of 20 so the shared machine's noise hits them alike:

  token            Store.authenticate(registry token): what every token-authenticated request pays
  verify RS256     OidcVerifier.verify(identity token), warm key cache: signature and claims
  verify ES256     the same with a P-256 key
  publish auth     what a trusted publish pays to authenticate: verify (RS256) + exchange_oidc (one
                   write transaction: jti, credential, audit entry) + authenticate(credential)

Wall-clock per call (perf_counter_ns, GC off in the loop).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AUD = "https://registry.bench.invalid"


def _stats(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"n": len(ordered), "p50_us": ordered[len(ordered) // 2] / 1000,
            "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000,
            "mean_us": statistics.fmean(ordered) / 1000}


def run(n: int) -> dict[str, dict[str, float]]:
    from registry import make_engine, migrate
    from registry._oidc import OidcSettings, OidcVerifier
    from registry._store import Store
    from tests.support.oidc_issuer import local_issuer

    with tempfile.TemporaryDirectory() as tmp, local_issuer() as issuer:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        migrate(engine)
        store = Store(engine)
        now = datetime.now(UTC)
        token, _ = store.create_token(namespace="acme", role="publisher", expires_in=timedelta(days=1), now=now)
        store.add_publisher(namespace="acme", issuer=issuer.url, repository="acme/tool", workflow="release.yml",
                            environment="release", now=now)
        verifier = OidcVerifier(OidcSettings(audience=AUD, issuers=(issuer.url,)))
        verifier.verify(issuer.mint(audience=AUD), now=now)  # warm the key cache (discovery + JWKS)
        fetches = verifier.fetches
        rs = [issuer.mint(audience=AUD, kid="rsa-1") for _ in range(n)]
        es = [issuer.mint(audience=AUD, kid="ec-1") for _ in range(n)]
        publish = [issuer.mint(audience=AUD, kid="rsa-1") for _ in range(n)]

        def publish_auth(i: int) -> None:
            at = datetime.now(UTC)
            identity = verifier.verify(publish[i], now=at)
            credential, _ = store.exchange_oidc(identity, namespace=None, now=at)
            store.authenticate(credential, now=at)

        variants: dict[str, Callable[[int], Any]] = {
            "token": lambda i: store.authenticate(token, now=datetime.now(UTC)),
            "verify RS256": lambda i: verifier.verify(rs[i], now=datetime.now(UTC)),
            "verify ES256": lambda i: verifier.verify(es[i], now=datetime.now(UTC)),
            "publish auth (OIDC)": publish_auth,
        }
        samples: dict[str, list[int]] = {k: [] for k in variants}
        gc.disable()
        try:
            for start in range(0, n, 20):
                for name, call in variants.items():
                    for i in range(start, min(n, start + 20)):
                        t0 = time.perf_counter_ns()
                        call(i)
                        samples[name].append(time.perf_counter_ns() - t0)
        finally:
            gc.enable()
        assert verifier.fetches == fetches, "the key cache was not warm"
        engine.dispose()
    return {k: _stats(v) for k, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = run(args.n)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    base = results["token"]["p50_us"]
    print("| variant | n | p50 µs | p99 µs | mean µs | p50 vs token |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['n']} | {r['p50_us']:.1f} | {r['p99_us']:.1f} | {r['mean_us']:.1f} | "
              f"{r['p50_us'] / base:.1f}x |")


if __name__ == "__main__":
    main()
