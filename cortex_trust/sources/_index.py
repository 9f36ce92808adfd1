"""Reading a registry through its signed index (TUF), from the registry itself, a CDN or a mirror.

A registry's index is a static tree: the JSON documents its API serves, as TUF *targets*, and
the TUF metadata that vouches for them (root, timestamp, snapshot, targets and hashed-bin
delegations). :class:`IndexClient` answers the registry client's reads from that tree through
:class:`tuf.ngclient.Updater`, so every guarantee of the TUF client workflow holds for them:

* a document is believed only when the metadata signed by the keys the trusted root names lists
  it with this length and hash (arbitrary or tampered documents, wrong software);
* metadata versions never go back below what this client already trusted (rollback), expired
  metadata is refused (freeze), snapshot and targets must be of one moment (mix-and-match), and
  every download is capped in size and time (endless data, slow retrieval);
* a document that is not listed is an authenticated "not found": the answer is final.

Every failure is a :class:`~cortex_trust.errors.RegistryUnavailable` that says which check
failed, so the caller falls back to the next mirror and, when none verifies, refuses to act
(fail closed). Answers are then parsed and checked exactly as the registry's own answers are
(:class:`~cortex_trust.sources.RegistryClient`: wire models, documents about the plugin asked).

The trusted root is given by the operator (``trusted_root``) or pinned on first use: the first
root the index serves (``1.root.json``), which must be signed by its own keys; later roots are
reached only through TUF's root rotation. Trusted metadata and verified documents are cached in
``cache_dir`` (one directory per registry and index; mirrors of one index share it, so a mirror
can never roll a client back below what another mirror showed it).

The index layout (target paths) is :class:`IndexLayout`, shared with the repository side.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlparse

from .._json import load_json
from ..errors import InputError, RegistryUnavailable
from ._registry import DEFAULT_MAX_RESPONSE_BYTES, RegistryClient, RegistryRequestError

if TYPE_CHECKING:
    import httpx
    from tuf.api.metadata import TargetFile
    from tuf.ngclient import Updater

__all__ = ["IndexClient", "IndexLayout", "index_cache_dir", "mirror_index"]

#: Wall-clock bound on one download (metadata or document): a server that trickles bytes to
#: keep a client waiting forever (slow retrieval) is cut off here, whatever its pace.
DEFAULT_DEADLINE = 60.0
#: A trusted root larger than this is not a root.
_MAX_ROOT_BYTES = 512_000


class IndexLayout:
    """Where each document lives in an index, as a TUF target path (no leading ``/``).

    Each path carries the same bytes as the API route named beside it:

    ==============================================  ==============================================
    ``plugins/NS/NAME.json``                        ``GET /api/v1/plugins/NS/NAME``
    ``plugins/NS/NAME/versions.json``               ``GET /api/v1/plugins/NS/NAME/versions``
    ``plugins/NS/NAME/versions/V.json``             ``GET .../versions/V``
    ``plugins/NS/NAME/versions/V.bundle.json``      ``GET .../versions/V/bundle``
    ``catalogue/X.json``                            a page of every plugin summary whose key's
                                                    SHA-256 starts with hex digit ``X``
    ``revocations/K.json``                          ``GET /api/v1/revocations`` page ``K``: the
                                                    entries ``K*500 ..`` in feed order
    ==============================================  ==============================================

    Catalogue shards and revocation chunks keep one publish or revocation to a few documents
    whatever the catalogue's size.
    """

    #: Catalogue shards: one per first hex digit of SHA-256(``namespace/name``).
    CATALOGUE_SHARDS = 16
    #: Revocation entries per chunk (the API's default page).
    REVOCATION_CHUNK = 500
    #: The timestamp metadata field saying when it was signed (RFC 3339, UTC): how current the
    #: index's answers are, which TUF metadata does not otherwise say.
    SIGNED_AT = "x-cortex-signed-at"

    _SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,127}\Z")

    @classmethod
    def _seg(cls, value: str) -> str:
        if not cls._SEGMENT.match(value) or ".." in value:
            raise InputError(f"{value!r} cannot be a name or version in an index",
                             advice="names are slugs and versions SemVer")
        return value

    @classmethod
    def plugin(cls, namespace: str, name: str) -> str:
        """The plugin document."""
        return f"plugins/{cls._seg(namespace)}/{cls._seg(name)}.json"

    @classmethod
    def versions(cls, namespace: str, name: str) -> str:
        """The list of the plugin's versions."""
        return f"plugins/{cls._seg(namespace)}/{cls._seg(name)}/versions.json"

    @classmethod
    def version(cls, namespace: str, name: str, version: str) -> str:
        """One version document."""
        return f"plugins/{cls._seg(namespace)}/{cls._seg(name)}/versions/{cls._seg(version)}.json"

    @classmethod
    def bundle(cls, namespace: str, name: str, version: str) -> str:
        """The Sigstore bundle published with one version."""
        return (f"plugins/{cls._seg(namespace)}/{cls._seg(name)}/versions/"
                f"{cls._seg(version)}.bundle.json")

    @classmethod
    def shard(cls, key: str) -> int:
        """The catalogue shard of the plugin ``namespace/name``."""
        return int(hashlib.sha256(key.encode()).hexdigest()[0], 16)

    @classmethod
    def catalogue(cls, shard: int) -> str:
        """One catalogue shard: ``{"items": [summaries by key], "next_cursor": null}``."""
        if not 0 <= shard < cls.CATALOGUE_SHARDS:
            raise ValueError(shard)
        return f"catalogue/{shard:x}.json"

    @classmethod
    def revocations(cls, chunk: int) -> str:
        """One chunk of the revocation feed."""
        if chunk < 0:
            raise ValueError(chunk)
        return f"revocations/{chunk}.json"


def index_cache_dir(data_dir: Path, *, registry: str, index_url: str,
                    trusted_root: bytes | None) -> Path:
    """The cache of one registry's index under ``data_dir``: keyed by the registry's name, its
    primary index URL and the configured root, so that pointing a name at another index (or
    pinning another root) starts from a fresh trust state instead of inheriting one."""
    pin = hashlib.sha256(trusted_root).hexdigest() if trusted_root is not None else "first-use"
    ident = hashlib.sha256(f"{registry}\n{index_url}\n{pin}".encode()).hexdigest()[:16]
    return data_dir / "index" / f"{registry}-{ident}"


def _check_index_url(url: str) -> str:
    scheme = urlparse(url).scheme
    if scheme not in ("http", "https", "file"):
        raise InputError(f"{url!r} is not an http(s) or file URL",
                         advice="give the index URL, e.g. https://cdn.example.org/cortex-index or "
                                "file:///srv/cortex-index")
    return url.rstrip("/")


def _fetcher(*, timeout: float, deadline: float, transport: httpx.BaseTransport | None) -> Any:
    """A :class:`tuf.ngclient.FetcherInterface` over httpx and ``file://`` (built on first use:
    tuf is imported only by commands that read an index)."""
    import httpx
    from tuf.api.exceptions import DownloadHTTPError, SlowRetrievalError
    from tuf.ngclient import FetcherInterface

    class IndexFetcher(FetcherInterface):
        """Downloads bounded in time as a whole (``deadline``), not only per read."""

        def __init__(self) -> None:
            # Compression is refused (identity): the bytes counted against TUF's length caps are
            # the bytes received, and a compressed body fails its hash anyway.
            self.http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False,
                                     headers={"User-Agent": "cortex-trust",
                                              "Accept-Encoding": "identity"})

        def _fetch(self, url: str) -> Iterator[bytes]:
            if url.startswith("file://"):
                return self._file(url)
            stop = time.monotonic() + deadline
            stream = self.http.stream("GET", url)
            response = stream.__enter__()
            if response.status_code != 200:
                stream.__exit__(None, None, None)
                raise DownloadHTTPError(f"HTTP {response.status_code} for {url}",
                                        response.status_code)

            def chunks() -> Iterator[bytes]:
                try:
                    for chunk in response.iter_raw():
                        if time.monotonic() > stop:
                            raise SlowRetrievalError(f"{url} took longer than {deadline:g} s")
                        yield chunk
                finally:
                    stream.__exit__(None, None, None)

            return chunks()

        @staticmethod
        def _file(url: str) -> Iterator[bytes]:
            path = Path(unquote(urlparse(url).path))
            try:
                handle = path.open("rb")
            except FileNotFoundError:
                raise DownloadHTTPError(f"{path} does not exist", 404) from None

            def chunks() -> Iterator[bytes]:
                with handle:
                    while chunk := handle.read(65536):
                        yield chunk

            return chunks()

    return IndexFetcher()


def _unavailable(url: str, e: Exception) -> RegistryUnavailable:
    """One TUF or download failure as the error a user reads (and a mirror is skipped on)."""
    from tuf.api import exceptions as tuf_errors

    why = f"{type(e).__name__}: {e}"
    if isinstance(e, tuf_errors.ExpiredMetadataError):
        return RegistryUnavailable(
            f"the index at {url} is stale ({why})",
            advice="its operator must re-sign it (cortex registry index refresh); a mirror that "
                   "serves it may be frozen. Nothing is decided on a stale index")
    if isinstance(e, tuf_errors.RepositoryError):
        return RegistryUnavailable(
            f"the index at {url} failed TUF verification ({why})",
            advice="do not use this index until its operator fixes it; another mirror may serve "
                   "a valid copy")
    if isinstance(e, tuf_errors.DownloadError):
        return RegistryUnavailable(f"could not download from the index at {url} ({why})",
                                   advice="check the index URL and your network, or retry later")
    return RegistryUnavailable(f"could not use the index cache for {url} ({why})",
                               advice="check the permissions of the data directory")


def _trust_first_use(fetcher: Any, url: str) -> bytes:
    """The index's first root (``1.root.json``), accepted only if its own keys sign it."""
    from tuf.api.metadata import Metadata, Root

    data = fetcher.download_bytes(f"{url}/metadata/1.root.json", _MAX_ROOT_BYTES)
    md = Metadata.from_bytes(data)
    if not isinstance(md.signed, Root):
        raise InputError(f"{url}/metadata/1.root.json is not a TUF root")
    md.signed.verify_delegate(Root.type, md.signed_bytes, md.signatures)
    return bytes(data)


class IndexClient(RegistryClient):
    """The registry client's reads, answered from a TUF-verified index at ``url``.

    ``url`` is the index's base (``http(s)://`` or ``file://``; metadata under ``metadata/``,
    documents under ``targets/``). ``cache_dir`` keeps the trusted metadata and verified
    documents (see :func:`index_cache_dir`); ``trusted_root`` is the root the operator gave
    (``None``: pinned on first use). ``deadline`` bounds each download as a whole. Writes and
    transparency-log reads are not served by an index (:class:`RegistryUnavailable`).
    """

    def __init__(self, url: str, *, cache_dir: Path, trusted_root: bytes | None = None,
                 timeout: float = 10.0, deadline: float = DEFAULT_DEADLINE,
                 transport: httpx.BaseTransport | None = None,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        # Not RegistryClient.__init__: no API client; every answer comes from _read below.
        self.base_url = _check_index_url(url)
        self.max_response_bytes = max_response_bytes
        self._cache = cache_dir
        self._trusted_root = trusted_root
        self._timeout, self._deadline, self._transport = timeout, deadline, transport
        self._fetch: Any = None
        self._tuf: Updater | None = None
        self._docs: dict[str, bytes | None] = {}
        self._feed: list[Any] | None = None

    def close(self) -> None:
        """Close the connection pool."""
        if self._fetch is not None:
            self._fetch.http.close()

    # ------------------------------------------------------------------------------ TUF

    def _updater(self) -> Updater:
        """The refreshed updater (one refresh per client: one consistent index state)."""
        if self._tuf is not None:
            return self._tuf
        from tuf.ngclient import Updater

        try:
            self._fetch = self._fetch or _fetcher(timeout=self._timeout, deadline=self._deadline,
                                                  transport=self._transport)
            metadata = self._cache / "metadata"
            metadata.mkdir(parents=True, exist_ok=True, mode=0o700)
            bootstrap: bytes | None = None
            if not (metadata / "root.json").exists():
                bootstrap = (self._trusted_root if self._trusted_root is not None
                             else _trust_first_use(self._fetch, self.base_url))
            updater = Updater(str(metadata), f"{self.base_url}/metadata/",
                              str(self._cache / "targets"), f"{self.base_url}/targets/",
                              fetcher=self._fetch, bootstrap=bootstrap)
            updater.refresh()
        except InputError as e:
            raise RegistryUnavailable(f"the index at {self.base_url} has no usable root: "
                                      f"{e.message}", advice="ask its operator for the root "
                                      "(metadata/1.root.json) and pass it with --index-root"
                                      ) from None
        except Exception as e:  # tuf and its fetcher raise many kinds; each is reported  # noqa: BLE001
            raise _unavailable(self.base_url, e) from None
        self._tuf = updater
        return updater

    def data_as_of(self, now: datetime) -> datetime:
        """When the verified timestamp was signed (never later than ``now``): the index's
        answers are known current as of then. Raises :class:`RegistryUnavailable` when the
        timestamp does not say (an index this client cannot date is not believed current)."""
        from tuf.api.metadata import Metadata

        self._updater()
        try:
            # ngclient writes timestamp.json only once it verified it (this refresh).
            signed = Metadata.from_bytes((self._cache / "metadata" / "timestamp.json")
                                         .read_bytes()).signed
            stamp = signed.unrecognized_fields.get(IndexLayout.SIGNED_AT)
            at = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
            if at.tzinfo is None:
                raise ValueError(stamp)
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise RegistryUnavailable(f"the index at {self.base_url} does not say when its "
                                      f"timestamp was signed ({type(e).__name__})",
                                      advice="its operator must build it with "
                                             "`cortex registry index`") from None
        return min(now, at.astimezone(UTC), signed.expires)

    def target(self, path: str) -> bytes | None:
        """The verified bytes of the document at ``path``, or ``None`` when the index (as its
        signed metadata says) has no such document."""
        if path in self._docs:
            return self._docs[path]
        updater = self._updater()
        try:
            info = updater.get_targetinfo(path)
            data = None if info is None else self._cached(info)
            if info is not None and data is None:
                updater.download_target(info, filepath=str(self._local(path)))
                data = self._cached(info)
                if data is None:
                    raise OSError(f"{path} changed in the cache while being read")
        except Exception as e:  # noqa: BLE001 - translated, see _unavailable
            raise _unavailable(self.base_url, e) from None
        self._docs[path] = data
        return data

    def _local(self, path: str) -> Path:
        return self._cache / "targets" / quote(path, safe="")

    def _cached(self, info: TargetFile) -> bytes | None:
        from tuf.api.exceptions import LengthOrHashMismatchError

        if info.length > self.max_response_bytes:
            raise RegistryUnavailable(f"the index at {self.base_url} lists {info.path} with "
                                      f"{info.length} bytes, above {self.max_response_bytes}",
                                      advice="check that the URL is a cortex registry's index")
        # Read once, then verify those very bytes (no check-then-read of the cached file).
        try:
            with self._local(info.path).open("rb") as f:
                data = f.read(info.length + 1)
            info.verify_length_and_hashes(data)
        except (OSError, LengthOrHashMismatchError):
            return None
        return data

    # ------------------------------------------------------------------- the client's reads

    def _read(self, method: str, path: str, *, params: dict[str, str] | None = None,
              json_body: Any = None) -> bytes:
        parts = [unquote(p) for p in path.split("/")]
        if method == "GET" and parts[:4] == ["", "api", "v1", "plugins"]:
            rest = parts[4:]
            if not rest:
                return self._plugin_page(params or {})
            if len(rest) >= 2:
                ns, name, tail = rest[0], rest[1], rest[2:]
                if not tail:
                    return self._document(IndexLayout.plugin(ns, name), f"{ns}/{name}")
                if tail == ["versions"]:
                    return self._document(IndexLayout.versions(ns, name), f"{ns}/{name}")
                if len(tail) == 2 and tail[0] == "versions":
                    return self._document(IndexLayout.version(ns, name, tail[1]),
                                          f"{ns}/{name}@{tail[1]}")
                if len(tail) == 3 and tail[0] == "versions" and tail[2] == "bundle":
                    return self._document(IndexLayout.bundle(ns, name, tail[1]),
                                          f"{ns}/{name}@{tail[1]}")
        if method == "GET" and path == "/api/v1/revocations":
            return self._revocation_page(params or {})
        raise RegistryUnavailable(f"the index at {self.base_url} does not serve {method} {path}",
                                  advice="writes and transparency-log proofs go to the registry "
                                         "itself")

    def _document(self, target: str, what: str) -> bytes:
        data = self.target(target)
        if data is None:
            # The signed metadata says there is no such document: the index's final answer.
            raise RegistryRequestError(f"{what} is not in this registry's index", status=404,
                                       code="NOT_FOUND",
                                       advice="check the name with `cortex plugin search`")
        return data

    def _json(self, target: str) -> Any:
        data = self.target(target)
        if data is None:
            return None
        try:
            return load_json(data)
        except ValueError:
            raise self._untrusted("GET", target, "a document that is not JSON") from None

    def _plugin_page(self, params: dict[str, str]) -> bytes:
        """``GET /api/v1/plugins`` over the catalogue shards: the registry's filters (the words
        are matched against the name and the description), key order, key cursors."""
        from ._wire import PluginPage

        items: list[dict[str, Any]] = []
        for shard in range(IndexLayout.CATALOGUE_SHARDS):
            page = self._json(IndexLayout.catalogue(shard))
            if page is None:
                continue
            parsed = PluginPage.model_validate(page)
            items.extend(i.model_dump(mode="json") for i in parsed.items)
        q = (params.get("q") or "").lower()
        after = _decode_key(params.get("cursor"))
        limit = int(params.get("limit") or "20")
        hits = sorted((i for i in items
                       if (not params.get("namespace") or i["namespace"] == params["namespace"])
                       and (not params.get("tier") or i.get("tier") == params["tier"])
                       and (not q or q in f"{i['namespace']}/{i['name']} "
                                          f"{str(i.get('description') or '').lower()}")
                       and (after is None or f"{i['namespace']}/{i['name']}" > after)),
                      key=lambda i: f"{i['namespace']}/{i['name']}")
        page_items = hits[:limit]
        nxt = (_encode_key(f"{page_items[-1]['namespace']}/{page_items[-1]['name']}")
               if len(hits) > limit else None)
        return json.dumps({"items": page_items, "next_cursor": nxt}).encode()

    def _revocation_page(self, params: dict[str, str]) -> bytes:
        """``GET /api/v1/revocations`` over the feed's chunks, read from the first to the first
        short one (documents TUF already verified are read from the cache)."""
        if self._feed is None:
            entries: list[Any] = []
            for chunk in range(1_000_000):
                page = self._json(IndexLayout.revocations(chunk))
                items = page.get("items") if isinstance(page, dict) else None
                if page is None:
                    break
                if not isinstance(items, list):
                    raise self._untrusted("GET", IndexLayout.revocations(chunk),
                                          "a revocation chunk that is not a page")
                entries.extend(items)
                if len(items) < IndexLayout.REVOCATION_CHUNK:
                    break
            self._feed = entries
        cursor, limit = int(params.get("cursor") or 0), int(params.get("limit") or 500)
        after = [e for e in self._feed if isinstance(e, dict) and isinstance(e.get("cursor"), int)
                 and e["cursor"] > cursor][:limit]
        nxt = after[-1]["cursor"] if after else cursor
        return json.dumps({"items": after, "next_cursor": nxt}).encode()


def _encode_key(key: str) -> str:
    import base64

    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _decode_key(cursor: str | None) -> str | None:
    import base64
    import binascii

    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InputError("the cursor is not one this index issued",
                         advice="pass next_cursor from the previous page unchanged") from None


def mirror_index(source_url: str, out_dir: Path, *, cache_dir: Path,
                 trusted_root: bytes | None = None, timeout: float = 10.0,
                 deadline: float = DEFAULT_DEADLINE,
                 transport: httpx.BaseTransport | None = None) -> dict[str, int]:
    """Download the index at ``source_url`` into ``out_dir``, verifying every file as a client
    does, and lay it out to be served as it is (metadata with the source's own signatures,
    documents under their hash-prefixed names). Returns counts (``metadata``, ``targets``).

    ``cache_dir`` keeps the trust state between runs (rollback protection across mirror runs).
    Raises :class:`RegistryUnavailable` when anything fails to verify: nothing is then written
    to ``out_dir`` (the copy is assembled beside it and moved in at the end).
    """
    import json
    import os
    import shutil
    import tempfile

    from tuf.api.metadata import Metadata, SuccinctRoles, Targets

    client = IndexClient(source_url, cache_dir=cache_dir, trusted_root=trusted_root,
                         timeout=timeout, deadline=deadline, transport=transport)
    try:
        updater = client._updater()
        metadata = cache_dir / "metadata"
        top = Metadata[Targets].from_bytes((metadata / "targets.json").read_bytes())
        delegations = top.signed.delegations
        succinct: SuccinctRoles | None = delegations.succinct_roles if delegations else None
        paths: set[str] = set(top.signed.targets)
        if succinct is not None:
            # Reach every bin through the public API: one probe path that hashes into it.
            probes: dict[str, str] = {}
            n = 0
            while len(probes) < succinct.number_of_bins:
                probe = f"probe/{n}"
                probes.setdefault(succinct.get_role_for_target(probe), probe)
                n += 1
            for probe in probes.values():
                try:
                    updater.get_targetinfo(probe)
                except Exception as e:  # noqa: BLE001 - translated
                    raise _unavailable(client.base_url, e) from None
            for role in probes:
                bin_md = Metadata[Targets].from_bytes((metadata / f"{role}.json").read_bytes())
                paths.update(bin_md.signed.targets)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".mirror-", dir=out_dir.parent))
        try:
            (staging / "metadata").mkdir()
            count_md = 0
            for src in sorted(metadata.iterdir()):
                if src.is_file() and src.suffix == ".json" and src.name != "root.json":
                    md = Metadata.from_bytes(src.read_bytes())
                    role = src.name[:-len(".json")]
                    name = (f"{role}.json" if role == "timestamp"
                            else f"{md.signed.version}.{role}.json")
                    shutil.copyfile(src, staging / "metadata" / name)
                    count_md += 1
            for src in sorted((metadata / "root_history").iterdir()):
                shutil.copyfile(src, staging / "metadata" / src.name)
                count_md += 1
            for path in sorted(paths):
                data = client.target(path)
                if data is None:
                    raise RegistryUnavailable(f"{path} is listed but could not be read",
                                              advice="retry the mirror")
                digest = hashlib.sha256(data).hexdigest()
                dirname, _, base = path.rpartition("/")
                dest = staging / "targets" / dirname / f"{digest}.{base}"
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
            (staging / "mirror.json").write_text(json.dumps({"source": source_url}) + "\n")
            old = None
            if out_dir.exists():
                old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
                out_dir.rename(old)
            staging.rename(out_dir)
            if old is not None:
                shutil.rmtree(old)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return {"metadata": count_md, "targets": len(paths)}
    except OSError as e:
        raise RegistryUnavailable(f"could not write the mirror to {out_dir}: {e}",
                                  advice="check the directory and its permissions") from None
    finally:
        client.close()
