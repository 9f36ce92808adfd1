"""The registry's API errors are part of the one exception root and map from it in one place.

An :class:`ApiError` is a ``CortexTrustError`` whose ``advice`` travels as the wire's ``fix``; a
library error that reaches a route is answered as the API error :func:`api_error` makes of it
(never the bare 500 of an unexpected exception).
"""

from __future__ import annotations

import pytest

from cortex_trust.errors import (
    CortexTrustError,
    EngineError,
    EvidenceError,
    InputError,
    ManifestError,
    ManifestProblem,
    UnavailableError,
)
from tests.registry.conftest import Registry


def test_api_errors_are_library_errors_with_the_cli_exit_code() -> None:
    from registry._errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized, Unavailable

    for cls, status in ((Unauthorized, 401), (Forbidden, 403), (NotFound, 404), (Conflict, 409),
                        (Invalid, 422)):
        error = cls("CODE", "refused", advice="do this")
        assert isinstance(error, InputError) and not isinstance(error, UnavailableError)
        assert (error.status, error.exit_code, error.advice, str(error)) == (
            status, 2, "do this", "refused")
    down = Unavailable("DATABASE_UNAVAILABLE", "down", advice="retry later")
    assert isinstance(down, UnavailableError) and isinstance(down, CortexTrustError)
    assert (down.status, down.exit_code) == (503, 3)


def test_api_error_maps_the_library_hierarchy() -> None:
    from registry._errors import Invalid, NotFound, Unavailable, api_error

    own = NotFound("NOT_FOUND", "no such plugin")
    assert api_error(own) is own
    bad = api_error(EvidenceError("not a bundle", advice="sign it"), "BUNDLE_INVALID")
    assert isinstance(bad, Invalid)
    assert (bad.status, bad.code, bad.message, bad.advice) == (422, "BUNDLE_INVALID",
                                                               "not a bundle", "sign it")
    assert api_error(InputError("x")).code == "INVALID_INPUT"
    engine = api_error(EngineError("the engine crashed", advice="retry later"))
    assert isinstance(engine, Unavailable)
    assert (engine.status, engine.code, engine.advice) == (503, "UNAVAILABLE", "retry later")
    manifest = api_error(ManifestError([ManifestProblem("m.yaml", 2, 1, "bad name", "fix it"),
                                        ManifestProblem("m.yaml", 3, 1, "no version", "add one")]),
                         "MANIFEST_INVALID")
    assert manifest.advice == "fix it" and manifest.details is not None
    assert len(manifest.details["problems"]) == 2


@pytest.mark.parametrize(("error", "status", "code"), [
    (EvidenceError("the report is not JSON", advice="upload Trivy's JSON"), 422, "INVALID_INPUT"),
    (EngineError("the policy engine timed out", advice="retry later"), 503, "UNAVAILABLE"),
])
def test_a_library_error_raised_in_a_route_is_an_api_error(
        registry: Registry, error: CortexTrustError, status: int, code: str) -> None:
    def route() -> None:
        raise error

    registry.app.add_api_route("/api/v1/test-library-error", route, methods=["GET"])
    r = registry.client.get("/api/v1/test-library-error")
    assert r.status_code == status
    assert r.json() == {"error": {"code": code, "message": error.message, "fix": error.advice}}
