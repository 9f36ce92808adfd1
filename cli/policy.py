"""``cortex policy``: evaluate an input document, run Rego policy tests, check and format policy files, see
what a policy change would do to a registry, build an OPA bundle, print the input schema.

Exit codes:

* ``eval``: 0 a decision was reached (whatever its action: this is an evaluation tool),
  2 the input or a policy file is invalid, 3 the decision failed closed (engine error, timeout,
  undefined or invalid decision).
* ``test``: 0 every test passed (and coverage reached ``--min-coverage``), 1 a test failed or
  errored, no test ran, or coverage is too low, 2 a policy file (or a ``*_test.yaml`` case
  file) is invalid.
* ``check``: 0 every file is valid, 2 a problem was found (each printed as ``file:line:col``).
* ``fmt``: 0 every module is formatted (or was rewritten), 1 a module would change (with
  ``--check``), 2 a module is unreadable, does not parse, or cannot be formatted safely.
* ``what-if``: 0 no stored version would be newly blocked, 1 one would, 2 a policy file is
  invalid, 3 the registry could not be read or a decision failed closed.
* ``bundle build``: 0 the bundle was written, 2 a policy, data file or signing key is invalid, or
  the output cannot be written.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from ._options import DataOpt, FormatOpt, NoDefaultsOpt, OutputFormat, PolicyDirOpt, WhatIfFormatOpt

app = typer.Typer(
    help="Evaluate and test the trust policies (Rego).",
    no_args_is_help=True,
)


class _EngineKind(StrEnum):
    embedded = "embedded"
    opa = "opa"


def _read_input(path: str) -> Any:
    """The input document as a validated PolicyInput; exit 2 with the field and the fix."""
    from pydantic import ValidationError

    from cortex_trust._io import DEFAULT_MAX_BYTES, read_evidence_file
    from cortex_trust._json import JsonLimitError, load_json
    from cortex_trust.errors import EvidenceError
    from cortex_trust.policy import PolicyInput

    from ._errors import fail

    if path == "-":
        # Bounded like a file: a runaway producer must not fill the memory.
        stream = getattr(sys.stdin, "buffer", sys.stdin)
        data: bytes | str = stream.read(DEFAULT_MAX_BYTES + 1)
        if len(data) > DEFAULT_MAX_BYTES:
            fail(f"the input on stdin is larger than {DEFAULT_MAX_BYTES} bytes",
                 advice="pass the input document cortex wrote, not another stream")
        shown = "<stdin>"
    else:
        try:
            data = read_evidence_file(path, what="input", max_bytes=DEFAULT_MAX_BYTES)
        except EvidenceError as e:
            fail(f"cannot read the {e.message}",
                 advice=e.advice or "pass a JSON file with --input, or '-' for stdin")
        shown = path
    try:
        raw = load_json(data)
    except UnicodeDecodeError:
        fail(f"the input {shown} is not UTF-8 text", advice="write the input document as UTF-8 JSON")
    except JsonLimitError as e:
        fail(f"{shown}:{e.lineno}:{e.colno}: the input is refused: {e.msg}",
             advice="pass a cortex.input/v1 document (`cortex policy schema`); it has no such values")
    except json.JSONDecodeError as e:
        fail(f"{shown}:{e.lineno}:{e.colno}: the input is not valid JSON: {e.msg}",
             advice="fix the JSON at that position")
    try:
        return PolicyInput.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        fail(f"{shown}: input.{where}: {first['msg']}{more}",
             advice="see `cortex policy schema` for the input document (cortex.input/v1)")


def _jsonable(v: Any) -> str:
    from cortex_trust._text import clip

    return clip(json.dumps(v, sort_keys=True, separators=(",", ":")), 300)


@app.command("eval")
def eval_(
    input_file: Annotated[str, typer.Option(
        "--input", "-i", help="The input document (JSON, cortex.input/v1); '-' reads stdin.",
        metavar="FILE", show_default=False)],
    policy_dirs: PolicyDirOpt = None,
    data_files: DataOpt = None,
    no_defaults: NoDefaultsOpt = False,
    output_format: FormatOpt = OutputFormat.text,
    explain: Annotated[bool, typer.Option(
        "--explain", help="Also print why: for each reason and each requirement of the next tier, "
        "the rule that emits it and its conditions with their values.")] = False,
    rules: Annotated[bool, typer.Option(
        "--rules", help="Also print the value of every rule in data.cortex.")] = False,
    engine_kind: Annotated[_EngineKind | None, typer.Option(
        "--engine", show_default=False,
        help="embedded: regorus in this process; opa: an OPA server (--opa-url). Default: "
             "$CORTEX_POLICY_ENGINE, else the configuration's policy-engine, else embedded.")
    ] = None,
    opa_url: Annotated[str | None, typer.Option(
        "--opa-url", help="The OPA server, e.g. http://127.0.0.1:8181 (with --engine opa).",
        metavar="URL", show_default=False)] = None,
) -> None:
    """Decide on one input document and print tier, action, reasons and sandbox.

    Exit 0 when a decision was reached (any action), 2 for an invalid input or policy,
    3 when the decision failed closed (the engine could not decide).
    """
    from cortex_trust.engine import decide

    from ._errors import EXIT_UNAVAILABLE, fail

    policy_input = _read_input(input_file)
    engine: Any
    explained: list[tuple[str, Any, str | None]] = []
    why: dict[str, Any] | None = None
    engine_kind, opa_url = _engine_setting(engine_kind, opa_url)
    if engine_kind is _EngineKind.opa:
        if not opa_url:
            fail("--engine opa needs --opa-url", advice="pass e.g. --opa-url http://127.0.0.1:8181")
        if policy_dirs or data_files or no_defaults:
            fail("--policy-dir, --data and --no-defaults apply to the embedded engine only",
                 advice="an OPA server evaluates the policies it was loaded with")
        _note_configured_policy_unused()
        from cortex_trust.engine import OpaServerEngine

        engine = OpaServerEngine(opa_url)
        with engine:
            decision = decide(engine, policy_input)
            if explain or rules:
                if explain:
                    print("note: --explain needs the embedded engine; showing every rule's value instead",
                          file=sys.stderr)
                explained = _opa_explain(engine, policy_input.to_json())
    else:
        from cortex_trust.engine import EmbeddedEngine

        from ._options import load_org_policy

        policy_set = load_org_policy(policy_dirs, data_files, defaults=not no_defaults)
        _notice_overrides(policy_set)
        with EmbeddedEngine(policy_set) as engine:
            decision = decide(engine, policy_input)
            if rules:
                explained = _embedded_explain(engine, policy_input.to_json())
            if explain:
                from ._policy_explain import why_of

                why = why_of(engine, policy_input.to_json(), decision)

    if output_format == OutputFormat.json:
        doc: dict[str, Any] = {
            "schema": "cortex.decision/v1",
            "engine": engine.name,
            "policy_revision": engine.revision,
            "decision": decision.to_json_dict(),
        }
        if explained:
            doc["rules"] = [{"rule": p, "value": v, "error": err} for p, v, err in explained]
        if why is not None:
            doc["explain"] = why
        print(json.dumps(doc, indent=2))
    else:
        from ._render import render_decision, style_for

        sys.stdout.write(render_decision(decision, "text", style=style_for(sys.stdout)))
        print(f"policy: {engine.name} revision {engine.revision or '(unknown)'}")
        if why is not None:
            from ._policy_explain import render_why

            sys.stdout.write(render_why(why, lambda name: _shown(str(policy_set.module_path(name) or name))))
        if explained:
            print("rules:")
            for path, value, err in explained:
                shown = f"error: {err}" if err else ("undefined" if value is None else _jsonable(value))
                print(f"  {path} = {shown}")
    if decision.failed:
        raise typer.Exit(EXIT_UNAVAILABLE)


def _engine_setting(kind: _EngineKind | None, opa_url: str | None) -> tuple[_EngineKind, str | None]:
    """``--engine`` and ``--opa-url``, else the environment's, else the configuration's."""
    from cortex_trust.install import load_config

    from ._options import engine_setting
    from ._paths import config_path

    if kind is _EngineKind.embedded or (kind is _EngineKind.opa and opa_url):
        return kind, opa_url
    chosen, url = engine_setting(kind, opa_url, load_config(config_path()))
    return _EngineKind(chosen), url


def _shown(path: str) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _note_configured_policy_unused() -> None:
    # An organization that configured its policy must not believe an OPA server applies it.
    from cortex_trust.install import load_config

    from ._options import configured_policy
    from ._paths import config_path

    used = configured_policy(None, None, load_config(config_path()))[2]
    if used:
        verb = "are" if len(used) > 1 else "is"
        print(f"note: the configured {' and '.join(used)} {verb} not used: the OPA server decides "
              "with the policies it was loaded with", file=sys.stderr)


def _notice_overrides(policy_set: Any) -> None:
    # A replaced default module drops its rules (e.g. REVOKED): never let that pass unseen.
    for line in policy_set.override_notices():
        print(f"note: {line}", file=sys.stderr)


def _embedded_explain(engine: Any, input_json: str) -> list[tuple[str, Any, str | None]]:
    from cortex_trust.errors import EngineError

    try:
        rows = engine.explain(input_json)
    except EngineError as e:
        return [("data.cortex", None, e.message)]
    return [(r.path, r.value, r.error) for r in rows if r.path != "data.cortex.decision"]


def _opa_explain(engine: Any, input_json: str) -> list[tuple[str, Any, str | None]]:
    from cortex_trust.errors import EngineError

    try:
        doc = engine.query("cortex", input_json)
    except EngineError as e:
        return [("data.cortex", None, e.message)]
    if not isinstance(doc, dict):
        return [("data.cortex", doc, None)]
    return [(f"data.cortex.{k}", v, None) for k, v in sorted(doc.items()) if k != "decision"]


@app.command("test")
def test(
    dirs: Annotated[list[Path] | None, typer.Argument(
        help="Policy directories whose modules and *_test.rego files are loaded over the defaults.",
        metavar="DIR", show_default=False)] = None,
    no_defaults: NoDefaultsOpt = False,
    data_files: DataOpt = None,
    run: Annotated[str | None, typer.Option(
        "--run", help="Only run tests whose package.name matches this regular expression.",
        metavar="REGEX", show_default=False)] = None,
    min_coverage: Annotated[float, typer.Option(
        "--min-coverage", help="Fail when line coverage of the non-test modules is below PCT.",
        metavar="PCT")] = 0.0,
    output_format: FormatOpt = OutputFormat.text,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also list passing tests.")] = False,
) -> None:
    """Run the test_* rules of the policies (defaults + DIRs); print results and coverage.

    Exit 0 all passed, 1 a failure, an error, no tests or coverage below --min-coverage,
    2 an invalid policy file.
    """
    from cortex_trust.engine import find_case_files, load_cases, run_policy_tests
    from cortex_trust.policy import load_policy_set

    # A directory holding only declarative cases adds no policy (and is not a mistyped one).
    policy_dirs = [d for d in dirs or [] if not find_case_files([d]) or _holds_policy(d)]
    cases = [c for f in find_case_files(dirs or []) for c in load_cases(f)]  # a bad file: exit 2 now
    policy_set = load_policy_set(policy_dirs, data_files or [], defaults=not no_defaults,
                                 include_tests=True)
    _notice_overrides(policy_set)
    report = run_policy_tests(policy_set, run=run)
    report = _with_cases(report, policy_set, cases, run)
    counts = report.counts
    coverage_ok = report.coverage_percent + 1e-9 >= min_coverage
    ok = report.passed and coverage_ok
    shown = _shown

    if output_format == OutputFormat.json:
        print(json.dumps({
            "passed": ok,
            "counts": counts,
            "policy_revision": policy_set.revision,
            "results": [{"package": r.package.removeprefix("data."), "name": r.name,
                         "status": r.status, "message": r.message,
                         "duration_ms": round(r.duration * 1000, 3),
                         "module": r.module, "line": r.line, "failure": r.failure}
                        for r in report.results],
            "coverage": {
                "percent": round(report.coverage_percent, 2),
                "min": min_coverage,
                "files": [{"module": f.name, "path": shown(f.path), "percent": round(f.percent, 2),
                           "covered": len(f.covered), "total": f.total,
                           "not_covered": sorted(f.not_covered)} for f in report.coverage],
            },
        }, indent=2))
    else:
        for r in report.results:
            if r.status == "pass" and not verbose:
                continue
            line = f"{r.status.upper():5} {r.full_name}"
            if verbose:
                line += f" ({r.duration * 1000:.1f} ms)"
            print(line)
            if r.message and r.status != "pass":
                where = shown(str(policy_set.module_path(r.module) or r.module))
                print(f"      {where}:{r.line}: {r.message}")
                if r.failure:
                    _print_failure(where, r.failure)
        if not report.results:
            print("no test_* rules found" + (f" matching --run {run!r}" if run else ""))
        print(f"{counts['pass']} passed, {counts['fail']} failed"
              + (f", {counts['error']} errors" if counts["error"] else ""))
        print("coverage:")
        for f in report.coverage:
            print(f"  {f.percent:6.1f}%  {f.name} ({len(f.covered)}/{f.total} lines)")
        print(f"  {report.coverage_percent:6.1f}%  total"
              + ("" if coverage_ok else f" (below --min-coverage {min_coverage:g}%)"))
    if not ok:
        raise typer.Exit(1)


def _holds_policy(d: Path) -> bool:
    return any(d.rglob("*.rego")) or any((d / n).is_file() for n in ("data.yaml", "data.yml", "data.json"))


def _with_cases(report: Any, policy_set: Any, cases: list[Any], run: str | None) -> Any:
    """``report`` with the results of the declarative ``cases`` appended."""
    import re

    from cortex_trust.engine import EmbeddedEngine, TestReport, run_cases

    if not cases:
        return report
    pattern = re.compile(run) if run else None  # already checked by run_policy_tests
    with EmbeddedEngine(policy_set) as engine:
        results = [r for r in run_cases(engine, cases, shown=_shown)
                   if pattern is None or pattern.search(r.full_name)]
    return TestReport((*report.results, *results), report.coverage)


def _print_failure(where: str, failure: Any) -> None:
    """The failing expression and the values of its terms (as ``opa test --var-values``)."""
    from cortex_trust._text import clip

    from ._inert import neutralise

    print(f"      {where}:{failure['line']}: fails: {neutralise(failure['expression'])}")
    for v in failure["values"]:
        value = json.dumps(v["value"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        print(f"        {neutralise(v['term'])} = {neutralise(clip(value, 300))}")


@app.command("check")
def check(
    paths: Annotated[list[Path], typer.Argument(
        help="Policy directories or single files (.rego, data .yaml/.json, *_test.yaml cases).",
        metavar="PATH", show_default=False)],
    data_files: DataOpt = None,
    no_defaults: NoDefaultsOpt = False,
    output_format: FormatOpt = OutputFormat.text,
) -> None:
    """Check policy files without running them: Rego v1 parsing, data keys against the data
    schema, test-case files; every problem as file:line:col (for pre-commit).

    Exit 0 when every file is valid, 2 when any problem was found.
    """
    from cortex_trust.engine import check_policy_paths

    problems = check_policy_paths(paths, data_files or [], defaults=not no_defaults)
    if output_format == OutputFormat.json:
        print(json.dumps({"ok": not problems, "problems": [
            {"file": p.file, "line": p.line, "col": p.col, "message": p.message, "advice": p.advice}
            for p in problems]}, indent=2))
    else:
        from ._inert import neutralise

        for p in problems:
            print(neutralise(str(p)), file=sys.stderr)
            if p.advice:
                print(f"  fix: {neutralise(p.advice)}", file=sys.stderr)
        if not problems:
            print("ok: every policy file is valid")
    if problems:
        raise typer.Exit(2)


@app.command("fmt")
def fmt(
    paths: Annotated[list[Path], typer.Argument(
        help="Rego modules or directories of them.", metavar="PATH", show_default=False)],
    check_only: Annotated[bool, typer.Option(
        "--check", help="Write nothing; list the modules that would change and exit 1 if any.")] = False,
    diff: Annotated[bool, typer.Option(
        "--diff", help="Write nothing; print a unified diff of the changes.")] = False,
) -> None:
    """Normalise the layout of Rego modules (tab indentation, no trailing whitespace, single blank
    lines, one final newline); raw strings are never touched, and a module is written only when
    its formatted text parses and decides identically (for pre-commit).

    Exit 0 formatted, 1 a module would change (--check), 2 a module is invalid or cannot be
    formatted safely (left unchanged).
    """
    import difflib

    from cortex_trust.engine import format_policy_paths

    from ._inert import neutralise

    results, problems = format_policy_paths(paths, write=not (check_only or diff))
    changed = [r for r in results if r.changed]
    for r in changed:
        if diff:
            sys.stdout.writelines(neutralise(line) + "\n" for line in difflib.unified_diff(
                r.original.splitlines(), r.formatted.splitlines(),
                f"a/{r.path}", f"b/{r.path}", lineterm=""))
        elif check_only:
            print(f"would reformat {neutralise(str(r.path))}")
        else:
            print(f"reformatted {neutralise(str(r.path))}")
    for p in problems:
        print(neutralise(str(p)), file=sys.stderr)
        if p.advice:
            print(f"  fix: {neutralise(p.advice)}", file=sys.stderr)
    if problems:
        raise typer.Exit(2)
    if check_only and changed:
        raise typer.Exit(1)


@app.command("what-if")
def what_if(
    registry: Annotated[str, typer.Option(
        "--registry", metavar="URL", show_default=False,
        help="The registry whose stored versions are decided again (read-only API).")],
    policy_dirs: PolicyDirOpt = None,
    data_files: DataOpt = None,
    no_defaults: NoDefaultsOpt = False,
    namespace: Annotated[str | None, typer.Option(
        "--namespace", metavar="NAME", show_default=False,
        help="Only the plugins of this namespace.")] = None,
    output_format: WhatIfFormatOpt = "text",
) -> None:
    """What a policy change would do to a registry's versions, without its database.

    Reads every version's stored decision and its input document (rebuilt by the registry from
    its stored facts) through the API, decides each input with the given policy set, and
    reports every version whose tier, action or sandbox would change, grouped by reason.
    Nothing is written. Exit 1 when a version would be newly blocked, 3 when the registry
    cannot be read or a decision failed closed.
    """
    from cortex_trust.engine import EmbeddedEngine, decide
    from cortex_trust.sources import RegistryClient

    from ._options import load_org_policy
    from ._whatif import WhatIf, whatif_exit_code

    policy_set = load_org_policy(policy_dirs, data_files, defaults=not no_defaults)
    _notice_overrides(policy_set)
    whatif = WhatIf(policy_revision=policy_set.revision)
    with RegistryClient(registry) as client, EmbeddedEngine(policy_set) as engine:
        for plugin in client.iter_plugins(namespace=namespace):
            for summary in client.list_versions(plugin.namespace, plugin.name):
                stored = client.get_version(plugin.namespace, plugin.name, summary.version)
                policy_input = client.get_input(plugin.namespace, plugin.name, summary.version)
                whatif.add(f"{plugin.namespace}/{plugin.name}", summary.version, stored.state,
                           stored.decision.to_json_dict(),
                           decide(engine, policy_input).to_json_dict())
    sys.stdout.write(whatif.render(output_format))
    raise typer.Exit(whatif_exit_code(whatif.report()))


bundle_app = typer.Typer(help="OPA bundles of the trust policies.", no_args_is_help=True)
app.add_typer(bundle_app, name="bundle")


@bundle_app.command("build")
def bundle_build(
    output: Annotated[Path, typer.Option(
        "--output", "-o", metavar="FILE", show_default=False, help="Where to write the bundle (.tar.gz).")],
    dirs: Annotated[list[Path] | None, typer.Argument(
        metavar="[DIR]...", show_default=False,
        help="Organization policy directories added to the defaults (as --policy-dir).")] = None,
    data_files: DataOpt = None,
    no_defaults: NoDefaultsOpt = False,
    revision: Annotated[str | None, typer.Option(
        "--revision", metavar="REV", show_default=False,
        help="The manifest's revision (default: the policy set's revision, as the embedded engine "
             "records it).")] = None,
    signing_key: Annotated[Path | None, typer.Option(
        "--signing-key", metavar="FILE", show_default=False,
        help="Sign the bundle (.signatures.json): a PEM private key (RS256, ES256) or a file holding "
             "the HMAC secret (HS256).")] = None,
    signing_alg: Annotated[str, typer.Option(
        "--signing-alg", metavar="RS256|ES256|HS256", help="The JWS algorithm of the signature.")] = "RS256",
    key_id: Annotated[str | None, typer.Option(
        "--signing-key-id", metavar="ID", show_default=False,
        help="The key's name (JWS kid), as OPA's verification key is named.")] = None,
    scope: Annotated[str | None, typer.Option(
        "--scope", metavar="SCOPE", show_default=False, help="The signature's scope claim.")] = None,
) -> None:
    """Write the policy set as an OPA bundle: .manifest (revision, roots), data.json, the modules
    and, with --signing-key, .signatures.json. `opa run --server --bundle FILE` decides with it
    exactly as the embedded engine does. Exit 0 written, 2 a bad policy, data or key.
    """
    from cortex_trust.policy import BUNDLE_SIGNING_ALGORITHMS, build_bundle

    from ._errors import fail
    from ._options import load_org_policy

    if signing_alg not in BUNDLE_SIGNING_ALGORITHMS:
        fail(f"--signing-alg {signing_alg!r} is not one of {', '.join(BUNDLE_SIGNING_ALGORITHMS)}",
             advice="use --signing-alg RS256 (an RSA key), ES256 (an EC P-256 key) or HS256 (a secret)")
    key: bytes | None = None
    if signing_key is not None:
        try:
            key = signing_key.read_bytes()
        except OSError as e:
            fail(f"cannot read the signing key {signing_key}: {e.strerror}",
                 advice="pass a readable PEM file (or the HMAC secret's file) with --signing-key")
        if signing_alg == "HS256":
            key = key.rstrip(b"\r\n")
    policy_set = load_org_policy(dirs, data_files, defaults=not no_defaults)
    _notice_overrides(policy_set)
    bundle = build_bundle(policy_set, revision=revision, signing_key=key, signing_alg=signing_alg,
                          key_id=key_id, scope=scope)
    try:
        output.write_bytes(bundle)
    except OSError as e:
        fail(f"cannot write {output}: {e.strerror}", advice="pass a writable path with -o")
    signed = f", signed {signing_alg}" if key is not None else ""
    print(f"wrote {output}: revision {revision or policy_set.revision}{signed}", file=sys.stderr)


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of the policy input document (cortex.input/v1)."""
    from cortex_trust.policy import input_json_schema

    print(json.dumps(input_json_schema(), indent=2))
