"""cortex-trust: the trust layer of the CORTEX plugin ecosystem.

Python gathers evidence and asks a Rego policy engine; it never decides itself. The public
surface is small and listed in ``__all__`` (a test pins it). Heavy parts (sigstore, regorus,
pydantic models) are imported lazily so that importing the package is cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
