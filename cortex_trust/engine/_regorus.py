"""The one module of cortex-trust that talks to regorus (``gordon-to-regorus==0.13.0``).

:class:`Prepared` is a regorus engine loaded once with a policy set's modules and data
("compile once, evaluate many"); each evaluation only replaces the input, which is always
handed over as JSON text (never as a dict: other regorus builds mangle booleans that way).

Errors are translated here: a module regorus cannot parse is a
:class:`~cortex_trust.errors.PolicyError` with ``file:line:col``; anything failing while
evaluating is an :class:`~cortex_trust.errors.EngineError` whose message is regorus' first
meaningful line (the Rust backtrace is dropped).

This module runs organization code in-process: callers that evaluate untrusted modules do it in
the child worker (:mod:`cortex_trust.engine._worker`), because a recursive Rego function can
overflow the native stack and kill the process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import regorus

from .._decision_text import DecisionText
from ..errors import EngineError, PolicyError
from ._probe import package_path, rule_ref

DECISION_PATH = "data.cortex.decision"

_LOCATION = re.compile(r"-->\s*(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)")
_NOT_A_RULE = "not a valid rule path"
_UNDEFINED_JSON = '"<undefined>"'


def clean_message(raw: str, *, paths: Mapping[str, str] | None = None) -> str:
    """Turn a regorus error into one line: ``file:line:col: problem`` (backtrace dropped)."""
    text = raw.split("Stack backtrace:", 1)[0].strip()
    problem = ""
    for line in text.splitlines():
        if line.startswith("error:"):
            problem = line[len("error:"):].strip()
    m = _LOCATION.search(text)
    if m:
        file = m["file"]
        if paths and file in paths:
            file = paths[file]
        return f"{file}:{m['line']}:{m['col']}: {problem or 'error'}"
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return first or "unknown regorus error"


@dataclass(frozen=True)
class TestCase:
    """A ``test_*`` rule found in a module."""

    __test__ = False  # not a pytest class

    package: str
    name: str
    module: str
    line: int

    @property
    def rule_path(self) -> str:
        return f"{self.package}.{self.name}"


class Prepared:
    """A regorus engine loaded with ``modules`` (``(name, text)`` pairs) and ``data_json``.

    Raises :class:`PolicyError` when a module does not parse or the data is rejected.
    Not thread-safe: callers serialise access (one evaluation at a time).
    """

    def __init__(self, modules: Sequence[tuple[str, str]], data_json: str = "{}", *,
                 coverage: bool = False, paths: Mapping[str, str] | None = None) -> None:
        self._paths = dict(paths or {})
        self._engine = regorus.Engine()
        # print() in a policy must never write to our stdout (the worker protocol uses it).
        self._engine.set_gather_prints(True)
        if coverage:
            self._engine.set_enable_coverage(True)
        self._modules = {name: text for name, text in modules}
        for name, text in modules:
            try:
                self._engine.add_policy(name, text)
            except RuntimeError as e:
                raise PolicyError(f"{clean_message(str(e), paths=self._paths)}",
                                  advice="fix the Rego syntax at that position") from None
        try:
            self._engine.add_data_json(data_json)
        except RuntimeError as e:
            raise PolicyError(f"the policy data was rejected: {clean_message(str(e))}",
                              advice="check the data files for keys that clash with rules") from None
        self._ast: list[dict[str, Any]] | None = None
        self._check_data_conflicts(json.loads(data_json))

    def _check_data_conflicts(self, data: Any) -> None:
        """Refuse data that defines a value where a rule lives (OPA refuses it too; regorus would
        let one silently shadow the other, e.g. ``--data`` with ``cortex: {scan: ...}``)."""
        if not isinstance(data, dict) or not data:
            return
        roots = set(data)
        for module in self._modules_ast():
            pkg = package_path(module["ast"]["package"]["refr"])
            if pkg.split(".")[1:2] and pkg.split(".")[1] not in roots:
                continue  # fast path: no data under this package's root
            for rule in module["ast"]["rules"]:
                ref = rule_ref(rule)
                if ref is None:
                    continue
                node: Any = data
                parts = f"{pkg}.{ref}".split(".")[1:]
                for i, part in enumerate(parts):
                    if not isinstance(node, dict):
                        conflict = ".".join(parts[:i])
                        break
                    if part not in node:
                        conflict = ""
                        break
                    node = node[part]
                else:
                    conflict = ".".join(parts)
                if conflict:
                    raise PolicyError(
                        f"policy data defines data.{conflict}, where the rule {pkg}.{ref} lives",
                        advice="move that configuration under its own top-level key "
                               "(the default policies read data.cortex_config)")

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(self, input_json: str, rule: str = DECISION_PATH) -> Any:
        """The value of ``rule`` for ``input_json``, ``None`` when undefined (or no such rule).

        Raises :class:`EngineError` when the input is not JSON or evaluation failed (a builtin
        error such as ``to_number("x")``, a conflict, a cycle).
        """
        try:
            self._engine.set_input_json(input_json)
        except RuntimeError as e:
            raise EngineError(f"the input is not valid JSON: {clean_message(str(e))}",
                              advice="pass the input document as JSON text") from None
        return self.eval_rule(rule)

    def evaluate_many(self, input_jsons: Sequence[str]) -> list[Any]:
        """``data.cortex.decision`` for each input: its value, ``None`` (undefined) or the
        :class:`EngineError` for that input (one failing input never fails the others).

        Each input is evaluated on its own, never concatenated into one batch query: a malformed
        text could then shift which decision belongs to which input.
        """
        return _each(self.evaluate, input_jsons)

    def eval_rule(self, rule: str) -> Any:
        """The value of ``rule`` for the current input; ``None`` when undefined."""
        try:
            # As JSON: sets become arrays (as OPA renders them); eval_rule's Python conversion
            # fails on a set of objects.
            text = self._engine.eval_rule_as_json(rule)
            self._engine.take_prints()  # print() output is gathered, never written; drop it
            if text == _UNDEFINED_JSON and self._engine.eval_rule(rule) is None:
                return None  # regorus renders undefined as this string; eval_rule tells them apart
            return json.loads(text)
        except RuntimeError as e:
            msg = clean_message(str(e), paths=self._paths)
            if msg == _NOT_A_RULE:
                return None
            raise EngineError(f"evaluating {rule} failed: {msg}",
                              advice="fix the policy; a builtin error blocks the decision") from None
        except BaseException as e:  # only a Rust panic is translated (_panic_error)
            if type(e).__name__ != "PanicException":
                raise
            raise _panic_error(e, rule) from None

    def query(self, input_json: str, ref: str) -> Any:
        """The value of the reference ``ref`` (a rule or a whole package such as
        ``data.cortex``) for ``input_json``; ``None`` when undefined. Raises EngineError."""
        try:
            self._engine.set_input_json(input_json)
            text = self._engine.eval_query_as_json(ref)
        except RuntimeError as e:
            raise EngineError(f"evaluating {ref} failed: {clean_message(str(e), paths=self._paths)}"
                              ) from None
        finally:
            self._engine.take_prints()
        rows = json.loads(text).get("result") or []
        if not rows:
            return None
        return rows[0]["expressions"][0]["value"]

    def explain(self, input_json: str, prefix: str = "data.cortex") -> list[tuple[str, Any, str | None]]:
        """Every rule under ``prefix`` evaluated for ``input_json``: ``(path, value, error)``.

        A rule that fails gives ``(path, None, message)``; undefined gives ``(path, None, None)``.
        """
        out: list[tuple[str, Any, str | None]] = []
        try:
            self._engine.set_input_json(input_json)
        except RuntimeError as e:
            raise EngineError(f"the input is not valid JSON: {clean_message(str(e))}") from None
        for path in self.rule_paths(prefix):
            try:
                out.append((path, self.eval_rule(path), None))
            except EngineError as e:
                out.append((path, None, e.message))
        return out

    def why(self, input_json: str, codes: Sequence[str]) -> list[dict[str, Any]]:
        """For each reason code, the rule bodies that emit it for ``input_json``, their
        conditions with the values of their terms, and why each negated rule is false
        (:func:`~cortex_trust.engine._probe.explain_codes`)."""
        from ._probe import explain_codes

        try:
            self._engine.set_input_json(input_json)
        except RuntimeError as e:
            raise EngineError(f"the input is not valid JSON: {clean_message(str(e))}") from None
        return explain_codes(self._engine, self._modules_ast(), self._modules, list(codes),
                             input_json=input_json)

    # -- introspection ------------------------------------------------------------------------

    def _modules_ast(self) -> list[dict[str, Any]]:
        if self._ast is None:
            self._ast = json.loads(self._engine.get_ast_as_json())
        return self._ast

    def rule_paths(self, prefix: str = "data") -> list[str]:
        """Full paths of the non-function, non-test rules whose path starts with ``prefix``."""
        seen: dict[str, None] = {}
        for module in self._modules_ast():
            pkg = package_path(module["ast"]["package"]["refr"])
            for rule in module["ast"]["rules"]:
                ref = rule_ref(rule)
                if ref is None:
                    continue
                path = f"{pkg}.{ref}"
                last = path.split(".")[-1]
                if last.startswith(("test_", "_")):
                    continue  # tests, and private helpers by convention
                if path == prefix or path.startswith(prefix + "."):
                    seen[path] = None
        return sorted(seen)

    def tests(self) -> list[TestCase]:
        """The ``test_*`` rules of every module (each name once per package), in source order."""
        found: dict[str, TestCase] = {}
        for module in self._modules_ast():
            pkg = package_path(module["ast"]["package"]["refr"])
            for rule in module["ast"]["rules"]:
                spec = rule.get("Spec")
                if not spec or "Compr" not in spec["head"]:
                    continue
                refr = spec["head"]["Compr"]["refr"]
                if "Var" not in refr:
                    continue
                name = refr["Var"]["value"]
                if name.startswith("test_") and f"{pkg}.{name}" not in found:
                    found[f"{pkg}.{name}"] = TestCase(pkg, name, module["source"]["file"],
                                                      spec["span"]["line"])
        return list(found.values())

    def run_test(self, case_path: str) -> tuple[str, str]:
        """Evaluate one test rule: ``("pass", "")``, ``("fail", why)`` or ``("error", message)``
        (:meth:`first_failure` then says which expression failed)."""
        try:
            self._engine.set_input_json("{}")
            value = self.eval_rule(case_path)
        except EngineError as e:
            return "error", e.message
        if value is True:
            return "pass", ""
        if value is None:
            return "fail", "the test rule is undefined (a condition was false)"
        return "fail", f"the test rule evaluated to {json.dumps(value)[:200]}, not true"

    def first_failure(self, rule_path: str, input_json: str = "{}") -> dict[str, Any] | None:
        """The first unsatisfied expression of the rule ``rule_path`` (its first definition) and
        the values of its terms, as JSON (:class:`~cortex_trust.engine._probe.Failure`)."""
        from ._probe import first_failure

        pkg, _, name = rule_path.rpartition(".")
        for module in self._modules_ast():
            if package_path(module["ast"]["package"]["refr"]) != pkg:
                continue
            for rule in module["ast"]["rules"]:
                if rule_ref(rule) == name and "Spec" in rule and rule["Spec"].get("bodies"):
                    source = self._modules.get(module["source"]["file"], "")
                    found = first_failure(self._engine, module["ast"], source, rule, input_json=input_json)
                    return None if found is None else found.to_json()
        return None

    def take_coverage(self) -> dict[str, tuple[list[int], list[int]]]:
        """Covered and not-covered lines per module since the last call (then cleared)."""
        report = json.loads(self._engine.get_coverage_report_as_json())
        self._engine.clear_coverage_data()
        return {f["path"]: (list(f["covered"]), list(f["not_covered"])) for f in report["files"]}

    def statement_lines(self) -> dict[str, list[int]]:
        """Lines holding a rule head or body statement, per module (coverage of unrun files)."""
        out: dict[str, list[int]] = {}
        for module in self._modules_ast():
            lines: set[int] = set()
            for rule in module["ast"]["rules"]:
                if "Default" in rule:
                    lines.add(rule["Default"]["span"]["line"])
                    continue
                spec = rule.get("Spec")
                if not spec:
                    continue
                stmts = [s for b in spec.get("bodies", []) for s in b["query"]["stmts"]]
                if stmts:
                    lines.update(s["span"]["line"] for s in stmts)
                else:
                    lines.add(spec["span"]["line"])
            out[module["source"]["file"]] = sorted(lines)
        return out


class Compiled:
    """regorus' compiled mode (``Program`` + ``Rvm``) for ``data.cortex.decision`` (faster; bench/README.md).

    Only for the shipped policy set on schema-valid input (see ``EmbeddedEngine``): the Rvm
    treats a builtin error as *undefined* instead of raising (a deny entry whose rule fails
    would silently disappear), so it may only run modules audited to never hit a builtin error
    on such input (docs/policy-contract.md, "Compiled mode"). Raises :class:`PolicyError` when
    the modules do not compile, :class:`EngineError` when evaluation fails. Not thread-safe.
    """

    def __init__(self, modules: Sequence[tuple[str, str]], data_json: str = "{}", *,
                 paths: Mapping[str, str] | None = None, precompute: bool = False) -> None:
        plain = data_json
        if precompute:
            data_json = with_static_values(modules, data_json)
        #: Whether ``data.cortex_static`` was handed to the program (tests and benchmarks).
        self.precomputed = data_json is not plain
        try:
            program = regorus.Program.compile_from_modules(data_json, list(modules), [DECISION_PATH])
        except RuntimeError as e:
            raise PolicyError(f"the policies cannot be compiled: {clean_message(str(e), paths=paths)}",
                              advice="fix the Rego at that position") from None
        self._vm = regorus.Rvm()
        self._vm.load_program(program)
        self._vm.set_data_json(data_json)

    def evaluate(self, input_json: str) -> DecisionText | None:
        """``data.cortex.decision`` for ``input_json`` as its JSON text (parsed strictly by
        :meth:`~cortex_trust.policy.Decision.from_policy_output`); ``None`` when undefined."""
        try:
            self._vm.set_input_json(input_json)
            text = self._vm.execute_entry_point(DECISION_PATH)
        except RuntimeError as e:
            raise EngineError(f"evaluating {DECISION_PATH} failed: {clean_message(str(e))}",
                              advice="fix the policy; an evaluation error blocks the decision") from None
        except BaseException as e:  # only a Rust panic is translated (_panic_error)
            if type(e).__name__ != "PanicException":
                raise
            raise _panic_error(e, DECISION_PATH) from None
        # The Rvm renders undefined as this string; a decision is an object, so a string value
        # is never a valid decision either way (decide() blocks on None).
        return None if text == _UNDEFINED_JSON else DecisionText(text)

    def evaluate_many(self, input_jsons: Sequence[str]) -> list[DecisionText | EngineError | None]:
        """:meth:`evaluate` for each input, in order, in one tight loop (the Rvm's caches stay
        warm); an input whose evaluation fails gets its :class:`EngineError`."""
        return _each(self.evaluate, input_jsons)


def _each(evaluate: Callable[[str], Any], input_jsons: Sequence[str]) -> list[Any]:
    """``evaluate`` of each input, in order; an input that fails gets its :class:`EngineError`
    (one failing input never fails the others)."""
    out: list[Any] = []
    for text in input_jsons:
        try:
            out.append(evaluate(text))
        except EngineError as e:
            out.append(e)
    return out


#: Where the precomputed values go in data, and the rule that lists them (policies/cortex/static.rego).
STATIC_KEY = "cortex_static"
STATIC_PATH = "data.cortex.static_values"


def with_static_values(modules: Sequence[tuple[str, str]], data_json: str) -> str:
    """``data_json`` with ``data.cortex_static`` set to the value of ``data.cortex.static_values``.

    That rule gathers values the policy derives from data alone (policies/cortex/static.rego);
    it is evaluated here once, by the interpreter, with no input at all, and the policy then
    reads each value back instead of working it out for every decision. When the modules have
    no such rule, it is undefined, or evaluating it fails, ``data_json`` itself is returned and
    the policy computes every value itself, exactly as before.
    """
    try:
        values = Prepared(modules, data_json).eval_rule(STATIC_PATH)
    except (EngineError, PolicyError):  # it failed: nothing is precomputed
        return data_json
    data = json.loads(data_json)
    if not isinstance(values, dict) or not isinstance(data, dict) or STATIC_KEY in data:
        return data_json
    return json.dumps({**data, STATIC_KEY: values}, sort_keys=True, separators=(",", ":"))


def _panic_error(e: BaseException, rule: str) -> EngineError:
    """A Rust panic (pyo3's PanicException) as an :class:`EngineError`, so that it fails closed:
    it is a BaseException, which decide()'s ``except Exception`` would not catch."""
    first = (str(e).splitlines() or ["panic"])[0][:200]
    return EngineError(f"regorus panicked evaluating {rule}: {first}",
                       advice="report this regorus bug; the decision is blocked")
