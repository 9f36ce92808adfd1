"""Shared pytest fixtures. Each area keeps its fixtures in its own module of tests/support/."""

import os

import pytest

from tests.support.containers import container_env, container_runtime, hello_image, oci_client
from tests.support.federation import federation, private_sigstore, registry_evaluator

__all__ = ["container_env", "container_runtime", "federation", "hello_image", "oci_client",
           "private_sigstore", "registry_evaluator"]

# cortex decorates text when FORCE_COLOR is set and never when NO_COLOR is: every test starts
# from neither (a CI runner may set them), and the tests of decoration set them themselves.
for _name in ("FORCE_COLOR", "NO_COLOR"):
    os.environ.pop(_name, None)


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    """A CORTEX_PLATFORM_VERSION set where the tests run never reaches them (tests set it), nor
    does the configuration of the user running them (its organization's policy would change
    decisions): commands read an empty configuration unless a test names one, and the
    registry's policy variables and the policy engine's are unset."""
    monkeypatch.delenv("CORTEX_PLATFORM_VERSION", raising=False)
    monkeypatch.delenv("CORTEX_REGISTRY_POLICY_DIR", raising=False)
    monkeypatch.delenv("CORTEX_REGISTRY_POLICY_DATA", raising=False)
    monkeypatch.delenv("CORTEX_POLICY_ENGINE", raising=False)
    monkeypatch.delenv("CORTEX_OPA_URL", raising=False)
    monkeypatch.setenv("CORTEX_CONFIG", str(tmp_path_factory.getbasetemp() / "no-config" / "config.json"))
