"""The one bounded file reader, and owner-only JSON state files.

:func:`read_bounded` is how the library reads any file a user or a stranger names (evidence,
policy modules and data, state files): open first (``O_NONBLOCK``, so a FIFO cannot block the
open), then ``fstat`` the open descriptor (the checks concern the file that is read, not a path
that could be swapped in between), refuse anything but a regular file (a directory, a device, a
FIFO: reading those could block or never end), refuse a file above its bound before reading,
and read at most the bound plus one byte (never more, even if the file grows while we read).
It raises :class:`ReadRefused` saying why; each caller turns that into its own error type and
wording (:func:`read_evidence_file`, :func:`read_private_bytes`, the policy-set readers).

State files (configuration, install records, revocation cache) have one reader and one writer,
because they hold tokens or security state.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._json import load_json
from .errors import EvidenceError, InputError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_STATE_BYTES",
    "ReadRefused",
    "check_private_dir",
    "display_path",
    "read_bounded",
    "read_evidence_file",
    "read_private_bytes",
    "read_private_doc",
    "read_private_json",
    "write_private_json",
]

#: Bound on one state file. The largest is the revocation cache (at most 200,000 entries).
MAX_STATE_BYTES = 256 * 1024 * 1024
#: Default cap for an evidence document. Real Trivy reports of large images are a few MiB;
#: JUnit files of big suites tens of MiB. Collectors pass their own cap.
DEFAULT_MAX_BYTES = 50 * 1024 * 1024


class ReadRefused(Exception):
    """Why :func:`read_bounded` did not return the file's bytes.

    ``kind`` is one of ``missing``, ``directory``, ``permission``, ``invalid`` (a NUL character
    in the path), ``link`` (``nofollow`` refused a symbolic link), ``open`` (another error while
    opening), ``not_regular``, ``too_large`` (``size`` is the file's size when it was known
    before reading, ``None`` when the file grew past the bound while being read) and ``read``
    (an I/O error while reading). ``detail`` is the system's wording, when there is one.
    """

    def __init__(self, kind: str, *, detail: str = "", size: int | None = None) -> None:
        super().__init__(kind)
        self.kind, self.detail, self.size = kind, detail, size


def read_bounded(path: str | os.PathLike[str], *, max_bytes: int, nofollow: bool = False,
                 check: Callable[[os.stat_result], None] | None = None) -> bytes:
    """The whole of the regular file at ``path``, of at most ``max_bytes`` bytes.

    Open, then ``fstat`` the descriptor, then a bounded read (see the module). ``nofollow``
    refuses a symbolic link at ``path`` (``O_NOFOLLOW``); ``check`` is called with the
    descriptor's ``stat`` of a regular file before anything is read (it raises to refuse).

    Raises :class:`ReadRefused` (never blocks on a FIFO, never reads past ``max_bytes + 1``).
    """
    flags = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
             | (getattr(os, "O_NOFOLLOW", 0) if nofollow else 0))
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as e:
        raise ReadRefused("missing", detail=str(e.strerror or e)) from None
    except IsADirectoryError as e:
        raise ReadRefused("directory", detail=str(e.strerror or e)) from None
    except OSError as e:
        if nofollow and (e.errno in (errno.ELOOP, errno.EMLINK) or os.path.islink(path)):
            # O_NOFOLLOW refused a link (ELOOP on Linux, EMLINK on FreeBSD): never followed.
            raise ReadRefused("link", detail=str(e.strerror or e)) from None
        kind = "permission" if isinstance(e, PermissionError) else "open"
        raise ReadRefused(kind, detail=str(e.strerror or e)) from None
    except ValueError as e:  # a NUL character in the path
        raise ReadRefused("invalid", detail=str(e)) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ReadRefused("directory")
        if not stat.S_ISREG(st.st_mode):
            raise ReadRefused("not_regular")
        if check is not None:
            check(st)
        if st.st_size > max_bytes:
            raise ReadRefused("too_large", size=st.st_size)
        chunks: list[bytes] = []
        total = 0
        while True:
            # Bounded reads: never trust st_size alone (the file may grow, /proc lies).
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise ReadRefused("too_large")
    except OSError as e:
        raise ReadRefused("read", detail=str(e.strerror or e)) from None
    finally:
        os.close(fd)
    return b"".join(chunks)


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
    try:
        return read_bounded(path, max_bytes=max_bytes, nofollow=True,
                            check=lambda st: _refuse_insecure(path, st, kind="file"))
    except ReadRefused as e:
        if e.kind == "missing":
            return None
        if e.kind == "link":
            raise InputError(f"{what} {path} is a symbolic link; state files are never read "
                             "through links", advice=f"remove the link: rm {path}") from None
        if e.kind in ("directory", "not_regular"):
            raise InputError(f"{what} {path} is not a regular file", advice=replace) from None
        if e.kind == "too_large":
            raise InputError(f"{what} {path} is larger than {max_bytes} bytes",
                             advice=replace) from None
        if e.kind == "read":
            raise InputError(f"cannot read {what} {path}: {e.detail}",
                             advice="check the file and the disk it is on") from None
        raise InputError(f"cannot read {what} {path}: {e.detail}",
                         advice="check the file and its permissions") from None


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


# --- evidence files ---------------------------------------------------------------------------
# Evidence files come from CI jobs and strangers' pipelines: they may be missing, unreadable,
# directories, FIFOs, or gigabytes long.

def display_path(path: str | os.PathLike[str]) -> str:
    """The path as the user gave it (what messages and ``source`` fields show)."""
    return os.fspath(path)


def _human(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.1f} {unit}"


def read_evidence_file(path: str | os.PathLike[str], *, what: str,
                       max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Read the whole of a regular file of at most ``max_bytes`` bytes (:func:`read_bounded`).

    ``what`` names the document in messages ("Trivy report", "JUnit XML"...).

    Raises :class:`EvidenceError` when the file does not exist, is not a regular file (a
    directory, a device, a FIFO: reading those could block or never end), cannot be read
    (permissions, I/O error), is empty, or is larger than ``max_bytes``.
    """
    shown = display_path(path)
    try:
        data = read_bounded(Path(path), max_bytes=max_bytes)
    except ReadRefused as e:
        raise _evidence_error(e, what, shown, max_bytes) from None
    if not data:
        raise EvidenceError(f"{what} {shown}: the file is empty",
                            advice=f"check the step that writes the {what}; it produced nothing")
    return data


def _evidence_error(e: ReadRefused, what: str, shown: str, max_bytes: int) -> EvidenceError:
    if e.kind == "missing":
        return EvidenceError(f"{what} {shown}: no such file",
                             advice="check the path (relative paths are from the current directory)")
    if e.kind == "directory":
        return EvidenceError(f"{what} {shown}: is a directory, not a file",
                             advice=f"pass the path of the {what} file itself")
    if e.kind == "permission":
        return EvidenceError(f"{what} {shown}: permission denied",
                             advice="make the file readable by the user running cortex")
    if e.kind == "invalid":
        return EvidenceError(f"{what} {shown!r}: not a valid path", advice="check the path")
    if e.kind == "not_regular":
        return EvidenceError(f"{what} {shown}: not a regular file",
                             advice=f"write the {what} to a file first and pass that file")
    if e.kind == "too_large" and e.size is not None:
        return EvidenceError(
            f"{what} {shown}: too large ({_human(e.size)}; the limit is {_human(max_bytes)})",
            advice=f"pass the {what} the tool wrote, not another file; "
                   "split very large test suites into several files")
    if e.kind == "too_large":
        return EvidenceError(f"{what} {shown}: too large (more than {_human(max_bytes)})",
                             advice=f"pass the {what} the tool wrote, not another file")
    if e.kind == "read":
        return EvidenceError(f"{what} {shown}: cannot read: {e.detail}",
                             advice="check the file and the disk it is on")
    return EvidenceError(f"{what} {shown}: cannot open: {e.detail}",
                         advice="check that the path names a readable file")
