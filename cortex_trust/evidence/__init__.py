"""Evidence collectors: each turns raw material into one typed piece of ``input.evidence``.

One module per evidence source (``signature`` for Sigstore bundles, ...). Collectors establish
facts only; they never decide. Every piece says whether it is present and which image digest
it is about, so that evidence about another artifact can be dropped rather than used.
"""

from __future__ import annotations

__all__: list[str] = []
