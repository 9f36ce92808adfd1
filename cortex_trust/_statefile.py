"""Owner-only JSON state files (configuration, install records, revocation cache).

One writer for all of them, because they hold tokens or security state: atomic (write a
temporary file, then rename), owner-only (0600 in a 0700 directory), and never through a link
planted at the temporary name (``O_EXCL | O_NOFOLLOW`` after removing whatever is there).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from .errors import InputError


def write_private_json(path: Path, doc: Any, *, what: str, advice: str) -> None:
    """Atomically replace ``path`` with ``doc`` as JSON, readable by its owner only.

    Raises :class:`InputError` naming ``what`` (e.g. "the configuration") with ``advice`` when
    the file cannot be written.
    """
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     stat.S_IRUSR | stat.S_IWUSR)
    except OSError as e:
        raise InputError(f"cannot write {what} {path}: {e.strerror or e}", advice=advice) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except OSError as e:
        raise InputError(f"cannot write {what} {path}: {e.strerror or e}", advice=advice) from None
    finally:
        tmp.unlink(missing_ok=True)


def read_private_json(path: Path, *, key: str, what: str, advice: str) -> dict[str, Any]:
    """The object under ``key`` in the state file at ``path``; ``{}`` when there is no file yet.

    Raises :class:`InputError` when the file cannot be read, or is not JSON with an object under
    ``key`` ("``what`` ``path`` is corrupt", with ``advice``).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or not isinstance(doc.get(key), dict):
            raise ValueError(f"no `{key}` object")
        return doc[key]  # type: ignore[no-any-return]
    except (ValueError, RecursionError) as e:
        raise InputError(f"{what} {path} is corrupt: {e}", advice=advice) from None
