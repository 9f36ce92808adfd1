"""Loading ``manifest.yaml`` safely.

Guarantees:

* :func:`parse_manifest` and :func:`load_manifest` return a :class:`~cortex_trust.manifest.Manifest`
  or raise :class:`~cortex_trust.errors.ManifestError` listing **every** problem found, each with
  file, 1-based line and column, the field, the problem and a fix. No YAML or pydantic exception
  ever escapes, whatever the input (the hardened loader is :mod:`cortex_trust.manifest._yaml`).
* Nothing YAML silently converts is accepted: an unquoted ``version: 1.10`` (the float 1.1) is
  refused with "quote the version", ``network: yes`` and ``network: "true"`` are not booleans.
* Unknown fields are errors, with a "did you mean" hint (``netwrok`` → ``network``).
"""

from __future__ import annotations

import os

from pydantic import ValidationError

from .._io import ReadRefused, read_bounded
from .._text import clip
from ..errors import ManifestError, ManifestProblem
from ._model import Manifest
from ._problems import _duplicate_capabilities, _pydantic_problems, _scalar_problems
from ._yaml import MAX_BYTES, load_document

__all__ = ["load_manifest", "parse_manifest"]


def parse_manifest(data: bytes | str, *, source: str = "manifest.yaml") -> Manifest:
    """Validate a manifest given as bytes or text.

    ``source`` names the file in problems (``source:line:col``). Returns a :class:`Manifest`;
    raises :class:`~cortex_trust.errors.ManifestError` with every problem found, sorted by
    position. Never raises anything else.
    """
    doc = load_document(data, source=source)
    problems, reported = _scalar_problems(doc)
    problems.extend(_duplicate_capabilities(doc, reported))
    try:
        manifest = Manifest.model_validate(doc.value)
    except ValidationError as e:
        problems.extend(_pydantic_problems(doc, e, reported))
    else:
        if not problems:
            return manifest
    if not problems:  # pragma: no cover - a failed validation always yields a problem
        problems.append(ManifestProblem(source, 1, 1, "the manifest is invalid",
                                        "see `cortex manifest schema`"))
    problems.sort(key=lambda p: (p.line, p.column))
    raise ManifestError([
        ManifestProblem(p.path, p.line, p.column, clip(p.problem), clip(p.fix), clip(p.field, 200))
        for p in problems])


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read and validate a manifest file.

    A missing, unreadable or oversized file, a directory or a non-regular file (a FIFO, a device)
    is a :class:`~cortex_trust.errors.ManifestError` at line 1, column 1 with advice. The file is
    read with :func:`cortex_trust._io.read_bounded` (open, ``fstat``, bounded read).
    """
    source = os.fspath(path)
    try:
        data = read_bounded(source, max_bytes=MAX_BYTES)
    except ReadRefused as e:
        raise _read_refused(e, source) from None
    return parse_manifest(data, source=source)


def _read_refused(e: ReadRefused, source: str) -> ManifestError:
    """The manifest problem (line 1, column 1, with a fix) for a file :func:`read_bounded` refused."""
    problem, fix = {
        "missing": ("file not found", "check the path; a plugin's manifest is usually "
                                      "manifest.yaml at the root of its repository"),
        "directory": ("is a directory, not a manifest file",
                      f"pass the manifest file inside it: {os.path.join(source, 'manifest.yaml')}"),
        "not_regular": ("is not a regular file", "pass a manifest.yaml file"),
        "permission": ("cannot be read (permission denied)", "make the file readable for the user running cortex"),
        "invalid": ("is not a valid path", "check the path"),
        "too_large": (f"the manifest is {'more than ' + str(MAX_BYTES) if e.size is None else e.size} bytes; "
                      f"the limit is {MAX_BYTES} (64 KiB)",
                      "a manifest is a short description; move large content out of it"),
    }.get(e.kind, (f"cannot be read ({e.detail or e.kind})", "check the path and the file"))
    return ManifestError([ManifestProblem(source, 1, 1, problem, fix)])
