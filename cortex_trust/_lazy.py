"""Lazy package exports (PEP 562): importing a package costs nothing until a name is used.

Each package ``__init__`` lists its public names in ``__all__``, imports them under
``TYPE_CHECKING`` (so type checkers see them) and maps each name to the private module that
defines it; :func:`lazy_exports` turns that map into the package's ``__getattr__`` and
``__dir__``. This keeps ``cortex --help``, the isolated policy worker and the re-tiering workers
light: they import only the modules whose names they use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(namespace: MutableMapping[str, Any], exports: Mapping[str, str]) -> tuple[
        Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of the package whose ``globals()`` is ``namespace``.

    A name of ``exports`` is imported from its module (relative to the package) on first use and
    kept in the package, so later uses are plain lookups; any other name raises
    :class:`AttributeError`.
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
