"""Hardened reading of evidence files, shared by every collector.

Evidence files come from CI jobs and strangers' pipelines: they may be missing, unreadable,
directories, FIFOs, or gigabytes long. :func:`read_evidence_file` reads at most ``max_bytes``
(and never more, even if the file grows while we read), and turns every failure into an
:class:`~cortex_trust.errors.EvidenceError` that names the file, the problem and the fix.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import EvidenceError

__all__ = ["DEFAULT_MAX_BYTES", "display_path", "read_evidence_file"]

#: Default cap for an evidence document. Real Trivy reports of large images are a few MiB;
#: JUnit files of big suites tens of MiB. Collectors pass their own cap.
DEFAULT_MAX_BYTES = 50 * 1024 * 1024


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
    """Read the whole of a regular file of at most ``max_bytes`` bytes.

    ``what`` names the document in messages ("Trivy report", "JUnit XML"...).

    Raises :class:`EvidenceError` when the file does not exist, is not a regular file (a
    directory, a device, a FIFO: reading those could block or never end), cannot be read
    (permissions, I/O error), is empty, or is larger than ``max_bytes``.
    """
    shown = display_path(path)
    p = Path(path)
    try:
        # Open first, then fstat the open descriptor: the checks and the read concern the
        # same file even if the path is swapped in between. O_NONBLOCK keeps a FIFO from
        # blocking the open; it is refused below as not a regular file.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise EvidenceError(f"{what} {shown}: no such file",
                            advice="check the path (relative paths are from the current directory)"
                            ) from None
    except IsADirectoryError:
        raise EvidenceError(f"{what} {shown}: is a directory, not a file",
                            advice=f"pass the path of the {what} file itself") from None
    except PermissionError:
        raise EvidenceError(f"{what} {shown}: permission denied",
                            advice="make the file readable by the user running cortex") from None
    except OSError as e:
        raise EvidenceError(f"{what} {shown}: cannot open: {e.strerror or e}",
                            advice="check that the path names a readable file") from None
    except ValueError:  # a NUL character in the path
        raise EvidenceError(f"{what} {shown!r}: not a valid path",
                            advice="check the path") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise EvidenceError(f"{what} {shown}: is a directory, not a file",
                                advice=f"pass the path of the {what} file itself")
        if not stat.S_ISREG(st.st_mode):
            raise EvidenceError(f"{what} {shown}: not a regular file",
                                advice=f"write the {what} to a file first and pass that file")
        if st.st_size > max_bytes:
            raise EvidenceError(
                f"{what} {shown}: too large ({_human(st.st_size)}; the limit is "
                f"{_human(max_bytes)})",
                advice=f"pass the {what} the tool wrote, not another file; "
                       "split very large test suites into several files")
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
                raise EvidenceError(
                    f"{what} {shown}: too large (more than {_human(max_bytes)})",
                    advice=f"pass the {what} the tool wrote, not another file")
    except OSError as e:
        raise EvidenceError(f"{what} {shown}: cannot read: {e.strerror or e}",
                            advice="check the file and the disk it is on") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if not data:
        raise EvidenceError(f"{what} {shown}: the file is empty",
                            advice=f"check the step that writes the {what}; it produced nothing")
    return data
