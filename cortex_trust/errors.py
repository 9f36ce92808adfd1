"""The one exception hierarchy of cortex-trust.

Every error the library raises is a :class:`CortexTrustError`. They are split by who is at
fault, because the CLI maps them to different exit codes and CI pipelines act differently:

* :class:`InputError` (exit 2): the user gave us something wrong (a manifest, a bundle, a
  report, a policy file). The message names the problem and ``advice`` says how to fix it.
* :class:`UnavailableError` (exit 3): something we needed could not run or be reached (the
  policy engine, a registry, a scanner). Whatever was being decided ends in **block**.

Third-party exceptions (yaml, pydantic, httpx, sigstore, docker) are translated into these
at the boundary where they occur; none reaches a user raw.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CollectorError",
    "CortexTrustError",
    "EngineError",
    "EngineTimeout",
    "EvidenceError",
    "InputError",
    "ManifestError",
    "ManifestProblem",
    "PolicyError",
    "RegistryUnavailable",
    "SemVerError",
    "UnavailableError",
]


class CortexTrustError(Exception):
    """Root of every error raised by cortex-trust.

    ``advice`` is the sentence a user needs to fix the problem ("quote the version: ...").
    """

    exit_code: int = 2

    def __init__(self, message: str, *, advice: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.advice = advice

    def __str__(self) -> str:
        if self.advice:
            return f"{self.message} (fix: {self.advice})"
        return self.message


class InputError(CortexTrustError):
    """Bad input from the user: a file, an argument, a document. Exit code 2."""

    exit_code = 2


@dataclass(frozen=True)
class ManifestProblem:
    """One problem in a manifest, located in its source text (1-based line and column)."""

    path: str
    line: int
    column: int
    problem: str
    fix: str
    field: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.problem} (fix: {self.fix})"


class ManifestError(InputError):
    """A manifest could not be loaded or is invalid. Carries every problem found."""

    def __init__(self, problems: list[ManifestProblem]) -> None:
        if not problems:
            raise ValueError("ManifestError needs at least one problem")
        self.problems = list(problems)
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{first.path}:{first.line}:{first.column}: {first.problem}{more}",
                         advice=first.fix)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class SemVerError(InputError, ValueError):
    """A string is not a SemVer 2.0.0 version, or not a valid version requirement.

    Also a :class:`ValueError`, so code that validates with ``except ValueError`` keeps working.
    """


class EvidenceError(InputError):
    """A piece of evidence (bundle, scan report, test results, review, usage) is unusable."""


class PolicyError(InputError):
    """A policy module or data file is invalid (syntax error, bad data document)."""


class UnavailableError(CortexTrustError):
    """Something we needed could not run or be reached. Exit code 3; decisions fail closed."""

    exit_code = 3


class EngineError(UnavailableError):
    """The policy engine failed, timed out, crashed or returned no usable decision."""


class EngineTimeout(EngineError):
    """The policy engine did not answer within its deadline (``decide()`` blocks with
    ``ENGINE_TIMEOUT``; every other :class:`EngineError` blocks with ``ENGINE_ERROR``)."""


class CollectorError(UnavailableError):
    """An evidence collector could not run (a scanner missing, a tool crashing)."""


class RegistryUnavailable(UnavailableError):
    """A registry could not be reached, or answered in a way we cannot trust."""
