"""Where each field of a manifest file is written: for outputs that point at a line (CI
annotations, SARIF, code-quality reports).

Facts about the file's text only, never about validity: the manifest is loaded by
:func:`cortex_trust.manifest.load_manifest`, which raises for a bad one.
"""

from __future__ import annotations

import os

from .._io import ReadRefused, read_bounded
from ..errors import ManifestError

__all__ = ["field_lines"]


def field_lines(path: str | os.PathLike[str]) -> dict[str, int]:
    """The 1-based line of the key of every mapping field in the manifest at ``path``, by its
    dotted path (``trust.network``, ``capabilities[0].method``). Empty when the file cannot be
    read or is not a manifest-shaped YAML mapping; never raises for the file's content."""
    from ._yaml import MAX_BYTES, dotted, load_document

    source = os.fspath(path)
    try:
        doc = load_document(read_bounded(source, max_bytes=MAX_BYTES), source=source)
    except (ReadRefused, ManifestError):
        return {}
    return {dotted(p): m.line for p, m in doc.key_positions.items() if p}
