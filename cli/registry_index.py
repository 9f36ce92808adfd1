"""``cortex registry index``: the registry's signed index (TUF) for mirrors, CDNs and air-gapped
sites: build it, keep it fresh, rotate its keys, mirror it.

Only typer and the standard library are imported at module level; tuf, the registry and the
library are imported inside the commands.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._options import DbOpt

if TYPE_CHECKING:
    from registry._index import IndexRepository

__all__ = ["ROOT_KEY_ENV", "app", "check_online", "register"]

app = typer.Typer(no_args_is_help=True,
                  help="The signed index (TUF) of the registry's documents: build, refresh, "
                       "rotate-keys, mirror.")



def register(parent: typer.Typer) -> None:
    """Add ``index`` to ``cortex registry``."""
    parent.add_typer(app, name="index")


#: The environment variable ``--root-key`` falls back to.
ROOT_KEY_ENV = "CORTEX_INDEX_ROOT_KEY_FILE"

OutOpt = Annotated[Path, typer.Option("--out", metavar="DIR", help="The index directory (what a "
                                      "static server serves).")]
KeysOpt = Annotated[Path | None, typer.Option(
    "--keys", envvar="CORTEX_INDEX_KEYS", metavar="DIR",
    help="Directory of the role keys (<role>.pem); default: DIR/../index-keys.")]
RootKeyOpt = Annotated[Path | None, typer.Option(
    "--root-key", envvar=ROOT_KEY_ENV, metavar="FILE",
    help="The offline root key, when it is not KEYS/root.pem.")]


def _keyring(out: Path, keys: Path | None, root_key: Path | None) -> Any:
    from registry._index import KeyRing

    return KeyRing(keys or out.absolute().parent / "index-keys", root_key=root_key)


def _repo(out: Path, keys: Path | None, root_key: Path | None) -> IndexRepository:
    from registry._index import IndexRepository

    return IndexRepository(out, _keyring(out, keys, root_key))


def _print(doc: dict[str, Any]) -> None:
    print(json.dumps(doc, sort_keys=True))


def check_online(out: Path, keys: Path | None) -> None:
    """Refuse to serve with an index that does not exist or whose online keys are missing."""
    from cortex_trust.errors import InputError

    repo = _repo(out, keys, None)
    if not repo.exists():
        raise InputError(f"--index-dir {out} holds no index",
                         advice="create it first: cortex registry index build --out DIR --keys KEYS")
    for role in ("snapshot", "timestamp", "bins"):
        repo.keys.signer(role)


@app.command("build")
def build(
    db: DbOpt,
    out: OutOpt,
    keys: KeysOpt = None,
    root_key: RootKeyOpt = None,
    bins: Annotated[int | None, typer.Option(
        "--bins", min=2, help="Hashed bins (a power of two); default 256 for a new index, the "
                              "current number for an existing one. Changing it needs the "
                              "targets key.")] = None,
    name: Annotated[str, typer.Option("--name", help="This registry's name.")] = "cortex-registry",
) -> None:
    """Create the index in DIR, or bring it up to date with the registry's database.

    A new index gets keys for the roles that have none (written 0600 to KEYS): move root.pem
    and targets.pem offline afterwards; a registry keeps DIR current with only snapshot.pem,
    timestamp.pem and bins.pem (`cortex registry serve --index-dir DIR --index-keys KEYS`).
    Updating re-signs only the bins whose documents changed. Prints what was signed as JSON.
    """
    from registry._index import DEFAULT_BINS, all_documents
    from registry._store import Store

    from ._registry_db import migrated_engine

    repo = _repo(out, keys, root_key)
    now = datetime.now(UTC)
    created = None
    if not repo.exists():
        created = repo.create(bins=bins or DEFAULT_BINS, now=now)
        print(f"created the index in {out}; keys in {repo.keys.keys}: keep root.pem and "
              "targets.pem offline (move them away now), the registry needs only snapshot.pem, "
              "timestamp.pem and bins.pem", file=sys.stderr)
    engine = migrated_engine(db)
    try:
        stats = repo.replace_all(all_documents(Store(engine, registry_name=name)), now=now,
                                 bins=bins)
    finally:
        engine.dispose()
    _print({"created": created is not None, **stats.as_dict(),
            "root": repo.root().signed.version, "bins": len(repo.bin_names())})


@app.command("refresh")
def refresh(
    out: OutOpt,
    keys: KeysOpt = None,
    root_key: RootKeyOpt = None,
    offline: Annotated[bool, typer.Option(
        "--offline", help="Also renew the targets metadata and the root (needs both offline "
                          "keys).")] = False,
) -> None:
    """Re-sign the timestamp (and the bins and snapshot when half their period is over).

    Run it more often than the timestamp expires (a day by default): every hour from cron, or
    let `cortex registry serve --index-dir` do it. Warns when the offline roles are near
    expiry.
    """
    repo = _repo(out, keys, root_key)
    now = datetime.now(UTC)
    stats = repo.renew_offline(now=now) if offline else repo.refresh(now=now)
    expiring = repo.expiring_offline(now=now)
    if expiring:
        print(f"warning: {', '.join(expiring)} expire(s) within half their period; renew with "
              "`cortex registry index refresh --offline` and the offline keys", file=sys.stderr)
    _print({**stats.as_dict(), "expires": repo.timestamp().signed.expires.isoformat()})


@app.command("rotate-keys")
def rotate_keys(
    out: OutOpt,
    role: Annotated[list[str], typer.Option(
        "--role", help="Role whose key to replace (repeatable): root, targets, snapshot, "
                       "timestamp, bins.")],
    keys: KeysOpt = None,
    root_key: RootKeyOpt = None,
) -> None:
    """Replace role keys: a new key file for each role, a new root version naming it (signed by
    the current root key, and the new one for root), and what the role signs re-signed.
    Clients follow the rotation on their next update. Delete the old key material you kept.
    """
    from cortex_trust.errors import InputError
    from registry._index import ROLES

    for r in role:
        if r not in ROLES:
            raise InputError(f"--role {r!r} is not a role of the index",
                             advice=f"use one of {', '.join(ROLES)}")
    repo = _repo(out, keys, root_key)
    signed: list[str] = []
    for r in role:
        signed += repo.rotate(r, now=datetime.now(UTC)).metadata_signed
    _print({"rotated": role, "root": repo.root().signed.version, "metadata_signed": signed})


@app.command("mirror")
def mirror(
    source: Annotated[str, typer.Argument(metavar="SOURCE_URL",
                                          help="The index to copy (http(s):// or file://).")],
    out: Annotated[Path, typer.Argument(metavar="DIR", help="Where to write the copy.")],
    root: Annotated[Path | None, typer.Option(
        "--root", metavar="FILE", help="The trusted root (the index's metadata/1.root.json, "
                                       "obtained from its operator); default: trust the first "
                                       "root the source serves.")] = None,
) -> None:
    """Download the index at SOURCE_URL and verify every file as a client does, then write a
    copy any static server can serve (an air-gapped site's index). Nothing is written unless
    everything verified; the trust state is kept beside DIR for the next run (rollback
    protection)."""
    from cortex_trust.sources import index_cache_dir, mirror_index

    trusted = root.read_bytes() if root is not None else None
    cache = index_cache_dir(out.absolute().parent / f".{out.name}.trust", registry="mirror",
                            index_url=source, trusted_root=trusted)
    counts = mirror_index(source, out, cache_dir=cache, trusted_root=trusted)
    _print({"source": source, "out": str(out), **counts})
    if trusted is None:
        print("note: the source's first root was trusted on first use; pass --root FILE to pin "
              "the root its operator published", file=sys.stderr)
