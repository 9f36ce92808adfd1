"""Shared pytest fixtures. Each area keeps its fixtures in its own module of tests/support/."""

import pytest

from tests.support.containers import container_env, container_runtime, hello_image, oci_client
from tests.support.federation import federation, private_sigstore, registry_evaluator

__all__ = ["container_env", "container_runtime", "federation", "hello_image", "oci_client",
           "private_sigstore", "registry_evaluator"]


@pytest.fixture(autouse=True)
def _no_platform_version_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CORTEX_PLATFORM_VERSION set where the tests run never reaches them (tests set it)."""
    monkeypatch.delenv("CORTEX_PLATFORM_VERSION", raising=False)
