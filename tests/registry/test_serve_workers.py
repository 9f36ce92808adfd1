"""``cortex registry serve --workers N``: several API processes on one database, as real processes.

Publishes race through the API processes (one winner for the same version, every other version
stored once), reads are answered by every process with the same bytes, and the audit chain
verifies. Which process answered a request is read from ``/proc`` (the process holding the
server end of the request's connection): the API shows no process identity.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.registry.conftest import FIXTURES, POLICY_DIR, publish_body
from tests.registry.test_jobs import _cli
from tests.support.served_registry import serve_registry

ARGS = ("--no-default-policies", "--policy-dir", str(POLICY_DIR), "--data", str(POLICY_DIR / "data.json"),
        "--trusted-root", str(FIXTURES / "trusted_roots" / "production.json"), "--allow-registry", "ghcr.io",
        "--no-scan")


def _children(pid: int) -> set[int]:
    return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def _server_side_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the server's end of the loopback connection from ``client_port``."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            return inode
    return None


class _Api:
    """Requests to one served registry, each on a new connection, with the process that answered."""

    def __init__(self, url: str, processes: set[int]) -> None:
        self.port = int(url.rsplit(":", 1)[1])
        self.processes = processes

    def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, bytes, int]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = conn.getresponse()
            content = response.read()
            # The connection is still open (keep-alive): find the process holding its server end.
            inode = _server_side_inode(self.port, conn.sock.getsockname()[1])
            owner = [p for p in self.processes if inode is not None and inode in _socket_inodes(p)]
            assert len(owner) == 1, (inode, owner)
            return response.status, content, owner[0]
        finally:
            conn.close()


@pytest.mark.slow
def test_two_api_processes_serve_one_database(db_url: str, tmp_path: Path) -> None:
    from registry import make_engine, migrate
    from registry._store import Store

    engine = make_engine(db_url)
    migrate(engine)
    token = _cli("registry", "token", "create", "--namespace", "acme", "--role", "publisher", "--expires", "1d",
                 "--db", db_url).stdout.strip()
    with serve_registry(tmp_path, *ARGS, "--workers", "2", db=db_url, deadline_s=240) as served:
        deadline = time.monotonic() + 60
        while len(processes := _children(served.proc.pid)) < 2:  # uvicorn's API processes (and others)
            assert time.monotonic() < deadline, served.log.read_text()
            time.sleep(0.2)
        api = _Api(served.url, processes)

        def publish(i: int) -> tuple[int, bytes, int]:
            body = publish_body(name="same" if i >= 10 else f"tool-{i}")
            return api.request("POST", "/api/v1/plugins", body, token)

        with ThreadPoolExecutor(8) as pool:
            published = list(pool.map(publish, range(12)))
        codes = [status for status, _, _ in published]
        assert codes[:10] == [201] * 10 and sorted(codes[10:]) == [201, 409], codes
        [conflict] = [json.loads(content) for status, content, _ in published if status == 409]
        assert conflict["error"]["code"] == "VERSION_EXISTS", conflict
        # Every process answers every read with the same bytes; both processes answer some.
        answered: dict[int, set[bytes]] = {}
        deadline = time.monotonic() + 120
        while len(answered) < 2:
            assert time.monotonic() < deadline, f"only processes {sorted(answered)} answered"
            for path in ("/api/v1/plugins?limit=100", "/api/v1/plugins/acme/same/versions/1.0.0"):
                status, content, pid = api.request("GET", path)
                assert status == 200, content
                answered.setdefault(pid, set()).add(content)
        assert len(answered) == 2 and set(answered) <= processes
        contents = {c for by_one in answered.values() for c in by_one}
        assert len(contents) == 2  # one listing, one detail, whichever process answered
        listing = json.loads(next(c for c in contents if b'"items"' in c))
        assert sorted(p["name"] for p in listing["items"]) == sorted(["same", *(f"tool-{i}" for i in range(10))])
    verify = _cli("registry", "audit", "verify", "--db", db_url)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    store = Store(engine)
    try:
        assert store.audit_verify() == []
    finally:
        engine.dispose()


def test_serve_refuses_several_api_processes_with_a_signed_index(tmp_path: Path) -> None:
    r = _cli("registry", "serve", "--db", f"sqlite:///{tmp_path / 'r.db'}", "--workers", "2",
             "--index-dir", str(tmp_path / "index"), *ARGS)
    assert r.returncode == 2 and "--workers above 1 cannot keep a signed index current" in r.stderr, r.stderr
    assert "fix:" in r.stderr
