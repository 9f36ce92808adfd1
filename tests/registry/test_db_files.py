"""The registry's SQLite files are owner-only: `cortex registry migrate` and `serve` as processes.

The database holds token hashes, token holders and the audit log. Created by cortex, the file is
0600 (and its journal files, which SQLite creates with the database's mode) in a directory
created 0700, whatever the umask; an existing file others can read is tightened with a warning.
"""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from tests.registry.test_serve import _cortex, served  # noqa: F401 - the real server
from tests.support.served_registry import CORTEX


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _migrate(db: Path, *, umask: str = "000") -> subprocess.CompletedProcess[str]:
    # A permissive umask: the modes must come from cortex, not from the caller's umask.
    return subprocess.run(["sh", "-c", f'umask {umask} && exec "$0" registry migrate --db "$1"',
                           CORTEX, f"sqlite:///{db}"],
                          capture_output=True, text=True, timeout=120, check=False)


def test_migrate_creates_an_owner_only_database(tmp_path: Path) -> None:
    db = tmp_path / "new" / "registry.db"
    r = _migrate(db)
    assert r.returncode == 0, r.stderr
    assert _mode(db) == 0o600 and _mode(db.parent) == 0o700
    assert "warning" not in r.stderr


def test_existing_readable_database_is_tightened_with_a_warning(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    assert _migrate(db).returncode == 0
    wal = db.with_name(db.name + "-wal")
    wal.write_bytes(b"")
    for f in (db, wal):
        f.chmod(0o644)  # as an earlier version (or SQLite under umask 022) left them
    r = _migrate(db, umask="022")
    assert r.returncode == 0, r.stderr
    assert _mode(db) == 0o600
    assert (f"warning: the database file {db} could be read by other users (mode 0644); it "
            "holds token hashes and the audit log: tightened to 0600") in r.stderr
    if wal.exists():
        assert _mode(wal) == 0o600


def test_served_database_and_its_journal_files_are_owner_only(
        served: tuple[str, str, subprocess.Popen[bytes]]) -> None:  # noqa: F811
    _, db_url, proc = served
    r = _cortex("registry", "token", "create", "--namespace", "acme", "--role", "publisher",
                "--expires", "1d", "--db", db_url)  # a write while the server holds the db open
    assert r.returncode == 0, (r.stderr, r.exception)
    db = Path(db_url.removeprefix("sqlite:///"))
    files = [db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", "-journal"))]
    present = [f for f in files if f.exists()]
    assert db in present and db.with_name(db.name + "-wal") in present
    assert {f.name: _mode(f) for f in present} == dict.fromkeys((f.name for f in present), 0o600)
    assert proc.poll() is None
