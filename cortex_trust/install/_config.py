"""User configuration: the default registry, scoped (federated/private) registries, GitHub,
the CORTEX platform's version, usage reporting, the database of a registry this user operates,
the organization's policy (directories and data files).

The file is JSON, written with owner-only permissions (0600, its directory 0700) because it may
hold tokens, and read only when it is still private (a link, or a file or directory another user
owns or can write, is refused with the ``chmod`` that fixes it). Where it lives is the caller's
business (the CLI picks the user's config directory or an override for CI); this module never
reads environment variables.

A refused value is a :class:`SettingError` (a ``ValueError``): what is wrong and what to write
instead, kept apart so that every caller words it plainly (:func:`invalid_setting`).

Federation rule: each namespace resolves from exactly one registry, the one whose
scope matches most specifically, otherwise the default. A name is never looked up across
registries to pick a "highest version" (the dependency-confusion attack).

Secrets are not stored here when it can be avoided: usage reporting names the environment
variable holding the installation token (``usage_token_env``), and a registry database URL
with a password is refused (the password belongs in ``PGPASSWORD`` or ``~/.pgpass``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ..errors import InputError
from ..ids import SLUG, is_slug

if TYPE_CHECKING:
    from ..policy import PlatformVersionSource

__all__ = [
    "DEFAULT_GITHUB_API",
    "DEFAULT_REGISTRY",
    "PLATFORM_VERSION_ENV",
    "CortexConfig",
    "PlatformVersion",
    "RegistryEntry",
    "SettingError",
    "check_platform_version",
    "invalid_setting",
    "load_config",
    "redact",
    "resolve_platform_version",
    "resolve_registry",
    "save_config",
    "scope_matches",
]

DEFAULT_REGISTRY = "https://registry.cortexpersist.com"
DEFAULT_GITHUB_API = "https://api.github.com"
#: The environment variable that names the CORTEX platform's version (read by the CLI).
PLATFORM_VERSION_ENV = "CORTEX_PLATFORM_VERSION"
_MAX_CONFIG_BYTES = 256 * 1024
#: A scope is `*`, `ns/*` or `ns/name`; namespaces and names are slugs.
_SCOPE = re.compile(rf"^(?:\*|{SLUG}/\*|{SLUG}/{SLUG})\Z")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}\Z")
#: The database URLs a registry takes (registry._db.normalise_url has the final word).
_DB_URL = re.compile(r"^(?:sqlite:///|postgres(?:ql)?(?:\+psycopg)?://)")


# Control characters (ANSI escapes, NUL), Unicode separators and bidirectional controls: never
# part of a URL we store and print back.
_URL_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class SettingError(ValueError):
    """A configuration value refused: ``problem`` says what is wrong, ``fix`` what to write
    instead, ``example`` (when known) a value that would be accepted."""

    def __init__(self, problem: str, fix: str, *, example: str | None = None) -> None:
        super().__init__(f"{problem}; {fix}" + (f", e.g. {example}" if example else ""))
        self.problem = problem
        self.fix = fix
        self.example = example


def invalid_setting(e: ValidationError) -> tuple[tuple[str | int, ...], str, SettingError | None]:
    """Where the first error of ``e`` is (the field path), what is wrong in plain words (never
    pydantic's ``Value error, `` prefix) and the :class:`SettingError` behind it, if any."""
    err = e.errors()[0]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, SettingError):
        return tuple(err["loc"]), cause.problem, cause
    if isinstance(cause, ValueError):
        return tuple(err["loc"]), str(cause), None
    return tuple(err["loc"]), str(err["msg"]), None


def _without_userinfo(url: str) -> str:
    # Error messages echo the value; a token pasted as user:token@host must not reach a log.
    return re.sub(r"[^/?#\s]*@", "***@", url, count=1)


def _check_url(url: str) -> str:
    if _URL_UNSAFE.search(url):
        raise SettingError(f"{_without_userinfo(url)!r} holds control or invisible characters",
                           "type the URL again", example="https://registry.internal.acme.com")
    if re.match(r"^https?://[^/?#\s]*@", url):
        bare = re.sub(r"^(https?://)[^/?#\s]*@", r"\1", url)
        raise SettingError(f"{_without_userinfo(url)!r} holds a user or password, which the "
                           "configuration never stores",
                           "leave the user and password out (a registry's token goes in an "
                           "environment variable: `cortex config registries add ... --token-env VAR`)",
                           example=bare if re.match(r"^https?://[^\s/?#@]+", bare) else None)
    if not re.match(r"^https?://[^\s/?#@]+(?:/[^\s?#]*)?\Z", url):
        host = re.match(r"^[A-Za-z0-9.-]+\.[A-Za-z]{2,}(?::[0-9]{1,5})?(?:/[^\s?#]*)?\Z", url)
        raise SettingError(f"{_without_userinfo(url)!r} is not an http(s) URL",
                           "write the whole URL with its scheme and no query",
                           example=f"https://{url}" if host else "https://registry.internal.acme.com")
    if url.startswith("http://") and not _LOOPBACK.match(url):
        # Tokens travel with every request: cleartext HTTP only to this machine.
        raise SettingError(f"{url!r} uses plain http, which is allowed only for 127.0.0.1, "
                           "localhost or [::1]", "use https",
                           example="https://" + url.removeprefix("http://"))
    return url.rstrip("/")


def _check_index_url(url: str) -> str:
    """An index URL: what :func:`_check_url` accepts, or ``file:///ABSOLUTE/PATH``."""
    if url.startswith("file:"):
        if _URL_UNSAFE.search(url) or not re.match(r"^file:///[^\s?#]*\Z", url):
            raise SettingError(f"{url!r} is not a file URL of an absolute path",
                               "write file:// and the directory's absolute path",
                               example="file:///srv/cortex-index")
        return url.rstrip("/")
    return _check_url(url)


def _check_index_root(v: str | None) -> str | None:
    if v is None:
        return None
    from .._json import load_json

    try:
        doc = load_json(v)
        if doc["signed"]["_type"] != "root" or not isinstance(doc["signatures"], list):
            raise ValueError("not a root")
    except (ValueError, KeyError, TypeError):
        raise SettingError("the index root is not TUF root metadata",
                           "pass the index's metadata/1.root.json (or a later root) as its "
                           "operator published it") from None
    return v


def _check_log_key(v: str | None) -> str | None:
    if v is None:
        return None
    from ..sources import NoteError, NoteVerifier

    try:
        return NoteVerifier.from_text(v).text
    except NoteError as e:
        raise SettingError(f"not a transparency-log verifier key: {e.message}",
                           "paste the verifier key the registry's operator publishes "
                           "(NAME+KEYID+KEY, printed by `cortex registry log-key create`)") from None


def check_platform_version(value: str) -> str:
    """``value`` if it is a full SemVer 2.0.0 version (the CORTEX platform's exact version).

    Raises :class:`SettingError` saying what is wrong and what to write; a short form such as
    ``8.1`` is refused because the platform's exact version is not a minimum.
    """
    from ..manifest import SemVerError, parse_semver

    try:
        parse_semver(value)
    except SemVerError as e:
        parts = value.strip().lstrip("vV").split(".")
        example = ".".join([*parts, "0", "0"][:3]) if all(p.isdigit() for p in parts) else "8.1.0"
        raise SettingError(str(e), "the platform version is the CORTEX platform's exact version",
                           example=example) from None
    return value


def _check_policy_paths(paths: tuple[str, ...]) -> tuple[str, ...]:
    for p in paths:
        if not p or _URL_UNSAFE.search(p):
            raise SettingError(f"{p!r} is not a path", "name the file or directory")
        if not Path(p).is_absolute():
            # A relative path would name another file in every directory a command runs in.
            raise SettingError(f"{p!r} is a relative path", "give an absolute path",
                               example=str(Path(p).absolute()))
    if len(set(paths)) != len(paths):
        twice = next(p for p in paths if paths.count(p) > 1)
        raise SettingError(f"{twice} is listed twice", "list each path once")
    return paths


def _check_env_name(v: str | None) -> str | None:
    if v is not None and not _ENV_NAME.match(v):
        raise SettingError(f"{v!r} is not an environment variable name",
                           "name the variable that holds the token, not the token", example="ACME_TOKEN")
    return v


def _check_db_url(v: str | None) -> str | None:
    if v is None:
        return None
    if _URL_UNSAFE.search(v) or not _DB_URL.match(v) or any(c.isspace() for c in v):
        raise SettingError(f"{_without_userinfo(v)!r} is not a registry database URL",
                           "write sqlite:////ABSOLUTE/PATH or postgresql://USER@HOST:PORT/DB")
    if re.match(r"^[a-z+]+://[^/@]*:[^/@]*@", v):
        raise SettingError("the database URL carries a password, which the configuration never stores",
                           "leave it out and set PGPASSWORD or use ~/.pgpass, or put the whole URL in "
                           "CORTEX_REGISTRY_DB")
    if v.startswith("sqlite:///") and not v.startswith("sqlite:////"):
        # A relative path would name another file in every directory the command runs in.
        absolute = Path(v[len("sqlite:///"):]).resolve()
        raise SettingError(f"{v!r} is a relative path", "use an absolute one",
                           example=f"sqlite:///{absolute}")
    return v


_LOOPBACK = re.compile(r"^http://(?:127(?:\.[0-9]{1,3}){3}|localhost|\[::1\])(?::[0-9]{1,5})?(?:/|\Z)")


class RegistryEntry(BaseModel):
    """A configured registry: where some namespaces resolve from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    url: str
    #: Plugin-name patterns served by this registry: `acme/*`, `acme/tool` or `*`.
    scopes: tuple[str, ...] = ()
    #: Name of an environment variable holding the token (preferred over a stored token).
    token_env: str | None = None
    #: A stored token (the file is owner-only); always redacted in output.
    token: str | None = None
    #: Mirrors tried in order when ``url`` is unreachable; they serve the same namespaces.
    mirrors: tuple[str, ...] = ()
    #: Name of the environment variable holding this registry's installation token: when set
    #: (opt-in), `cortex plugin run` reports production use of its plugins to ``url`` (never to
    #: a mirror, which is another party).
    usage_token_env: str | None = None
    #: The verifier key (``NAME+KEYID+KEY``) of the registry's transparency-log checkpoints; the
    #: installer checks that installed versions are in the log it vouches for.
    log_key: str | None = None
    #: The registry's signed index (TUF): when set, every read (install, search, sync, update)
    #: goes through it and is verified; ``url`` still takes writes and usage reports.
    index_url: str | None = None
    #: Mirrors of the index, tried in order when the index URL fails (unreachable or not
    #: verifying).
    index_mirrors: tuple[str, ...] = ()
    #: The index's trusted root (TUF root metadata as JSON text) from its operator; ``None``:
    #: the first root the index serves is trusted on first use.
    index_root: str | None = None

    @field_validator("index_url")
    @classmethod
    def _index_url(cls, v: str | None) -> str | None:
        return None if v is None else _check_index_url(v)

    @field_validator("index_mirrors")
    @classmethod
    def _index_mirrors(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_index_url(m) for m in v)

    @field_validator("index_root")
    @classmethod
    def _index_root(cls, v: str | None) -> str | None:
        return _check_index_root(v)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not is_slug(v):
            raise SettingError(f"{v!r} is not a registry name",
                               "use lowercase letters, digits and inner hyphens", example="acme")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_url(v)

    @field_validator("mirrors")
    @classmethod
    def _mirrors(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_url(m) for m in v)

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for s in v:
            if not _SCOPE.match(s):
                raise SettingError(f"scope {s!r} is not `namespace/*`, `namespace/name` or `*`",
                                   "name the namespace the registry serves", example="acme/*")
        return v

    @field_validator("log_key")
    @classmethod
    def _log_key(cls, v: str | None) -> str | None:
        return _check_log_key(v)

    @field_validator("token_env", "usage_token_env")
    @classmethod
    def _token_env(cls, v: str | None) -> str | None:
        return _check_env_name(v)


class CortexConfig(BaseModel):
    """The whole configuration document."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    registry: str = DEFAULT_REGISTRY
    registries: tuple[RegistryEntry, ...] = ()
    github_api: str = DEFAULT_GITHUB_API
    #: The default registry's transparency-log verifier key (see :attr:`RegistryEntry.log_key`).
    registry_log_key: str | None = None
    #: The CORTEX platform's version, which manifests' ``trust.min_cortex_version`` is compared
    #: with; ``None``: not configured (see :func:`resolve_platform_version`).
    platform_version: str | None = None
    #: The default registry's installation-token variable (see
    #: :attr:`RegistryEntry.usage_token_env`); ``None``: no usage is reported to it.
    usage_token_env: str | None = None
    #: The database of a registry this user operates (`cortex registry ...` without ``--db``):
    #: ``sqlite:////ABSOLUTE/PATH`` or ``postgresql://USER@HOST:PORT/DB``, never with a password.
    registry_db: str | None = None

    #: The organization's policy directories (Rego modules, and a ``data.yaml`` at their root),
    #: loaded over the defaults in order by every command that decides unless ``--policy-dir``
    #: is given; absolute paths.
    policy_dir: tuple[str, ...] = ()
    #: The organization's policy data files, merged over the policy data in order by every
    #: command that decides unless ``--data`` is given; absolute paths.
    policy_data: tuple[str, ...] = ()

    #: The policy engine every command that decides uses: ``embedded`` (regorus in the process)
    #: or ``opa`` (the OPA server at :attr:`opa_url`); ``None``: embedded.
    policy_engine: Literal["embedded", "opa"] | None = None
    #: The OPA server of ``policy_engine: opa`` (``http(s)://HOST:PORT``).
    opa_url: str | None = None

    @field_validator("usage_token_env")
    @classmethod
    def _usage_token_env(cls, v: str | None) -> str | None:
        return _check_env_name(v)

    @field_validator("opa_url")
    @classmethod
    def _opa_url(cls, v: str | None) -> str | None:
        return None if v is None else _check_url(v)

    @field_validator("registry_db")
    @classmethod
    def _registry_db(cls, v: str | None) -> str | None:
        return _check_db_url(v)

    @field_validator("policy_dir", "policy_data")
    @classmethod
    def _policy_paths(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _check_policy_paths(v)

    @field_validator("platform_version")
    @classmethod
    def _platform_version(cls, v: str | None) -> str | None:
        return None if v is None else check_platform_version(v)

    @field_validator("registry_log_key")
    @classmethod
    def _log_key(cls, v: str | None) -> str | None:
        return _check_log_key(v)

    @field_validator("registry", "github_api")
    @classmethod
    def _url(cls, v: str) -> str:
        return _check_url(v)

    @field_validator("registries")
    @classmethod
    def _unique(cls, v: tuple[RegistryEntry, ...]) -> tuple[RegistryEntry, ...]:
        names = [r.name for r in v]
        if len(set(names)) != len(names):
            raise ValueError("registry names must be unique")
        seen: dict[str, str] = {}
        for r in v:
            for s in r.scopes:
                if s in seen:
                    raise ValueError(f"scope {s!r} is claimed by both {seen[s]!r} and {r.name!r}")
                seen[s] = r.name
        return v

    def default_entry(self) -> RegistryEntry:
        """The default registry as an entry named ``default``."""
        return RegistryEntry(name="default", url=self.registry, log_key=self.registry_log_key,
                             usage_token_env=self.usage_token_env)

    def redacted(self) -> dict[str, Any]:
        """The configuration as a dict with every stored token replaced by ``***``."""
        doc = self.model_dump(mode="json")
        for r in doc["registries"]:
            if r.get("token"):
                r["token"] = "***"  # noqa: S105 - the redaction marker, not a secret
        return doc


@dataclass(frozen=True)
class PlatformVersion:
    """The CORTEX platform version decisions compare ``trust.min_cortex_version`` with, and where
    it came from (``None`` for both: unknown, and the policy says so)."""

    version: str | None
    source: PlatformVersionSource | None

    def describe(self) -> str:
        """One line for people: ``8.1.0 (from CORTEX_PLATFORM_VERSION)`` or how to set it."""
        if self.version is None:
            return ("unknown (set it with `cortex config set platform-version X.Y.Z` or "
                    f"{PLATFORM_VERSION_ENV})")
        where = {"env": PLATFORM_VERSION_ENV, "config": "the configuration: platform-version",
                 "registry": "the registry's setting"}.get(self.source or "", "the caller")
        return f"{self.version} (from {where})"


def resolve_platform_version(config: CortexConfig | None, *, env: str | None) -> PlatformVersion:
    """The CORTEX platform version to decide with: ``env`` (the value of
    :data:`PLATFORM_VERSION_ENV`, read by the caller) when set, else the configuration's
    ``platform_version``, else unknown. Never this package's own version.

    Raises :class:`InputError` when ``env`` is set but is not a full version (never ignored).
    """
    if env is not None and env.strip():
        try:
            return PlatformVersion(check_platform_version(env), "env")
        except ValueError as e:
            raise InputError(f"{PLATFORM_VERSION_ENV}={env!r} is not a version: {e}",
                             advice=f"set {PLATFORM_VERSION_ENV} to the CORTEX platform's version, "
                                    "e.g. 8.1.0, or unset it") from None
    if config is not None and config.platform_version is not None:
        return PlatformVersion(config.platform_version, "config")
    return PlatformVersion(None, None)


def scope_matches(scope: str, full_name: str) -> bool:
    """Whether ``scope`` (`*`, `ns/*`, `ns/name`) covers the plugin ``full_name`` (`ns/name`)."""
    if scope == "*":
        return True
    if scope.endswith("/*"):
        return full_name.split("/", 1)[0] == scope[:-2] and "/" in full_name
    return full_name == scope


def _specificity(scope: str) -> int:
    # An exact name beats a namespace wildcard, which beats the catch-all.
    return 0 if scope == "*" else (1 if scope.endswith("/*") else 2)


def resolve_registry(config: CortexConfig, full_name: str) -> RegistryEntry:
    """The one registry that ``full_name`` resolves from: the most specific matching scope,
    otherwise the default. Never several (no cross-registry "highest version" look-up)."""
    best: tuple[int, RegistryEntry] | None = None
    for entry in config.registries:
        for scope in entry.scopes:
            if scope_matches(scope, full_name):
                rank = _specificity(scope)
                if best is None or rank > best[0]:
                    best = (rank, entry)
    return best[1] if best else config.default_entry()


def redact(text: str, secrets: Mapping[str, str | None] | list[str | None]) -> str:
    """Replace every secret value occurring in ``text`` by ``***`` (for logs and errors)."""
    values = secrets.values() if isinstance(secrets, Mapping) else secrets
    for s in values:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text


def load_config(path: Path) -> CortexConfig:
    """Load the configuration at ``path``; a missing file is the default configuration.

    The file is read as a private state file (:mod:`cortex_trust._io`): a symbolic
    link, a file or directory owned by another user or writable by others is refused, never
    used. Raises :class:`InputError` for a refused, unreadable, oversized or invalid file (with
    the fix).
    """
    from .._io import read_private_bytes
    from .._json import load_json

    raw = read_private_bytes(path, what="the configuration", max_bytes=_MAX_CONFIG_BYTES,
                             advice="remove it and set it again with `cortex config set`, or "
                                    "point CORTEX_CONFIG at a JSON file")
    if raw is None:
        return CortexConfig()
    try:
        doc = load_json(raw)
    except ValueError as e:
        raise InputError(f"the configuration {path} is not valid JSON: {e}",
                         advice=f"fix or remove {path}, then use `cortex config set`") from None
    try:
        return CortexConfig.model_validate(doc)
    except ValidationError as e:
        loc, problem, cause = invalid_setting(e)
        where = ".".join(str(p) for p in loc) or "(root)"
        fix = f"{cause.fix}" + (f" (e.g. {cause.example}); " if cause.example else "; ") \
            if cause is not None else ""
        raise InputError(f"the configuration {path} is invalid at {where}: {problem}",
                         advice=f"{fix}correct it with `cortex config set|unset` or edit the "
                                "file") from None


def save_config(path: Path, config: CortexConfig) -> None:
    """Write ``config`` to ``path`` atomically with owner-only permissions (0600, dir 0700).

    Raises :class:`InputError` when the file cannot be written.
    """
    from .._io import write_private_json

    write_private_json(path, config.model_dump(mode="json", exclude_defaults=False), what="the configuration",
                       advice="check the directory's permissions, or set CORTEX_CONFIG")
