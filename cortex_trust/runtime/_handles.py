"""What the container runtime hands out: a pulled and checked image, a running plugin and the
address the host reaches it on, and a plugin's answer (its body capped by the runtime).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._json import load_json
from ..errors import EvidenceError
from ..policy import Sandbox
from ._sandbox import _sandbox_label

__all__ = ["PluginResponse", "PulledImage", "RunningPlugin"]


@dataclass(frozen=True)
class PulledImage:
    """An image present in the engine whose digest was checked."""

    ref: str
    digest: str
    id: str
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RunningPlugin:
    """A started plugin container and the address the host reaches its endpoints on."""

    name: str
    id: str
    address: str
    port: int
    digest: str
    network: str
    #: The ``io.cortex.sandbox`` label: the decided sandbox the container was started with.
    sandbox: str = ""

    @property
    def base_url(self) -> str:
        """``http://<address>:<port>``."""
        return f"http://{self.address}:{self.port}"

    def runs_under(self, sandbox: Sandbox | None) -> bool:
        """Whether this container was started with exactly ``sandbox`` (a fresh decision's);
        ``False`` for no sandbox or an unlabelled container."""
        return sandbox is not None and self.sandbox == _sandbox_label(sandbox)


@dataclass(frozen=True)
class PluginResponse:
    """What a plugin endpoint answered. ``body`` is capped at 1 MiB."""

    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON. Raises :class:`EvidenceError` if it is not JSON."""
        try:
            return load_json(self.body)
        except ValueError:
            raise EvidenceError("the plugin did not answer with JSON",
                                advice="check the plugin's endpoint implementation") from None
