"""The registry's setting: the CORTEX platform version its decisions use (``--platform-version``),
recorded in the publish-time input with the source ``registry``; without it, null (unknown),
never cortex-trust's own version."""

from __future__ import annotations

import dataclasses
import json

from sqlmodel import Session, select

from cortex_trust import __version__
from registry._models import PluginVersion
from tests.registry.conftest import Registry


def _stored_context(registry: Registry, version: str) -> dict[str, object]:
    with Session(registry.store.engine) as s:
        row = s.exec(select(PluginVersion).where(PluginVersion.version == version)).one()
    return json.loads(row.input_json)["context"]  # type: ignore[no-any-return]


def test_publish_decides_with_the_registrys_platform_version(registry: Registry) -> None:
    token = registry.token()
    assert registry.publish(token, version="1.0.0").status_code == 201
    unset = _stored_context(registry, "1.0.0")
    assert unset["cortex_version"] is None and unset["cortex_version"] != __version__
    assert unset["cortex_version_source"] is None
    registry.app.state.config = dataclasses.replace(registry.app.state.config,
                                                    platform_version="8.1.0")
    assert registry.publish(token, version="1.1.0").status_code == 201
    context = _stored_context(registry, "1.1.0")
    assert context["cortex_version"] == "8.1.0" and context["cortex_version_source"] == "registry"
