"""The hashed lock file (requirements/dev.lock) that ./dev and CI install from.

A dependency added to pyproject.toml but not to the lock would make ``pip install
--require-hashes`` fail on a fresh machine; a lock entry without a hash would let a changed
artifact slip in. Both are caught here, before a fresh machine finds them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ \\]+)")


def _lock(path: Path) -> dict[str, tuple[Version, list[str]]]:
    """name -> (pinned version, hashes) for every requirement block in a pip-compile lock."""
    pins: dict[str, tuple[Version, list[str]]] = {}
    current: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _PIN.match(line)
        if m:
            current = canonicalize_name(m.group(1))
            pins[current] = (Version(m.group(2)), [])
        elif current and line.strip().startswith("--hash=sha256:"):
            pins[current][1].append(line.strip().removeprefix("--hash=sha256:").rstrip(" \\"))
        elif not line.startswith(" "):
            current = None
    return pins


def test_every_locked_requirement_is_pinned_with_a_sha256_hash() -> None:
    for lock in ("dev.lock", "oracle.lock"):
        pins = _lock(ROOT / "requirements" / lock)
        assert pins, lock
        for name, (_, hashes) in pins.items():
            assert hashes, f"{lock}: {name} has no --hash"
            assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), (lock, name, hashes)


def test_the_lock_satisfies_every_dependency_of_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = list(project["dependencies"])
    for extra in ("test", "scan"):
        wanted += project["optional-dependencies"][extra]
    build = [line.split("#")[0].strip() for line in
             (ROOT / "requirements" / "build.in").read_text(encoding="utf-8").splitlines()]
    wanted += [b for b in build if b]
    pins = _lock(ROOT / "requirements" / "dev.lock")
    for spec in wanted:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements/dev.lock: run ./dev lock"
        assert req.specifier.contains(pins[name][0], prereleases=True), (
            f"requirements/dev.lock pins {name}=={pins[name][0]}, outside {req.specifier}: run ./dev lock")


def test_dev_installs_only_from_the_hashed_locks() -> None:
    dev = (ROOT / "dev").read_text(encoding="utf-8")
    installs = [line for line in dev.splitlines() if "pip install" in line and "pip-tools" not in line]
    assert installs
    for line in installs:
        # Either the lock with --require-hashes, or the project itself without dependencies.
        assert "--require-hashes" in line or ("--no-deps" in line and "-e ." in line), line
