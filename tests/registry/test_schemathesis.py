"""Property-based tests of the API from its own OpenAPI document: no request makes it fail
with a 5xx (schemathesis generates paths, queries and bodies, authenticated and not)."""

from __future__ import annotations

import dataclasses
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from tests.registry.conftest import Registry


def test_no_server_errors(registry: Registry) -> None:
    acme = registry.token("acme", "publisher")
    assert registry.publish(acme).status_code == 201  # something to find, review and revoke
    tokens = {"admin": registry.token("cortex", "admin"),
              "reviewer": registry.token("cortex", "reviewer"),
              "publisher": acme, "installation": registry.token("acme", "installation")}
    # A long-poll of the feed (``wait``) may wait 30 s, beyond the generated calls' timeout:
    # waiting is shown in test_feed_long_poll.py; here it is kept short.
    registry.app.state.config = dataclasses.replace(registry.app.state.config,
                                                    feed_max_wait_seconds=0.5)
    schema = schemathesis.openapi.from_asgi("/openapi.json", registry.app)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 9

    for operation in operations:
        @given(case=operation.as_strategy(), who=st.sampled_from([None, *tokens]))
        @settings(max_examples=8, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any, who: str | None) -> None:
            headers = {"Authorization": f"Bearer {tokens[who]}"} if who else None
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        check()
