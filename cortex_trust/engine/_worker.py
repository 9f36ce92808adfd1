"""Child process that evaluates organization policies so they cannot take the caller down.

Started by :mod:`cortex_trust.engine` as ``python -m cortex_trust.engine._worker`` and
supervised by :mod:`cortex_trust.engine._supervisor` (frames over stdin/stdout). Each request
is one frame holding a JSON header; requests that carry input documents are followed by that
many frames of raw input text (it goes to regorus unparsed). The first request is ``load``
(the supervisor's init). Each request gets exactly one answer frame holding JSON::

    {"op": "load", "modules": [[name, text], ...], "data": "<json>", "coverage": false, "paths": {}}
    {"op": "eval", "rule": "data.cortex.decision"}   + 1 input line  -> {"ok": true, "value": ...}
    {"op": "eval_many", "n": N}                       + N input lines -> {"ok": true, "results": [...]}
    {"op": "explain", "prefix": "data.cortex"}        + 1 input line  -> {"ok": true, "rules": [...]}
    {"op": "why", "codes": [...]}                     + 1 input line  -> {"ok": true, "why": [...]}
    {"op": "tests"} / {"op": "run_test", "path": ...} (-> status, message, failure, coverage)
    {"op": "statement_lines"}

Failures answer ``{"ok": false, "kind": "policy"|"engine", "error": ..., "advice": ...}``. A crash
(a Rego function recursing until the native stack overflows) ends the process; the parent sees
EOF and the signal.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import CortexTrustError, PolicyError
from ._regorus import DECISION_PATH, Prepared
from ._supervisor import WorkerChannel


def _error(e: CortexTrustError) -> dict[str, Any]:
    kind = "policy" if isinstance(e, PolicyError) else "engine"
    return {"ok": False, "kind": kind, "error": e.message, "advice": e.advice}


class Session:
    """Holds the loaded policy set and answers one request at a time (also used in-process)."""

    def __init__(self) -> None:
        self.prepared: Prepared | None = None

    def handle(self, header: dict[str, Any], inputs: list[str]) -> dict[str, Any]:
        """Answer one request; library errors become ``{"ok": false, ...}``."""
        try:
            return self._handle(header, inputs)
        except CortexTrustError as e:
            return _error(e)

    def _handle(self, header: dict[str, Any], inputs: list[str]) -> dict[str, Any]:
        op = header.get("op")
        if op == "load":
            self.prepared = Prepared([(m[0], m[1]) for m in header["modules"]], header["data"],
                                     coverage=bool(header.get("coverage")),
                                     paths=header.get("paths") or {})
            return {"ok": True}
        prepared = self.prepared
        if prepared is None:
            return {"ok": False, "kind": "engine", "error": "no policy set loaded", "advice": None}
        if op == "eval":
            return {"ok": True, "value": prepared.evaluate(inputs[0], header.get("rule", DECISION_PATH))}
        if op == "eval_many":
            results: list[dict[str, Any]] = []
            for r in prepared.evaluate_many(inputs):
                if isinstance(r, CortexTrustError):
                    results.append({"error": r.message, "advice": r.advice})
                else:
                    results.append({"value": r})
            return {"ok": True, "results": results}
        if op == "explain":
            rules = prepared.explain(inputs[0], header.get("prefix", "data.cortex"))
            return {"ok": True, "rules": [list(r) for r in rules]}
        if op == "why":
            return {"ok": True, "why": prepared.why(inputs[0], [str(c) for c in header.get("codes", [])])}
        if op == "tests":
            return {"ok": True, "tests": [[t.package, t.name, t.module, t.line] for t in prepared.tests()]}
        if op == "run_test":
            status, message = prepared.run_test(header["path"])
            coverage = prepared.take_coverage()  # before probing: probes are not the test's coverage
            failure = prepared.first_failure(header["path"]) if status == "fail" else None
            return {"ok": True, "status": status, "message": message, "failure": failure,
                    "coverage": coverage}
        if op == "statement_lines":
            return {"ok": True, "lines": prepared.statement_lines()}
        return {"ok": False, "kind": "engine", "error": f"unknown op {op!r}", "advice": None}


def input_count(header: dict[str, Any]) -> int:
    """How many raw input lines follow ``header``."""
    op = header.get("op")
    if op in ("eval", "explain", "why"):
        return 1
    if op == "eval_many":
        return int(header.get("n", 0))
    return 0


def serve(channel: WorkerChannel) -> None:
    """Answer requests from the parent until it closes the pipe."""
    session = Session()
    while (raw := channel.receive()) is not None:
        header = json.loads(raw)
        # Read the request's inputs before anything can fail, to stay in step.
        inputs: list[str] = []
        for _ in range(input_count(header)):
            text = channel.receive()
            if text is None:
                return
            inputs.append(text.decode("utf-8"))
        answer = session.handle(header, inputs)
        channel.send(json.dumps(answer, separators=(",", ":")).encode("utf-8"))


def main() -> None:
    """Serve the parent on the supervisor's channel."""
    serve(WorkerChannel())


if __name__ == "__main__":
    main()
