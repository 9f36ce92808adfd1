"""``cortex registry audit`` and ``cortex registry log-key``: check the hash-chained audit log
and manage the key that signs its checkpoints."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ._errors import EXIT_DECISION, EXIT_INPUT, fail, report_api_error
from ._options import DbOpt
from ._registry_db import migrated_engine

__all__ = ["LOG_KEY_ENV", "load_log_key", "register"]

audit_app = typer.Typer(no_args_is_help=True, help="Check the registry's audit log.")
log_key_app = typer.Typer(no_args_is_help=True,
                          help="The key that signs the audit log's checkpoints (kept outside the "
                               "database).")

#: The environment variable ``serve --log-key`` falls back to.
LOG_KEY_ENV = "CORTEX_REGISTRY_LOG_KEY_FILE"
_MAX_KEY_FILE = 4096


def register(app: typer.Typer) -> None:
    """Add ``audit`` and ``log-key`` to ``cortex registry``."""
    app.add_typer(audit_app, name="audit")
    app.add_typer(log_key_app, name="log-key")


@audit_app.command("verify")
def audit_verify(
    db: DbOpt,
    checkpoint: Annotated[str | None, typer.Option(
        "--checkpoint", metavar="FILE|URL",
        help="A signed checkpoint seen earlier (a file, or an http(s) URL such as a copy "
             "someone kept): the log must extend it, so a truncated, emptied or rewritten log "
             "is caught. Needs --log-key-pub (or --log-key).")] = None,
    log_key_pub: Annotated[str | None, typer.Option(
        "--log-key-pub", metavar="KEY",
        help="The log's verifier key (NAME+KEYID+KEY, or a file holding it) that signed the "
             "checkpoint.")] = None,
    log_key: Annotated[Path | None, typer.Option(
        "--log-key", metavar="FILE",
        help="The log's signing key file: its verifier key checks --checkpoint, and the current "
             "tree head is printed as a signed checkpoint on stdout (keep it for the next run).")
    ] = None,
) -> None:
    """Check the audit log from its entries alone: the hash chain, the Merkle tree, that it
    extends a checkpoint seen earlier, and that the tokens, versions, evidence, reviews, usage
    and revocations in the database are what a replay of the log says.

    Exit 0 intact, 1 a problem (each listed), 2 bad input (an unreadable checkpoint or key, a
    checkpoint whose signature does not verify), 3 the database or URL could not be reached.
    Not detected: an attacker holding both the database and the log key who rebuilds the log
    before anyone kept a checkpoint, and entries appended through the registry itself (they
    are in the log for everyone to see)."""
    import base64

    from cortex_trust.sources import Checkpoint, NoteVerifier, open_checkpoint
    from registry._errors import ApiError
    from registry._store import Store

    signer = load_log_key(log_key) if log_key is not None else None
    verifier: NoteVerifier | None = None
    seen: Checkpoint | None = None
    if log_key_pub is not None:
        verifier = NoteVerifier.from_text(_key_text(log_key_pub))
    elif signer is not None:
        verifier = signer.verifier
    if checkpoint is not None:
        if verifier is None:
            fail("a checkpoint is only evidence once its signature is checked",
                 advice="pass the log's verifier key with --log-key-pub KEY (printed by "
                        "`cortex registry log-key create` or `log-key show`)")
        seen = open_checkpoint(_read_checkpoint(checkpoint), verifier)
    engine = migrated_engine(db)
    try:
        report = Store(engine).audit_report(checkpoint=seen)
    except ApiError as e:  # the registry's own HTTP error, not a library error: rendered here
        report_api_error(e)
    finally:
        engine.dispose()
    root = base64.b64encode(report.root).decode()
    # Problems quote the database's text (ids, reasons): shown inert, so a planted escape
    # sequence cannot hide the verdict that follows.
    from ._render import neutralise, plural

    for note in report.notes:
        print(f"note: {neutralise(note)}", file=sys.stderr)
    if report.problems:
        for p in report.problems:
            where = f"audit entry {p.entry_id}" if p.entry_id else "database"
            print(f"{where}: {neutralise(p.problem)}", file=sys.stderr)
        print(f"the audit log or the state it vouches for was tampered with "
              f"({plural(len(report.problems), 'problem')}; the log has "
              f"{plural(report.size, 'entry', 'entries')})", file=sys.stderr)
        raise SystemExit(EXIT_DECISION)
    extends = (f"; it extends the checkpoint of {plural(report.checkpoint_size, 'entry', 'entries')}"
               if report.checkpoint_size is not None else
               "; pass --checkpoint to prove it was not truncated or rebuilt")
    print(f"audit log intact: {plural(report.size, 'entry', 'entries')}, root {root}{extends}",
          file=sys.stderr)
    if signer is not None:
        print(Checkpoint(origin=signer.name, size=report.size, root=report.root).sign(signer),
              end="")


@log_key_app.command("create")
def log_key_create(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="Where to write the new key "
                                                               "(must not exist).")],
    name: Annotated[str, typer.Option(
        "--name", help="The log's name (the checkpoints' origin), e.g. registry.example.org/audit: "
                       "printable ASCII, no spaces or '+'.")] = "cortex-registry",
) -> None:
    """Write a new Ed25519 checkpoint signing key (mode 0600, never overwrites) and print its
    verifier key, which clients configure (`cortex config registries add ... --log-key KEY`)."""
    import os

    from cortex_trust.sources import generate_note_key

    key = generate_note_key(name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o600)
    except FileExistsError:
        fail(f"{path} exists; a log key is never overwritten",
             advice="choose another file (replacing the key makes every client's saved "
                    "checkpoints unverifiable)")
    except OSError as e:
        fail(f"cannot create {path}: {e.strerror}", advice="check the directory and its "
                                                            "permissions")
    with os.fdopen(fd, "w") as f:
        f.write(key.text + "\n")
    print(f"log signing key written to {path} (keep it secret, outside the database; back it "
          "up). Its verifier key:", file=sys.stderr)
    print(key.verifier.text)


@log_key_app.command("show")
def log_key_show(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="A key file from `log-key create`.")],
) -> None:
    """Print the verifier key of a checkpoint signing key file."""
    print(load_log_key(path).verifier.text)


def load_log_key(path: Path) -> Any:
    """The :class:`~cortex_trust.sources.NoteSigner` in ``path``. Refuses (exit 2) a file
    others can read or write, a link, anything but a small regular file, or a malformed key."""
    import os
    import stat

    from cortex_trust.sources import NoteSigner

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as e:
        fail(f"cannot read the log key {path}: {e.strerror}",
             advice="pass a key file written by `cortex registry log-key create` (not a link)")
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_KEY_FILE:
            fail(f"the log key {path} is not a small regular file",
                 advice="pass a key file written by `cortex registry log-key create`")
        if st.st_mode & 0o077:
            fail(f"the log key {path} can be read or written by others "
                 f"(mode {stat.S_IMODE(st.st_mode):04o})", advice=f"chmod 600 {path}")
        raw = f.read(_MAX_KEY_FILE + 1)
    try:
        return NoteSigner.from_text(raw.decode("ascii"))
    except UnicodeDecodeError:
        fail(f"the log key {path} is not a key", advice="pass a key file written by "
                                                        "`cortex registry log-key create`")


def _key_text(value: str) -> str:
    """A verifier key given inline, or the first line of a file holding one."""
    if "+" in value:
        return value
    try:
        with open(value, "rb") as f:
            return f.read(_MAX_KEY_FILE).decode("ascii", "replace").strip()
    except OSError as e:
        fail(f"--log-key-pub {value!r} is neither a verifier key nor a readable file: "
             f"{e.strerror}", advice="pass NAME+KEYID+KEY as printed by `cortex registry "
                                     "log-key show`")


def _read_checkpoint(where: str) -> bytes:
    """A checkpoint note from a file or an http(s) URL (bounded; redirects not followed)."""
    from cortex_trust.sources import MAX_NOTE_BYTES

    from ._errors import EXIT_UNAVAILABLE

    if where.startswith(("http://", "https://")):
        import httpx

        try:
            with httpx.Client(timeout=10.0, follow_redirects=False) as client, \
                    client.stream("GET", where) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_NOTE_BYTES:
                        fail(f"{where} answered more than {MAX_NOTE_BYTES} bytes",
                             advice="point --checkpoint at a checkpoint note")
        except httpx.HTTPError as e:
            fail(f"cannot fetch the checkpoint {where}: {type(e).__name__}",
                 advice="check the URL, or save the checkpoint to a file", code=EXIT_UNAVAILABLE)
        if response.status_code != 200:
            fail(f"{where} answered HTTP {response.status_code}, not a checkpoint",
                 advice="check the URL (a registry serves GET /api/v1/log/checkpoint)",
                 code=EXIT_UNAVAILABLE if response.status_code >= 500 else EXIT_INPUT)
        return bytes(body)
    try:
        with open(where, "rb") as f:
            data = f.read(MAX_NOTE_BYTES + 1)
    except OSError as e:
        fail(f"cannot read the checkpoint {where}: {e.strerror}",
             advice="pass a file holding a checkpoint note, or its URL")
    if len(data) > MAX_NOTE_BYTES:
        fail(f"{where} is larger than a checkpoint ({MAX_NOTE_BYTES} bytes)",
             advice="pass a file holding a checkpoint note")
    return data
