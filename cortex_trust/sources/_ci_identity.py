"""A CI job's OIDC identity token, as GitHub Actions hands it out (trusted publishing).

A job with ``permissions: id-token: write`` gets a request URL and a request token (the CLI reads
them from ``ACTIONS_ID_TOKEN_REQUEST_URL`` and ``ACTIONS_ID_TOKEN_REQUEST_TOKEN`` and passes them
here); a GET of the URL with the wanted ``audience`` returns ``{"value": "<JWT>"}``. The request
follows no redirect, is bounded in time and size, and neither token ever appears in an error.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import httpx

from .._json import load_json
from ..errors import InputError, UnavailableError

__all__ = ["request_actions_id_token"]

_MAX_ANSWER = 64 * 1024


def request_actions_id_token(*, request_url: str, request_token: str, audience: str, timeout: float = 10.0,
                             transport: httpx.BaseTransport | None = None) -> str:
    """The identity token GitHub Actions issues this job for ``audience``.

    Raises :class:`~cortex_trust.errors.InputError` for a request URL that is not http(s) and
    :class:`~cortex_trust.errors.UnavailableError` when the token service cannot be reached,
    answers anything but 200 with ``{"value": "<JWT>"}``, or answers too much.
    """
    if urlsplit(request_url).scheme not in ("https", "http"):
        raise InputError("the CI's identity-token request URL is not an http(s) URL",
                         advice="run in a GitHub Actions job with `permissions: id-token: write`, or "
                                "pass --oidc-token-file FILE")
    separator = "&" if urlsplit(request_url).query else "?"
    url = request_url + separator + urlencode({"audience": audience})
    failed = UnavailableError("could not get an identity token from the CI",
                              advice="check that the job has `permissions: id-token: write`")
    try:
        with httpx.Client(follow_redirects=False, timeout=timeout, trust_env=False, transport=transport) as client, \
                client.stream("GET", url, headers={"Authorization": f"Bearer {request_token}",
                                                   "Accept": "application/json"}) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > _MAX_ANSWER:
                    raise failed
            status = response.status_code
    except httpx.HTTPError:
        raise failed from None
    if status != 200:
        raise UnavailableError(f"the CI's identity-token service answered HTTP {status}",
                               advice=failed.advice or "")
    try:
        value = load_json(bytes(body)).get("value")
    except (ValueError, AttributeError):
        value = None
    if not isinstance(value, str) or value.count(".") != 2:
        raise failed
    return value
