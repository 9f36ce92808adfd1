"""The README's first command runs scripts/demo.sh: it must keep showing what it says it shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_walks_the_tiers() -> None:
    env = dict(os.environ, CORTEX=str(Path(sys.executable).parent / "cortex"))
    r = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], capture_output=True, text=True,
                       env=env, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    tiers = re.findall(r"^tier:\s+(\w+)", r.stdout, re.M)
    actions = re.findall(r"^action: (\w+)", r.stdout, re.M)
    assert tiers == ["experimental", "community", "verified", "experimental", "experimental"]
    assert actions == ["warn", "notice", "allow", "warn", "warn"]
    exits = re.findall(r"^\(exit (\d+)\)", r.stdout, re.M)
    # lint ok, lint broken, 3 verifies, the --fail-on warn verify, the dropped signature, policy test
    assert exits == ["0", "2", "0", "0", "0", "1", "0", "0"]
    assert "DIGEST_MISMATCH" in r.stdout and "SCAN_VULNERABILITIES" in r.stdout
    assert '"version": "2.1.0"' in r.stdout
