"""Why a Rego rule body is (not) satisfied, found by re-evaluation; and the rule paths of regorus' AST.

regorus has no evaluation trace, so the failure is found by re-evaluation: for a rule body
``s1; s2; ...; sn`` each prefix ``s1 ... sk`` is evaluated as the body of a probe rule in the
rule's own package, with the module's own imports, on a clone of the loaded engine (the engine
itself is never changed). The first prefix that is undefined ends with the failing expression;
its operands and variables are then evaluated after the prefix before it (``opa test
--var-values`` shows the same).

Only what the engine answers is reported: a term that cannot be evaluated alone (a function
name, a variable the failing expression itself binds) is left out, never guessed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Failure", "explain_codes", "first_failure", "package_path", "rule_ref"]

_PROBE = "__cortex_probe"
_LITERALS = frozenset({"String", "RawString", "Number", "Bool", "Null"})
_NOT_SHOWN = frozenset({"_", "input", "data"})
#: At most this many terms are evaluated for one failure (each is one probe evaluation).
_MAX_TERMS = 8


@dataclass(frozen=True)
class Failure:
    """The first expression of a rule body that is not satisfied.

    ``line`` is its line in the module; ``expression`` its source text; ``values`` the
    ``(term, value)`` pairs of its operands and variables, as evaluated just before it (a term
    with several values, inside an iteration, has the list of them).
    """

    line: int
    expression: str
    values: tuple[tuple[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "expression": self.expression,
                "values": [{"term": t, "value": v} for t, v in self.values]}


def first_failure(engine: Any, module_ast: Mapping[str, Any], source: str, rule: Mapping[str, Any], *,
                  input_json: str = "{}") -> Failure | None:
    """The first unsatisfied expression of ``rule``'s first body (a regorus AST rule of the
    module ``module_ast``, whose text is ``source``); ``None`` when every prefix is satisfied
    (the rule then failed by its value) or the body cannot be probed."""
    spec = rule.get("Spec")
    if not spec or not spec.get("bodies"):
        return None
    query = spec["bodies"][0]["query"]
    raw = source.encode("utf-8")
    stmts = query["stmts"]
    if not stmts:
        return None
    texts = _statement_texts(raw, stmts, query["span"]["end"])
    header = _header(raw, module_ast)
    for k, stmt in enumerate(stmts):
        if _probe(engine, header, texts[: k + 1], "true", input_json) is not None:
            continue
        values: list[tuple[str, Any]] = []
        for term in _terms(raw, stmt)[:_MAX_TERMS]:
            got = _probe(engine, header, texts[:k], term, input_json)
            if got:  # a set of the values the term takes; empty or failed: not shown
                values.append((term, got[0]) if len(got) == 1 else (f"{term} (each of)", got))
        first_line = texts[k].strip().splitlines()[0] if texts[k].strip() else ""
        return Failure(int(stmt["span"]["line"]), first_line, tuple(values))
    return None


def _statement_texts(raw: bytes, stmts: list[dict[str, Any]], query_end: int) -> list[str]:
    # A statement runs to the next one (regorus' own end offsets drop a closing quote); the
    # last one to the body's closing brace.
    out = []
    for i, s in enumerate(stmts):
        end = stmts[i + 1]["span"]["start"] if i + 1 < len(stmts) else query_end
        text = raw[s["span"]["start"]:end].decode("utf-8", "replace").rstrip()
        if i + 1 == len(stmts) and text.endswith("}"):
            text = text[:-1].rstrip()
        out.append(text.rstrip(";").rstrip())
    return out


def _header(raw: bytes, module_ast: Mapping[str, Any]) -> str:
    pkg = raw[module_ast["package"]["span"]["start"]:module_ast["package"]["span"]["end"]].decode()
    if not pkg.startswith("package"):
        pkg = "package " + pkg
    imports = [raw[i["span"]["start"]:i["span"]["end"]].decode() for i in module_ast.get("imports", [])]
    return "\n".join([pkg, *imports]) + "\n"


def _probe(engine: Any, header: str, body: list[str], term: str, input_json: str) -> list[Any] | None:
    """The values ``term`` takes after ``body`` (sorted as JSON), ``None`` when undefined or the
    probe cannot be evaluated."""
    lines = "\n".join(body)
    module = f"{header}\n{_PROBE} contains __cortex_v if {{\n{lines}\n__cortex_v := ({term})\n}}\n"
    try:
        probe = engine.clone()
        probe.add_policy(f"{_PROBE}.rego", module)
        probe.set_input_json(input_json)
        pkg = header.split("\n", 1)[0].removeprefix("package").strip()
        text = probe.eval_rule_as_json(f"data.{pkg}.{_PROBE}")
        value = json.loads(text)
    except Exception:  # noqa: BLE001 - any failure of a probe means "no value to show"
        return None
    if not isinstance(value, list) or not value:
        return None
    return value


def _terms(raw: bytes, stmt: Mapping[str, Any]) -> list[str]:
    """The operands of a comparison and the variables of ``stmt``, as source text, each once."""
    out: dict[str, None] = {}
    expr = stmt.get("literal", {}).get("Expr", {}).get("expr", {})
    for kind in ("BoolExpr", "ArithExpr", "BinExpr", "Membership"):
        node = expr.get(kind)
        if not node:
            continue
        for side in ("lhs", "rhs", "key", "value", "collection"):
            term = node.get(side)
            if isinstance(term, dict) and term and next(iter(term)) not in _LITERALS:
                span = next(iter(term.values()))["span"]
                out[raw[span["start"]:span["end"]].decode("utf-8", "replace")] = None
    for name in _vars(stmt):
        if name not in _NOT_SHOWN and not name.startswith("__"):
            out.setdefault(name, None)
    return list(out)


def _vars(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        var = node.get("Var")
        if isinstance(var, dict) and isinstance(var.get("value"), str):
            yield var["value"]
        for key, value in node.items():
            if key == "fcn":  # a called function's name is not a value
                continue
            yield from _vars(value)
    elif isinstance(node, list):
        for item in node:
            yield from _vars(item)


def explain_codes(engine: Any, modules: Sequence[Mapping[str, Any]], sources: Mapping[str, str],
                  codes: list[str], *, input_json: str) -> list[dict[str, Any]]:
    """Why each reason code is in the decision: the rule bodies that emit it and hold for
    ``input_json`` (a body emits a code when the code is a string literal of the value it
    produces), each condition of the body with the values of its terms, and for a condition
    ``not r`` on a rule ``r`` of the package, the first failing expression of each of ``r``'s
    definitions. ``modules`` are regorus AST modules (test modules are skipped), ``sources``
    their texts by file name.

    A code no rule body names literally (it is computed) gets an empty ``rules`` list.
    """
    out = []
    for code in dict.fromkeys(codes):
        rules: list[dict[str, Any]] = []
        for module in modules:
            file = module["source"]["file"]
            pkg = _package_of(module)
            if file.endswith("_test.rego") or pkg.endswith("_test"):
                continue
            raw = sources.get(file, "").encode("utf-8")
            header = _header(raw, module["ast"])
            for rule in module["ast"]["rules"]:
                for body, value in _bodies(rule):
                    if not _has_string(value, code):
                        continue
                    query = body["query"]
                    texts = _statement_texts(raw, query["stmts"], query["span"]["end"]) if query["stmts"] else []
                    if texts and _probe(engine, header, texts, "true", input_json) is None:
                        continue  # this body did not emit the code for this input
                    rules.append({
                        "rule": f"{pkg}.{_head_name(rule)}",
                        "module": file,
                        "line": int(body["span"]["line"] if body.get("is_else") else rule["Spec"]["span"]["line"]),
                        "otherwise": bool(body.get("is_else")),
                        "conditions": [_condition(engine, modules, sources, module, raw, header, texts, k, stmt,
                                                  input_json) for k, stmt in enumerate(query["stmts"])],
                    })
        out.append({"code": code, "rules": rules})
    return out


def _condition(engine: Any, modules: Sequence[Mapping[str, Any]], sources: Mapping[str, str],
               module: Mapping[str, Any], raw: bytes, header: str, texts: list[str], k: int,
               stmt: Mapping[str, Any], input_json: str) -> dict[str, Any]:
    values = []
    for term in _terms(raw, stmt)[:_MAX_TERMS]:
        got = _probe(engine, header, texts[:k], term, input_json)
        if got:
            values.append({"term": term, "value": got[0]} if len(got) == 1
                          else {"term": f"{term} (each of)", "value": got})
    because = []
    negated = stmt.get("literal", {}).get("NotExpr", {}).get("expr", {})
    name = negated.get("Var", {}).get("value") if isinstance(negated, dict) else None
    if isinstance(name, str):
        pkg = _package_of(module)
        for other in modules:
            if _package_of(other) != pkg:
                continue
            other_raw = sources.get(other["source"]["file"], "").encode("utf-8")
            for rule in other["ast"]["rules"]:
                if _head_name(rule) != name or not rule.get("Spec"):
                    continue
                failure = first_failure(engine, other["ast"], other_raw.decode("utf-8"), rule,
                                        input_json=input_json)
                if failure is not None:
                    because.append({"rule": f"{pkg}.{name}", "module": other["source"]["file"],
                                    **failure.to_json()})
    first = texts[k].strip().splitlines()[0] if k < len(texts) and texts[k].strip() else ""
    return {"line": int(stmt["span"]["line"]), "expression": first, "values": values, "because": because}


def _package_of(module: Mapping[str, Any]) -> str:
    return package_path(module["ast"]["package"]["refr"])


def _head_name(rule: Mapping[str, Any]) -> str:
    return rule_ref(rule) or "?"


def _bodies(rule: Mapping[str, Any]) -> Iterator[tuple[dict[str, Any], Any]]:
    """Each body of a rule with the value it produces (the head's for the first body)."""
    spec = rule.get("Spec")
    if not spec:
        return
    head = spec["head"]
    if "Set" in head:
        head_value = head["Set"].get("key")
    elif "Compr" in head:
        head_value = (head["Compr"].get("assign") or {}).get("value")
    else:
        return  # a function: its value depends on its arguments
    for i, body in enumerate(spec.get("bodies", [])):
        assign = body.get("assign")
        yield body, (assign or {}).get("value") if i and assign else head_value


def _has_string(node: Any, value: str) -> bool:
    if isinstance(node, dict):
        s = node.get("String")
        if isinstance(s, dict) and s.get("value") == value:
            return True
        return any(_has_string(v, value) for v in node.values())
    if isinstance(node, list):
        return any(_has_string(v, value) for v in node)
    return False


def package_path(refr: Mapping[str, Any]) -> str:
    """A module's package as ``data.a.b`` (``data.?`` when it is not a static path)."""
    parts = _ref_parts(refr)
    return ".".join(["data", *(parts or ["?"])])


def _ref_parts(refr: Mapping[str, Any]) -> list[str] | None:
    """Static path segments of a reference (``a.b["c"]`` → a, b, c); ``None`` if dynamic."""
    if "Var" in refr:
        return [refr["Var"]["value"]]
    if "RefDot" in refr:
        base = _ref_parts(refr["RefDot"]["refr"])
        return None if base is None else [*base, refr["RefDot"]["field"][1]]
    if "RefBrack" in refr:
        base = _ref_parts(refr["RefBrack"]["refr"])
        index = refr["RefBrack"]["index"]
        if base is not None and "String" in index:
            return [*base, index["String"]["value"]]
        return base  # m[k] := ... : explain the whole object m
    return None


def rule_ref(rule: Mapping[str, Any]) -> str | None:
    """The path of a rule below its package (``a.b``); ``None`` for a function or a dynamic ref."""
    if "Default" in rule:
        parts = _ref_parts(rule["Default"]["refr"])
        return ".".join(parts) if parts else None
    spec = rule.get("Spec")
    if not spec:
        return None
    head = spec["head"]
    for kind in ("Compr", "Set"):
        if kind in head:
            parts = _ref_parts(head[kind]["refr"])
            return ".".join(parts) if parts else None
    return None  # functions are not values
