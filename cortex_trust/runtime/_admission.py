"""Admission of a running plugin container: whether it may be called under the current decision.

Pure: it compares what the container engine reports about the running container
(:class:`~cortex_trust.runtime.RunningPlugin`) with what is installed and what the policy decides
now, and says what to do; stopping a container is the caller's (an engine call). It assumes the
run check (:meth:`cortex_trust.install.Installer.check_run`) allowed the plugin to run.

A container is called only when it runs exactly the installed image and was started under
exactly the sandbox the current decision grants. Otherwise it is stopped, never called:

* a container running another image (or an unlabelled one) is not the plugin that was
  decided on;
* a container started under another sandbox was started under another decision (other policy or
  data, since tightened): its sandbox may be wider than what is granted now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ..policy import Sandbox
    from ._handles import RunningPlugin

__all__ = ["Admission", "admit_call"]


@dataclass(frozen=True)
class Admission:
    """What to do with a plugin's container before calling it.

    ``verdict``: ``admit`` (call ``container``), ``not_running`` (nothing to call; start it
    first) or ``stop`` (stop ``container`` and refuse). ``problem`` and ``advice`` say why not.
    """

    verdict: Literal["admit", "not_running", "stop"]
    container: RunningPlugin | None = None
    problem: str = ""
    advice: str = ""


def admit_call(name: str, running: RunningPlugin | None, *, installed_digest: str,
               sandbox: Sandbox | None) -> Admission:
    """Whether installed plugin ``name``'s ``running`` container may be called, given the
    ``installed_digest`` and the ``sandbox`` the current decision grants (``None``: none, so
    no container qualifies)."""
    advice = f"cortex plugin run {name}"
    if running is None:
        return Admission("not_running", problem=f"{name} is not running", advice=advice)
    if running.digest != installed_digest:
        return Admission("stop", running, advice=advice,
                         problem=f"the running container of {name} is "
                                 f"{running.digest or 'unlabelled'}, not the installed "
                                 f"{installed_digest}")
    if not running.runs_under(sandbox):
        return Admission("stop", running, advice=advice,
                         problem=f"the running container of {name} was started with another "
                                 "sandbox than the current decision grants")
    return Admission("admit", running)
