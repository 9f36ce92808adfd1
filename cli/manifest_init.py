"""``cortex manifest init [DIR]``: scaffold a plugin whose manifest lints clean and whose image builds.

It writes three files into ``DIR`` (created if missing): ``manifest.yaml``, a ``Dockerfile``
that follows the plugin image contract (README, "Writing a plugin image"), and ``server.sh``,
the tiny HTTP server that Dockerfile runs. The last two are ``examples/plugins/hello/``'s (the
one copy, shipped in the wheel as ``cli/_scaffold``), with the Dockerfile's label line naming
the new plugin.

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
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from cortex_trust.errors import ManifestProblem

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

#: The Dockerfile's one line that names the plugin (init rewrites it for the plugin it writes).
_LABEL = re.compile(r'^LABEL io\.cortex\.plugin\.name="[^"]*" io\.cortex\.plugin\.version="[^"]*"$', re.M)


def scaffold_dir() -> Path:
    """Where the ``Dockerfile`` and ``server.sh`` that init copies live: ``cli/_scaffold`` in an
    installed wheel (pyproject force-includes ``examples/plugins/hello``'s files there), the
    repository's ``examples/plugins/hello`` in a source checkout or editable install."""
    here = Path(__file__).resolve().parent
    packaged = here / "_scaffold"
    return packaged if packaged.is_dir() else here.parent / "examples" / "plugins" / "hello"


def plugin_name_from(text: str) -> str | None:
    """``text`` (a directory name) as a valid plugin name, or ``None`` if nothing usable is left.

    Letters are folded to ASCII where Unicode gives them a plain spelling (``é`` → ``e``) and
    lower-cased; every run of other characters becomes one ``-``; leading and trailing ``-`` are
    dropped and the result is cut to 64 characters. The result matches the manifest's rule.
    """
    import unicodedata

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
    scalars), so no value can change the document's structure. Raises :class:`OSError` when
    the scaffold files cannot be read and :class:`ValueError` when the Dockerfile template has
    not exactly one label line."""
    manifest = _MANIFEST.format(
        name=json.dumps(name), version=json.dumps(version),
        description=json.dumps(description, ensure_ascii=False), author=json.dumps(author, ensure_ascii=False),
        license=json.dumps(license_expr), image=json.dumps(image), min_cortex_version=json.dumps(min_cortex_version))
    source = scaffold_dir()
    label = f'LABEL io.cortex.plugin.name="{name}" io.cortex.plugin.version="{version}"'
    dockerfile, count = _LABEL.subn(lambda _m: label, (source / "Dockerfile").read_text(encoding="utf-8"))
    if count != 1:
        raise ValueError(f"{source / 'Dockerfile'} has {count} io.cortex.plugin label lines, not one")
    return {"manifest.yaml": manifest, "Dockerfile": dockerfile,
            "server.sh": (source / "server.sh").read_text(encoding="utf-8")}


def _problems(text: str, *, source: str) -> list[ManifestProblem]:
    """Every lint problem of the manifest ``text`` (none: it lints clean)."""
    from cortex_trust.errors import ManifestError
    from cortex_trust.manifest import parse_manifest

    try:
        parse_manifest(text, source=source)
    except ManifestError as e:
        return list(e.problems)
    return []


def _write(path: Path, text: str, *, force: bool) -> None:
    """Create ``path`` with ``text``; with ``force`` replace whatever is there (atomically, and a
    symbolic link itself rather than its target)."""
    import secrets

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
        help="The plugin's author [default: git's user.name and user.email, else a placeholder to edit].",
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
    import shlex

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
    try:
        files = _render(**values)
        problems = _problems(files["manifest.yaml"], source=str(directory / "manifest.yaml"))
        if problems and git_author is not None and all(p.field == "author" for p in problems):
            # git's identity is not `Name <email>` (e.g. no address): fall back to the placeholder.
            notes.append(f"git's user.name/user.email ({git_author}) is not `Name <email>`")
            git_author = None
            values["author"] = PLACEHOLDER_AUTHOR
            files = _render(**values)
            problems = _problems(files["manifest.yaml"], source=str(directory / "manifest.yaml"))
    except (OSError, ValueError) as e:
        fail(f"the plugin scaffold of this cortex-trust cannot be read: {e}",
             advice="reinstall cortex-trust; the scaffold ships with it", code=EXIT_UNAVAILABLE)
    if problems:
        for p in problems:
            print(neutralise(f"error: {_OPTION_OF.get(p.field, p.field)}: {p.problem}"), file=sys.stderr)
            print(neutralise(f"  fix: {p.fix}"), file=sys.stderr)
        raise typer.Exit(EXIT_INPUT)
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
