"""Real OPA (1.20.2) as a test oracle, and the policy-set loading the oracle tests share.

The wheel ``opa-golib-python-bindings==0.4.4`` embeds the real OPA engine (a Go shared library
behind a ctypes wrapper). Its metadata claims Python 3.14, so ``./dev`` installs it with
``--ignore-requires-python`` into ``.opa-oracle/`` (gitignored). It is **test-only**: nothing in
``cortex_trust`` may import it, and this module only puts ``.opa-oracle`` on ``sys.path`` inside
:func:`opa_engine_class`, when a test asks for it.

If the oracle is missing, the tests that need it **fail** (they do not skip): a silently skipped
oracle would let a regorus/OPA divergence through CI.

Guarantees:

* :class:`OpaOracle` implements the :class:`cortex_trust.engine.PolicyEngine` protocol, so it can
  be handed to :func:`cortex_trust.engine.decide` like any project engine.
* :func:`project_engine` builds the project's engine and hands back the exact modules and data
  it was loaded with, so regorus and OPA are given byte-identical modules and the same data.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cortex_trust.engine import PolicyEngine
from cortex_trust.errors import EngineError

__all__ = [
    "ORACLE_DIR",
    "REPO_ROOT",
    "OpaOracle",
    "TestPolicySet",
    "opa_engine_class",
    "project_engine",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
ORACLE_DIR = REPO_ROOT / ".opa-oracle"
_ORACLE_PIN = "opa-golib-python-bindings==0.4.4"
_MISSING = (
    f"the OPA oracle ({_ORACLE_PIN}) is not installed in {ORACLE_DIR}; run `./dev test`, which "
    f"installs it (`.venv/bin/pip install --no-deps --ignore-requires-python --target .opa-oracle "
    f"{_ORACLE_PIN}`)"
)


def opa_engine_class() -> Any:
    """Return ``opa_bindings.OpaEngine`` from ``.opa-oracle``; fail the calling test if absent.

    Failing (not skipping) is deliberate: the oracle comparison is a required check.
    """
    if not (ORACLE_DIR / "opa_bindings").is_dir():
        pytest.fail(_MISSING, pytrace=False)
    if str(ORACLE_DIR) not in sys.path:
        sys.path.insert(0, str(ORACLE_DIR))
    try:
        from opa_bindings import OpaEngine
    except (ImportError, OSError) as e:  # OSError: the Go shared library failed to load
        pytest.fail(f"{_MISSING} (import failed: {type(e).__name__}: {e})", pytrace=False)
    return OpaEngine


@dataclass(frozen=True)
class TestPolicySet:
    """Modules (name → Rego text) and the merged data document, as plain values for OPA."""

    __test__ = False  # not a pytest class

    modules: tuple[tuple[str, str], ...]
    data: dict[str, Any]

    @property
    def revision(self) -> str:
        h = hashlib.sha256()
        for name, text in self.modules:
            h.update(name.encode() + b"\0" + text.encode() + b"\0")
        h.update(json.dumps(self.data, sort_keys=True).encode())
        return "sha256:" + h.hexdigest()


class OpaOracle(PolicyEngine):
    """The real OPA engine loaded with one policy set; a :class:`PolicyEngine`.

    ``evaluate`` returns the value of ``data.cortex.decision`` or ``None`` when it is undefined,
    and raises :class:`EngineError` for any OPA error (a conflict, a builtin error...).
    """

    name = "opa-oracle"

    def __init__(self, policy_set: TestPolicySet) -> None:
        engine_cls = opa_engine_class()
        self._engine = engine_cls()
        self.revision = policy_set.revision
        for name, text in policy_set.modules:
            self._engine.add_policy(name, text)
        self._engine.add_data(policy_set.data)
        from opa_bindings import OpaError, OpaUndefinedError

        self._error: type[Exception] = OpaError
        self._undefined: type[Exception] = OpaUndefinedError

    def evaluate(self, input_json: str) -> Any:
        """Evaluate ``data.cortex.decision`` for the JSON input text."""
        try:
            return self._engine.eval_document("cortex.decision", json.loads(input_json))
        except self._undefined:
            return None
        except self._error as e:
            raise EngineError(f"OPA failed: {e}") from None


def project_engine(*org_dirs: Path, data_files: tuple[Path, ...] = (),
                   defaults: bool = True) -> tuple[Any, TestPolicySet]:
    """The project's :class:`EmbeddedEngine` and the exact modules + data it was loaded with.

    The policy set is the project's own (:func:`cortex_trust.policy.load_policy_set`: the
    defaults unless ``defaults=False``, then each organization directory and ``data_files``), so
    the oracle is
    given byte-identical modules and the same canonical data document as regorus.
    """
    from cortex_trust.engine import EmbeddedEngine
    from cortex_trust.policy import load_policy_set

    policy_set = load_policy_set(list(org_dirs), list(data_files), defaults=defaults)
    test_set = TestPolicySet(
        modules=tuple((m.name, m.text) for m in policy_set.modules),
        data=json.loads(policy_set.data_json()),
    )
    # As the registry runs it (precomputed data-only values): what the oracle compares with OPA.
    return EmbeddedEngine(policy_set, precompute=True), test_set
