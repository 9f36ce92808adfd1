"""The signing recipes of the README ("Writing a plugin image"), through `cortex plugin verify`:
the bundles cosign 3's `sign`, `sign-blob` over the image manifest bytes, and one line of
`gh attestation download` produce are verified for the image digest of a plugin that
`cortex manifest init` scaffolded; a whole JSON Lines file of several bundles is refused.

The bundles come from a private Sigstore instance (tests/support/sigstore_mint.py) in the shapes those
tools write; its root is given with `--trusted-root`, as a private root must be.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.support.sigstore_mint import PrivateSigstore

# An image manifest as a registry serves it: its sha256 is the image digest.
IMAGE_MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
               "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
    "layers": []}, separators=(",", ":")).encode()
DIGEST = "sha256:" + hashlib.sha256(IMAGE_MANIFEST).hexdigest()
ISSUER = "https://token.actions.githubusercontent.com"
IDENTITY = "https://github.com/acme/weather/.github/workflows/release.yml@refs/tags/v0.1.0"

runner = CliRunner()


@pytest.fixture(scope="module")
def sigstore(tmp_path_factory: pytest.TempPathFactory) -> PrivateSigstore:
    return PrivateSigstore(tmp_path_factory.mktemp("sigstore"))


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    result = runner.invoke(app, ["manifest", "init", str(tmp_path / "weather"), "--author", "Ada <ada@example.org>",
                                 "--image", f"ghcr.io/acme/weather:0.1.0@{DIGEST}"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return tmp_path / "weather" / "manifest.yaml"


def _verify(manifest: Path, bundle: Path, sigstore: PrivateSigstore) -> Any:
    return runner.invoke(app, ["plugin", "verify", str(manifest), "--image", f"ghcr.io/acme/weather@{DIGEST}",
                               "--bundle", str(bundle), "--trusted-root", str(sigstore.trusted_root_path),
                               "--format", "json"], catch_exceptions=False)


def _bundle(recipe: str, sigstore: PrivateSigstore) -> bytes:
    if recipe == "cosign sign":
        # cosign 3: a DSSE in-toto statement about the digest, its subject without a name.
        return sigstore.sign_dsse_statement(DIGEST, identity=IDENTITY, issuer=ISSUER, subject_name=None,
                                            predicate_type="https://sigstore.dev/cosign/sign/v1")
    if recipe == "cosign sign-blob":
        # A message signature over the file's sha256: the manifest bytes' sha256 is the digest.
        return sigstore.sign_digest("sha256:" + hashlib.sha256(IMAGE_MANIFEST).hexdigest(),
                                    identity=IDENTITY, issuer=ISSUER)
    # gh attestation download: build provenance, one bundle per line (`head -n 1`).
    statement = sigstore.sign_dsse_statement(DIGEST, identity=IDENTITY, issuer=ISSUER,
                                             subject_name="ghcr.io/acme/weather")
    return json.dumps(json.loads(statement), separators=(",", ":")).encode() + b"\n"


@pytest.mark.parametrize(("recipe", "kind"), [("cosign sign", "dsse"), ("cosign sign-blob", "message_signature"),
                                              ("gh attestation", "dsse")])
def test_each_signing_recipe_is_verified_for_the_image_digest(
        tmp_path: Path, manifest: Path, sigstore: PrivateSigstore, recipe: str, kind: str) -> None:
    bundle = tmp_path / "image.sigstore.json"
    bundle.write_bytes(_bundle(recipe, sigstore))
    result = _verify(manifest, bundle, sigstore)
    assert result.exit_code == 0, result.stderr
    signature = json.loads(result.stdout)["evidence"]["signature"]
    assert signature["verified"] is True, signature
    assert (signature["kind"], signature["identity"], signature["issuer"]) == (kind, IDENTITY, ISSUER)


def test_a_json_lines_file_of_several_bundles_is_refused(
        tmp_path: Path, manifest: Path, sigstore: PrivateSigstore) -> None:
    jsonl = tmp_path / f"{DIGEST}.jsonl"
    jsonl.write_bytes(_bundle("gh attestation", sigstore) * 2)
    result = _verify(manifest, jsonl, sigstore)
    assert result.exit_code == 2
    assert "bundle" in result.stderr and "fix:" in result.stderr
