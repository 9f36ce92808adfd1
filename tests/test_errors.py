"""The one exception root: timeouts are their own class, and every library error is a
:class:`CortexTrustError` (so the CLI maps it to an exit code instead of "internal error")."""

from __future__ import annotations

import pytest

from cortex_trust.errors import (
    CortexTrustError,
    EngineError,
    EngineTimeout,
    EvidenceError,
    InputError,
    SemVerError,
    UnavailableError,
)
from cortex_trust.manifest import SemVerError as SemVerFromSemver
from cortex_trust.manifest import parse_semver, semver_key


def test_engine_timeout_is_an_engine_error() -> None:
    e = EngineTimeout("the policy engine timed out after 2s", advice="raise the timeout")
    assert isinstance(e, EngineError) and isinstance(e, UnavailableError)
    assert e.exit_code == 3 and e.advice == "raise the timeout"


def test_semver_error_is_under_the_root_and_still_a_value_error() -> None:
    assert SemVerFromSemver is SemVerError
    for bad in ("1.2", "v1.0.0", "01.0.0"):
        with pytest.raises(SemVerError) as info:
            parse_semver(bad)
        assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)
        assert info.value.exit_code == 2
        # the message is the plain text, as before (no advice is attached)
        assert str(info.value) == info.value.message


def test_a_registry_served_bad_version_is_a_library_error() -> None:
    with pytest.raises(CortexTrustError):
        semver_key("not-a-version")


@pytest.mark.security_review
def test_every_library_error_here_is_a_cortex_error() -> None:
    # The readers' regression tests rely on these being CortexTrustErrors (exit 2, not a crash).
    assert issubclass(EvidenceError, InputError) and issubclass(InputError, CortexTrustError)
