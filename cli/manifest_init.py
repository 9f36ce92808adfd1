"""``cortex manifest init [DIR]``: scaffold a plugin whose manifest lints clean and whose image builds.

It writes three files into ``DIR`` (created if missing): ``manifest.yaml``, a ``Dockerfile``
that follows the plugin image contract (README, "Writing a plugin image"), and ``server.sh``,
the tiny HTTP server that Dockerfile runs. For the name ``hello`` and version ``0.1.0`` the
Dockerfile and ``server.sh`` are exactly ``examples/plugins/hello/``'s.

Guarantees:

* the manifest written always loads with :func:`cortex_trust.manifest.parse_manifest`: it is
  parsed before anything is written, and a value that would not lint is refused (exit 2, naming
  the option and the fix) with nothing written;
* the Dockerfile's ``io.cortex.plugin.name``/``.version`` labels equal the manifest's name and
  version (the runtime refuses an image whose labels differ);
* no existing file is ever overwritten without ``--force``: if any of the three exists, nothing
  is written and the command exits 2 naming them; with ``--force`` each file is replaced (a
  symbolic link in its place is replaced, never followed);
* the default name is ``DIR``'s name turned into a valid plugin name (ASCII, lower case, runs of
  anything else become one ``-``, at most 64 characters); a directory name with nothing usable
  left is exit 2 asking for ``--name``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import sys
import unicodedata
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["PLACEHOLDER_AUTHOR", "init", "plugin_name_from"]

#: The author written when none is given and git knows none: valid, and obviously to be edited.
PLACEHOLDER_AUTHOR = "Your Name <you@example.org>"
_MAX_NAME = 64
_FILES = ("manifest.yaml", "Dockerfile", "server.sh")
#: The option that sets each manifest field (for error messages).
_OPTION_OF = {"name": "--name", "version": "--version", "description": "--description",
              "author": "--author", "license": "--license", "runtime.image": "--image",
              "trust.min_cortex_version": "--min-cortex-version"}

_MANIFEST = """\
# A CORTEX plugin manifest (v1), written by `cortex manifest init`. Check it with:
#   cortex manifest lint manifest.yaml
# The Dockerfile beside it builds the image; keep its io.cortex.plugin.* labels equal to the
# name and version here.
name: {name}
version: {version}   # always quote versions: unquoted 1.10 would be read as 1.1
description: {description}
author: {author}
license: {license}   # an SPDX identifier or expression
runtime:
  type: docker
  # Once pushed, pin the digest the registry reports: REGISTRY/REPOSITORY:TAG@sha256:<64 hex>
  image: {image}
capabilities:        # what server.sh answers; change both together
  - name: greet
    endpoint: /greet
    method: GET
    description: Returns a greeting.
  - name: echo
    endpoint: /echo
    method: POST
    description: Returns the request body unchanged.
trust:
  min_cortex_version: {min_cortex_version}
  sandbox: true      # false is blocked by the default policy
  network: false     # ask only for what the plugin needs: policy decides what it gets
  filesystem: false
"""

_DOCKERFILE = """\
# The {name} CORTEX plugin image. It follows the plugin image contract (cortex-trust README,
# "Writing a plugin image"): labels equal to manifest.yaml, the endpoints on port 8080, never
# root, nothing written outside /tmp. Build and push it:
#   podman build -t REGISTRY/REPOSITORY:{version} . && podman push REGISTRY/REPOSITORY:{version}
# The image is a static busybox (a shell, nc, sed) on an empty base, about 1 MB. Pin the base by
# digest (busybox:1.37.0-musl@sha256:...) for reproducible builds.
ARG BUSYBOX=docker.io/library/busybox:1.37.0-musl
FROM ${{BUSYBOX}} AS busybox

FROM scratch
COPY --from=busybox /bin/busybox /bin/busybox
COPY --chmod=0444 server.sh /app/server.sh
# Must equal the manifest's name and version: cortex refuses an image whose labels differ.
LABEL io.cortex.plugin.name="{name}" io.cortex.plugin.version="{version}"
# Never root (cortex also runs every plugin as 65534:65534, whatever the image says).
USER 65534:65534
# cortex calls the manifest's endpoints on this port, at the container's own address.
EXPOSE 8080
ENTRYPOINT ["/bin/busybox", "sh", "/app/server.sh"]
"""

_SERVER = r"""# A plugin's HTTP server in busybox sh. As PID 1 it runs busybox nc on 0.0.0.0:8080, which runs
# this script again ("handle") for each connection: one HTTP/1.0 exchange on stdin/stdout.
# Replace it with your own server: anything that listens on port 8080 on every address and
# answers the endpoints manifest.yaml declares (JSON in, JSON out) will do.
bb=/bin/busybox
if [ "$1" != handle ]; then
  # A shell as PID 1 ignores SIGTERM unless it traps it: every stop would wait for the kill.
  trap 'kill "$nc" 2>/dev/null; exit 0' TERM INT
  $bb nc -ll -p 8080 -e $bb sh "$0" handle &
  nc=$!
  wait "$nc"
  exit 0
fi

cr=$($bb printf '\r')
read -r method path _version
path=${path%%\?*}
len=0
while read -r line; do
  line=${line%"$cr"}
  [ -z "$line" ] && break
  case "$line" in
    [Cc]ontent-[Ll]ength:*) len=$($bb echo "${line#*:}" | $bb tr -cd 0-9) ;;
  esac
done
[ -n "$len" ] && [ "$len" -le 65536 ] || len=0
body=""
[ "$len" -gt 0 ] && body=$($bb head -c "$len")

reply() {  # STATUS JSON
  $bb printf 'HTTP/1.0 %s\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
    "$1" "${#2}" "$2"
}
case "$method $path" in
  "GET /greet") reply "200 OK" '{"greeting":"hello"}' ;;
  "POST /echo") reply "200 OK" "${body:-null}" ;;
  *) reply "404 Not Found" '{"error":"no such endpoint"}' ;;
esac
"""


def plugin_name_from(text: str) -> str | None:
    """``text`` (a directory name) as a valid plugin name, or ``None`` if nothing usable is left.

    Letters are folded to ASCII where Unicode gives them a plain spelling (``é`` → ``e``) and
    lower-cased; every run of other characters becomes one ``-``; leading and trailing ``-`` are
    dropped and the result is cut to 64 characters. The result matches the manifest's rule.
    """
    from cortex_trust.ids import PLUGIN_NAME_PATTERN

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:_MAX_NAME].rstrip("-")
    return name if re.fullmatch(PLUGIN_NAME_PATTERN, name) else None


def _git_author(start: Path) -> str | None:
    """``user.name <user.email>`` from git's configuration as seen from ``start`` (or its nearest
    existing parent), or ``None`` when git is missing or either value is unset."""
    import shutil
    import subprocess

    git = shutil.which("git")
    if git is None:
        return None
    where = start
    while not where.is_dir() and where != where.parent:
        where = where.parent
    values: list[str] = []
    for key in ("user.name", "user.email"):
        try:
            done = subprocess.run([git, "config", "--get", key], cwd=where, capture_output=True,
                                  text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        value = done.stdout.strip()
        if done.returncode != 0 or not value:
            return None
        values.append(value)
    return f"{values[0]} <{values[1]}>"


def _render(*, name: str, version: str, description: str, author: str, license_expr: str,
            image: str, min_cortex_version: str) -> dict[str, str]:
    """The three files' contents. Strings go into YAML as JSON strings (valid YAML double-quoted
    scalars), so no value can change the document's structure."""
    manifest = _MANIFEST.format(
        name=json.dumps(name), version=json.dumps(version), description=json.dumps(description, ensure_ascii=False),
        author=json.dumps(author, ensure_ascii=False), license=json.dumps(license_expr),
        image=json.dumps(image), min_cortex_version=json.dumps(min_cortex_version))
    return {"manifest.yaml": manifest, "Dockerfile": _DOCKERFILE.format(name=name, version=version),
            "server.sh": _SERVER}


def _write(path: Path, text: str, *, force: bool) -> None:
    """Create ``path`` with ``text``; with ``force`` replace whatever is there (atomically, and a
    symbolic link itself rather than its target)."""
    data = text.encode("utf-8")
    if not force:
        with open(path, "xb") as f:  # O_EXCL: never an existing file, never through a link
            f.write(data)
        return
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def init(
    directory: Annotated[Path, typer.Argument(
        metavar="DIR", help="Where to write the plugin (created if missing).")] = Path("."),
    name: Annotated[str | None, typer.Option(
        "--name", metavar="NAME", help="Plugin name [default: DIR's name as a valid plugin name].",
        show_default=False)] = None,
    version: Annotated[str, typer.Option("--version", metavar="VERSION", help="SemVer version.")] = "0.1.0",
    description: Annotated[str | None, typer.Option(
        "--description", metavar="TEXT", help="What the plugin does, in one sentence.",
        show_default=False)] = None,
    author: Annotated[str | None, typer.Option(
        "--author", metavar="'NAME <EMAIL>'",
        help="[default: git's user.name and user.email, else a placeholder to edit]",
        show_default=False)] = None,
    license_expr: Annotated[str, typer.Option(
        "--license", metavar="SPDX", help="SPDX license identifier or expression.")] = "Apache-2.0",
    image: Annotated[str | None, typer.Option(
        "--image", metavar="IMAGE", help="Image reference [default: registry.example.org/NAME:VERSION].",
        show_default=False)] = None,
    min_cortex_version: Annotated[str, typer.Option(
        "--min-cortex-version", metavar="VERSION", help="Lowest CORTEX version the plugin works with.")
    ] = "0.1.0",
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite manifest.yaml, Dockerfile and server.sh if they exist.")] = False,
) -> None:
    """Scaffold a plugin: manifest.yaml (lints clean), a Dockerfile and its server.sh."""
    from cortex_trust.errors import ManifestError
    from cortex_trust.manifest import parse_manifest

    from ._errors import EXIT_INPUT, EXIT_UNAVAILABLE, fail
    from ._render import neutralise

    directory = Path(os.path.normpath(directory))
    if directory.exists() and not directory.is_dir():
        fail(f"{directory} exists and is not a directory", advice="name a directory (DIR)")
    if name is None:
        base = directory.resolve().name
        name = plugin_name_from(base)
        if name is None:
            fail(f"the directory name {base!r} leaves no valid plugin name",
                 advice="give one with --name (lowercase letters, digits and inner hyphens)")
    notes: list[str] = []
    git_author = None if author is not None else _git_author(directory)
    values = {
        "name": name, "version": version, "description": description or f"The {name} CORTEX plugin.",
        "author": author or git_author or PLACEHOLDER_AUTHOR, "license_expr": license_expr,
        "image": image or f"registry.example.org/{name}:{version}", "min_cortex_version": min_cortex_version,
    }
    files = _render(**values)
    try:
        parse_manifest(files["manifest.yaml"], source=str(directory / "manifest.yaml"))
    except ManifestError as e:
        if git_author is not None and all(p.field == "author" for p in e.problems):
            # git's identity is not `Name <email>` (e.g. no address): fall back to the placeholder.
            notes.append(f"git's user.name/user.email ({git_author}) is not `Name <email>`")
            git_author = None
            values["author"] = PLACEHOLDER_AUTHOR
            files = _render(**values)
            parse_manifest(files["manifest.yaml"], source=str(directory / "manifest.yaml"))
        else:
            for p in e.problems:
                option = _OPTION_OF.get(p.field, p.field)
                print(neutralise(f"error: {option}: {p.problem}"), file=sys.stderr)
                print(neutralise(f"  fix: {p.fix}"), file=sys.stderr)
            raise typer.Exit(EXIT_INPUT) from None
    existing = [f for f in _FILES if os.path.lexists(directory / f)]
    if existing and not force:
        fail(f"{directory} already has {', '.join(existing)}; init never overwrites files (nothing was written)",
             advice="choose another DIR, or re-run with --force to overwrite them")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for fname in _FILES:
            _write(directory / fname, files[fname], force=force)
    except OSError as e:
        fail(f"could not write {e.filename or directory}: {e.strerror or e}",
             advice="check the directory's permissions and free space", code=EXIT_UNAVAILABLE)
    for fname in _FILES:
        print(neutralise(f"created {directory / fname}"))
    if author is None and git_author is None:
        notes.append(f'author is the placeholder "{PLACEHOLDER_AUTHOR}": write yours in manifest.yaml')
    for note in notes:
        print(neutralise(f"note: {note}"))
    manifest_path = shlex.quote(str(directory / "manifest.yaml"))
    for line in (
        "next steps:",
        f"  1. edit {manifest_path}: description, capabilities (server.sh answers them), author",
        f"  2. cortex manifest lint {manifest_path}",
        f"  3. podman build -t REGISTRY/{name}:{version} {shlex.quote(str(directory))}"
        f" && podman push REGISTRY/{name}:{version}",
        "  4. pin the pushed digest in runtime.image (...@sha256:DIGEST), sign the image and publish it:",
        '     see "Writing a plugin image" in the cortex-trust README',
    ):
        print(neutralise(line))
