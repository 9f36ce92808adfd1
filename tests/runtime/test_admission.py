"""Admission of a running container before it is called (pure): only the installed image, only
under exactly the sandbox the current decision grants; anything else is stopped, never called.

The sandbox label of a container is the one :func:`container_spec` gives the containers the
runtime starts, so the comparison here is the one made with real containers (the CLI's
``cortex plugin call`` goes through it: tests/install/test_installer_containers.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortex_trust.policy import Decision, Sandbox
from cortex_trust.runtime import RunningPlugin, admit_call, container_spec

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


def _sandbox(**over: Any) -> Sandbox:
    box: dict[str, Any] = {"enabled": True, "network": False, "filesystem": False,
                           "read_only_root": True, "cap_drop": ["ALL"], "no_new_privileges": True,
                           "user": "65534:65534", "memory": "64m", "cpus": 0.5, "pids_limit": 64}
    box.update(over)
    return Sandbox.model_validate(box)


def _label(sandbox: Sandbox) -> str:
    """The ``io.cortex.sandbox`` label of a container started under ``sandbox``."""
    decision = Decision.model_validate({
        "tier": "community", "action": "notice", "reasons": [{"code": "TIER_COMMUNITY",
                                                              "message": "ok"}],
        "sandbox": sandbox.model_dump(mode="json"), "next_tier": None, "overridable": False,
        "policy_revision": "rev"})
    spec = container_spec(decision, plugin="hello", version="0.1.0",
                          image=f"registry.example/acme/hello@{DIGEST}")
    return dict(spec.labels)["io.cortex.sandbox"]


def _running(*, digest: str = DIGEST, sandbox: Sandbox | None = None) -> RunningPlugin:
    return RunningPlugin(name="cortex-hello", id="c0ffee", address="10.89.0.2", port=8080,
                         digest=digest, network="cortex-sandbox",
                         sandbox=_label(sandbox) if sandbox is not None else "")


def test_the_installed_image_under_the_decided_sandbox_is_admitted() -> None:
    running = _running(sandbox=_sandbox())
    admission = admit_call("acme/hello", running, installed_digest=DIGEST, sandbox=_sandbox())
    assert (admission.verdict, admission.container) == ("admit", running)


def test_no_running_container_is_not_running() -> None:
    admission = admit_call("acme/hello", None, installed_digest=DIGEST, sandbox=_sandbox())
    assert (admission.verdict, admission.container) == ("not_running", None)
    assert admission.problem == "acme/hello is not running"
    assert admission.advice == "cortex plugin run acme/hello"


@pytest.mark.parametrize(("digest", "shown"), [(OTHER, OTHER), ("", "unlabelled")])
def test_another_or_an_unlabelled_image_is_stopped(digest: str, shown: str) -> None:
    running = _running(digest=digest, sandbox=_sandbox())
    admission = admit_call("acme/hello", running, installed_digest=DIGEST, sandbox=_sandbox())
    assert (admission.verdict, admission.container) == ("stop", running)
    assert admission.problem == (f"the running container of acme/hello is {shown}, not the "
                                 f"installed {DIGEST}")
    assert admission.advice == "cortex plugin run acme/hello"


@pytest.mark.parametrize("started_under", [
    _sandbox(network=True),  # started under a decision that granted more, since tightened
    _sandbox(memory="128m"),
    None,  # an unlabelled container: nothing says what it was started under
])
def test_a_container_started_under_another_sandbox_is_stopped(started_under: Sandbox | None) -> None:
    running = _running(sandbox=started_under)
    admission = admit_call("acme/hello", running, installed_digest=DIGEST, sandbox=_sandbox())
    assert (admission.verdict, admission.container) == ("stop", running)
    assert "was started with another sandbox than the current decision grants" in admission.problem


def test_a_decision_without_a_sandbox_admits_no_container() -> None:
    admission = admit_call("acme/hello", _running(sandbox=_sandbox()), installed_digest=DIGEST,
                           sandbox=None)
    assert admission.verdict == "stop"


@given(same_image=st.booleans(), network=st.booleans(), filesystem=st.booleans(),
       decided_network=st.booleans(), decided_filesystem=st.booleans())
def test_admitted_only_for_the_installed_image_under_the_decided_sandbox(
        same_image: bool, network: bool, filesystem: bool, decided_network: bool,
        decided_filesystem: bool) -> None:
    started = _sandbox(network=network, filesystem=filesystem)
    decided = _sandbox(network=decided_network, filesystem=decided_filesystem)
    running = _running(digest=DIGEST if same_image else OTHER, sandbox=started)
    admission = admit_call("acme/hello", running, installed_digest=DIGEST, sandbox=decided)
    expected = same_image and started == decided
    assert (admission.verdict == "admit") is expected
    assert admission.verdict in (("admit",) if expected else ("stop",))
