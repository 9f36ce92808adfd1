"""Every reader goes through the one bounded reader (cortex_trust._io.read_bounded): a FIFO, a
device that never ends (/dev/zero) or a directory is refused quickly, before anything blocks or
fills memory."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from cortex_trust._io import (
    ReadRefused,
    read_bounded,
    read_evidence_file,
    read_private_bytes,
)
from cortex_trust.errors import CortexTrustError, EvidenceError, InputError, ManifestError, PolicyError
from cortex_trust.evidence import load_trust_root
from cortex_trust.manifest import load_manifest
from cortex_trust.policy import load_policy_set
from tests.support.hostile import refused_quickly

DEV_ZERO = Path("/dev/zero")
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
needs_dev_zero = pytest.mark.skipif(not DEV_ZERO.exists(), reason="needs /dev/zero")


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    p = tmp_path / "fifo.yaml"
    os.mkfifo(p)
    return p


READERS: dict[str, tuple[Callable[[Path], Any], type[CortexTrustError]]] = {
    "policy data (--data)": (lambda p: load_policy_set([], [p]), PolicyError),
    "evidence": (lambda p: read_evidence_file(p, what="Trivy report"), EvidenceError),
    "state file": (lambda p: read_private_bytes(p, what="the install records"), InputError),
    "trusted root (--trusted-root)": (lambda p: load_trust_root(p), InputError),
    "manifest": (lambda p: load_manifest(p), ManifestError),
}


@needs_dev_zero
@pytest.mark.parametrize("reader", sorted(READERS))
def test_dev_zero_is_refused_quickly(reader: str) -> None:
    read, error = READERS[reader]
    assert isinstance(refused_quickly(lambda: read(DEV_ZERO)), error)


@needs_fifo
@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_fifo_is_refused_quickly(reader: str, fifo: Path) -> None:
    read, error = READERS[reader]
    assert isinstance(refused_quickly(lambda: read(fifo)), error)


@needs_fifo
def test_a_policy_module_that_is_a_fifo_is_refused_quickly(fifo: Path) -> None:
    # The directory walk skips what is not a regular file; the reader itself refuses one that
    # was swapped in after the walk.
    from cortex_trust.policy._sets import _read_module

    e = refused_quickly(lambda: _read_module(fifo))
    assert isinstance(e, PolicyError) and "not a regular file" in e.message


@needs_dev_zero
def test_cli_data_dev_zero_is_refused_quickly() -> None:
    result: list[Any] = []

    def run() -> None:
        result.append(CliRunner().invoke(app, ["policy", "test", "--data", str(DEV_ZERO)]))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(10.0)
    assert result, "cortex policy test --data /dev/zero is still reading"
    r = result[0]
    assert r.exit_code == 2, r.output
    assert "not a regular file" in r.stderr and "fix: check the path given to --data" in r.stderr


def test_a_data_file_above_the_cap_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: " + b"x" * (1024 * 1024))
    with pytest.raises(PolicyError, match="above the 1048576-byte cap"):
        load_policy_set([], [big])


def test_read_bounded_never_reads_past_the_bound(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x" * 10)
    assert read_bounded(f, max_bytes=10) == b"x" * 10
    with pytest.raises(ReadRefused) as info:
        read_bounded(f, max_bytes=9)
    assert info.value.kind == "too_large" and info.value.size == 10
    with pytest.raises(ReadRefused) as info:
        read_bounded(tmp_path / "missing", max_bytes=9)
    assert info.value.kind == "missing"
    with pytest.raises(ReadRefused) as info:
        read_bounded(tmp_path, max_bytes=9)
    assert info.value.kind == "directory"
    link = tmp_path / "link"
    link.symlink_to(f)
    assert read_bounded(link, max_bytes=10) == b"x" * 10
    with pytest.raises(ReadRefused) as info:
        read_bounded(link, max_bytes=10, nofollow=True)
    assert info.value.kind == "link"


@pytest.mark.security_review
def test_paths_with_a_nul_character_are_input_errors() -> None:
    with pytest.raises(EvidenceError):
        read_evidence_file("report\x00.json", what="Trivy report")
    with pytest.raises(InputError):
        load_trust_root("root\x00.json")


@needs_dev_zero
def test_cli_publish_inputs_are_read_bounded(tmp_path: Path) -> None:
    """`cortex plugin publish --bundle /dev/zero` (and the other publish inputs) fail at once."""
    from cli.plugin_registry import _read

    for special in (DEV_ZERO, *([_fifo(tmp_path)] if hasattr(os, "mkfifo") else [])):
        e = refused_quickly(lambda special=special: _read(special, "bundle"))
        assert not isinstance(e, AssertionError)


def _fifo(tmp_path: Path) -> Path:
    p = tmp_path / "bundle.fifo"
    os.mkfifo(p)
    return p
