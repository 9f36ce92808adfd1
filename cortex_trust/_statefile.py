"""Owner-only JSON state files (configuration, install records, revocation cache).

One reader and one writer for all of them, because they hold tokens or security state.

Writing is atomic (write a temporary file, then rename), owner-only (0600 in a 0700 directory),
and never through a link planted at the temporary name (``O_EXCL | O_NOFOLLOW`` after removing
whatever is there).

Reading trusts nothing that is already there. A state file is refused (an
:class:`~cortex_trust.errors.InputError` naming the path and the fix, never tightened silently)
when it is a symbolic link (opened with ``O_NOFOLLOW``: a planted link is never followed), not a
regular file (opened with ``O_NONBLOCK``, so a FIFO cannot block), owned by another user,
writable by its group or by others, or larger than its bound. Its directory is refused when it
is owned by another user or writable by its group or by others (unless sticky, like ``/tmp``,
where no one else can replace a file we own): whoever can write there can replace the file.
The checks concern the descriptor that is then read (``fstat``), not a path that could be
swapped in between. Directories themselves may be links (a data directory moved to another
disk is the user's choice); their targets are checked.

Documents are parsed with :func:`cortex_trust._json.load_json` (bounded nesting and numbers).
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

from ._json import load_json
from .errors import InputError

__all__ = [
    "MAX_STATE_BYTES",
    "check_private_dir",
    "read_private_bytes",
    "read_private_doc",
    "read_private_json",
    "write_private_json",
]

#: Bound on one state file. The largest is the revocation cache (at most 200,000 entries).
MAX_STATE_BYTES = 256 * 1024 * 1024


def _euid() -> int | None:
    geteuid = getattr(os, "geteuid", None)
    return geteuid() if callable(geteuid) else None


def _refuse_insecure(path: Path, st: os.stat_result, *, kind: str) -> None:
    """Raise :class:`InputError` when ``st`` (of ``path``) belongs to another user or can be
    written by others."""
    euid = _euid()
    if euid is not None and st.st_uid != euid:
        raise InputError(
            f"the {kind} {path} is owned by uid {st.st_uid}, not by you (uid {euid}); "
            "cortex does not use state another user controls",
            advice=f"use your own {kind} (or, if it is yours, `chown $(id -u) {path}`)")
    sticky_dir = kind == "directory" and st.st_mode & stat.S_ISVTX
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky_dir:
        mode = 700 if kind == "directory" else 600
        raise InputError(
            f"the {kind} {path} is writable by other users (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); cortex does not use state others can change",
            advice=f"chmod {mode} {path}")


def check_private_dir(directory: Path) -> None:
    """Raise :class:`InputError` unless ``directory`` (if it exists) is a directory owned by
    this user and not writable by others (a sticky directory such as ``/tmp`` is allowed)."""
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        return
    except OSError as e:
        raise InputError(f"cannot use the directory {directory}: {e.strerror or e}",
                         advice="check the path and its permissions") from None
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"{directory} is not a directory",
                         advice=f"move {directory} away; cortex keeps its state in a directory")
    _refuse_insecure(directory, st, kind="directory")


def _check_dirs(path: Path, root: Path | None) -> None:
    """Check ``path``'s directory, and every directory above it up to ``root`` (inclusive)."""
    directory = path.parent
    check_private_dir(directory)
    if root is not None:
        while directory != root and root in directory.parents:
            directory = directory.parent
            check_private_dir(directory)


def write_private_json(path: Path, doc: Any, *, what: str, advice: str,
                       root: Path | None = None) -> None:
    """Atomically replace ``path`` with ``doc`` as JSON, readable by its owner only.

    ``root`` (an ancestor of ``path``) has its directories checked too. Raises
    :class:`InputError` naming ``what`` (e.g. "the configuration") with ``advice`` when the
    file cannot be written, or when a directory on the way is not private (see the module).
    """
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise InputError(f"cannot write {what} {path}: {e.strerror or e}", advice=advice) from None
    _check_dirs(path, root)
    try:
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


def read_private_bytes(path: Path, *, what: str, max_bytes: int = MAX_STATE_BYTES,
                       root: Path | None = None, advice: str | None = None) -> bytes | None:
    """The bytes of the state file at ``path``, or ``None`` when there is no file yet.

    ``root`` (an ancestor of ``path``) has its directories checked too. Raises
    :class:`InputError` when the file is refused (see the module) or cannot be read; ``advice``
    is the fix for a file that is not a regular file or is too large.
    """
    replace = advice or f"move {path} away; cortex writes it again"
    _check_dirs(path, root)
    flags = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
             | getattr(os, "O_CLOEXEC", 0))
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EMLINK) or os.path.islink(path):
            # O_NOFOLLOW refused a link (ELOOP on Linux, EMLINK on FreeBSD): never followed.
            raise InputError(f"{what} {path} is a symbolic link; state files are never read "
                             "through links", advice=f"remove the link: rm {path}") from None
        raise InputError(f"cannot read {what} {path}: {e.strerror or e}",
                         advice="check the file and its permissions") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{what} {path} is not a regular file",
                             advice=replace)
        _refuse_insecure(path, st, kind="file")
        if st.st_size > max_bytes:
            raise InputError(f"{what} {path} is larger than {max_bytes} bytes",
                             advice=replace)
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise InputError(f"{what} {path} is larger than {max_bytes} bytes",
                                 advice=replace)
    except OSError as e:
        raise InputError(f"cannot read {what} {path}: {e.strerror or e}",
                         advice="check the file and the disk it is on") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_private_doc(path: Path, *, what: str, advice: str,
                     root: Path | None = None) -> dict[str, Any] | None:
    """The JSON object in the state file at ``path``, or ``None`` when there is no file yet.

    Raises :class:`InputError` when the file is refused or unreadable (see
    :func:`read_private_bytes`), or is not a JSON object ("``what`` ``path`` is corrupt", with
    ``advice``).
    """
    raw = read_private_bytes(path, what=what, root=root)
    if raw is None:
        return None
    try:
        doc = load_json(raw)
    except ValueError as e:
        raise InputError(f"{what} {path} is corrupt: {e}", advice=advice) from None
    if not isinstance(doc, dict):
        raise InputError(f"{what} {path} is corrupt: not a JSON object", advice=advice)
    return doc


def read_private_json(path: Path, *, key: str, what: str, advice: str) -> dict[str, Any]:
    """The object under ``key`` in the state file at ``path``; ``{}`` when there is no file yet.

    Raises :class:`InputError` when the file is refused or cannot be read (see
    :func:`read_private_bytes`), or is not JSON with an object under ``key`` ("``what``
    ``path`` is corrupt", with ``advice``).
    """
    doc = read_private_doc(path, what=what, advice=advice)
    if doc is None:
        return {}
    value = doc.get(key)
    if not isinstance(value, dict):
        raise InputError(f"{what} {path} is corrupt: no `{key}` object", advice=advice)
    return value
