"""Running plugins: the sandbox spec a decision grants, the container runtime that
enforces it, and the admission of a running container before it is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._admission import Admission, admit_call
    from ._containers import ContainerRuntime, connect
    from ._handles import PluginResponse, PulledImage, RunningPlugin
    from ._sandbox import (
        DATA_MOUNT,
        LABEL_PREFIX,
        ContainerSpec,
        SandboxRefused,
        container_name,
        container_spec,
        volume_name,
    )

__all__ = [
    "DATA_MOUNT",
    "LABEL_PREFIX",
    "Admission",
    "ContainerRuntime",
    "ContainerSpec",
    "PluginResponse",
    "PulledImage",
    "RunningPlugin",
    "SandboxRefused",
    "admit_call",
    "connect",
    "container_name",
    "container_spec",
    "volume_name",
]

# Exported lazily (PEP 562): importing the package costs nothing until a name is used, so that
# `cortex --help`, the isolated policy worker and the re-tiering workers stay light.
_EXPORTS = {
    "Admission": "._admission",
    "ContainerRuntime": "._containers",
    "ContainerSpec": "._sandbox",
    "DATA_MOUNT": "._sandbox",
    "LABEL_PREFIX": "._sandbox",
    "PluginResponse": "._handles",
    "PulledImage": "._handles",
    "RunningPlugin": "._handles",
    "SandboxRefused": "._sandbox",
    "admit_call": "._admission",
    "connect": "._containers",
    "container_name": "._sandbox",
    "container_spec": "._sandbox",
    "volume_name": "._sandbox",
}

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
