"""Plugin manifest v1: the model.

A manifest says what a plugin is (``name``, ``version``, ``description``, ``author``,
``license``), how it runs (``runtime``: a Docker/OCI image), what it offers (``capabilities``:
HTTP endpoints) and what it asks for (``trust``: sandbox, network, filesystem). Policies read the
normalised document (:meth:`Manifest.to_document`) as ``input.manifest.document``.

Instances are immutable and always satisfy every rule of :mod:`cortex_trust.manifest._rules`;
unknown fields are refused. Loading a file, and explaining why one does not load, is
:mod:`cortex_trust.manifest._load`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    field_validator,
)

from ..ids import IMAGE_PATTERN, MAX_IMAGE, ImageRef, parse_image_ref
from . import _spdx
from ._rules import (
    AUTHOR_PATTERN,
    CAPABILITY_PATTERN,
    ENDPOINT_PATTERN,
    MAX_AUTHOR,
    MAX_DESCRIPTION,
    MAX_ENDPOINT,
    MAX_NAME,
    MIN_VERSION_PATTERN,
    NAME_PATTERN,
    SEMVER_PATTERN,
    _check_author,
    _check_capability_description,
    _check_capability_name,
    _check_description,
    _check_endpoint,
    _check_image,
    _check_license,
    _check_method,
    _check_min_version,
    _check_name,
    _check_runtime_type,
    _check_version,
    _err,
    _rename_duplicate,
)

__all__ = [
    "Capability",
    "Manifest",
    "RuntimeSpec",
    "TrustSpec",
    "manifest_json_schema",
]

# --- the model ----------------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class RuntimeSpec(_Strict):
    """How the plugin runs: a container image (``type`` is ``docker``; ``wasm`` is reserved)."""

    type: Annotated[Literal["docker"], BeforeValidator(_check_runtime_type)] = Field(
        description="The runtime. Only `docker` is supported; `wasm` is reserved.")
    image: Annotated[StrictStr, AfterValidator(_check_image), Field(
        description="OCI image reference: [host[:port]/]repository[:tag][@sha256:<64 hex>]. "
                    "Pin the digest for anything beyond development.",
        json_schema_extra={"pattern": IMAGE_PATTERN, "maxLength": MAX_IMAGE})]


class Capability(_Strict):
    """One HTTP endpoint the plugin serves."""

    name: Annotated[StrictStr, AfterValidator(_check_capability_name), Field(
        description="Unique slug within the manifest (lowercase, digits, inner - or _).",
        json_schema_extra={"pattern": CAPABILITY_PATTERN, "maxLength": MAX_NAME})]
    endpoint: Annotated[StrictStr, AfterValidator(_check_endpoint), Field(
        description="Absolute URL path, e.g. /greet (no query, no '..', no whitespace).",
        json_schema_extra={"pattern": ENDPOINT_PATTERN, "maxLength": MAX_ENDPOINT})]
    method: Annotated[Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
                      BeforeValidator(_check_method)] = Field(description="HTTP method, upper case.")
    description: Annotated[StrictStr | None, AfterValidator(_check_capability_description), Field(
        description="What the endpoint does.",
        json_schema_extra={"maxLength": MAX_DESCRIPTION, "minLength": 1})] = None


class TrustSpec(_Strict):
    """What the plugin asks for. Policy decides what it gets; the defaults ask for least."""

    min_cortex_version: Annotated[StrictStr, AfterValidator(_check_min_version), Field(
        description='Lowest CORTEX platform version the plugin works with: MAJOR.MINOR.PATCH, '
                    'MAJOR.MINOR or MAJOR, quoted ("8.0" means 8.0.0). Loaded as the full '
                    'version.',
        json_schema_extra={"pattern": MIN_VERSION_PATTERN})]
    sandbox: StrictBool = Field(
        default=True, description="Run in the sandbox. `false` is blocked by the default policy.")
    network: StrictBool = Field(
        default=False, description="Ask for network access (granted only if policy allows).")
    filesystem: StrictBool = Field(
        default=False, description="Ask for host filesystem access (granted only if policy "
                                   "allows).")


class Manifest(_Strict):
    """A valid plugin manifest (v1). Instances are immutable and always satisfy every rule."""

    name: Annotated[StrictStr, AfterValidator(_check_name), Field(
        description="Plugin name: lowercase letters, digits and inner hyphens, at most 64.",
        json_schema_extra={"pattern": NAME_PATTERN, "maxLength": MAX_NAME})]
    version: Annotated[StrictStr, AfterValidator(_check_version), Field(
        description='SemVer 2.0.0 version. Quote it in YAML: version: "1.10.0".',
        json_schema_extra={"pattern": SEMVER_PATTERN})]
    description: Annotated[StrictStr, AfterValidator(_check_description), Field(
        description="What the plugin does.",
        json_schema_extra={"minLength": 1, "maxLength": MAX_DESCRIPTION})]
    author: Annotated[StrictStr, AfterValidator(_check_author), Field(
        description="`Name <email>`.",
        json_schema_extra={"pattern": AUTHOR_PATTERN, "maxLength": MAX_AUTHOR})]
    license: Annotated[StrictStr, AfterValidator(_check_license), Field(
        description="SPDX license identifier or expression, e.g. MIT or Apache-2.0 OR MIT.",
        json_schema_extra={"minLength": 1, "maxLength": _spdx.MAX_LEN})]
    runtime: RuntimeSpec
    capabilities: tuple[Capability, ...] = Field(
        min_length=1, description="The HTTP endpoints the plugin serves (at least one).")
    trust: TrustSpec

    @field_validator("capabilities")
    @classmethod
    def _unique_capabilities(cls, caps: tuple[Capability, ...]) -> tuple[Capability, ...]:
        names: dict[str, int] = {}
        routes: dict[tuple[str, str], int] = {}
        for i, cap in enumerate(caps):
            if cap.name in names:
                raise _err(f"capability name {cap.name!r} is already used by "
                           f"capabilities[{names[cap.name]}]",
                           _rename_duplicate(cap.name, {c.name for c in caps}), at=(i, "name"))
            names[cap.name] = i
            route = (cap.method, cap.endpoint)
            if route in routes:
                raise _err(f"{cap.method} {cap.endpoint} is already declared by "
                           f"capabilities[{routes[route]}]", "declare each endpoint once",
                           at=(i, "endpoint"))
            routes[route] = i
        return caps

    @property
    def image(self) -> ImageRef:
        """``runtime.image`` split into domain, path, tag and digest."""
        return parse_image_ref(self.runtime.image, what="runtime.image")

    @property
    def image_digest(self) -> str | None:
        """The ``sha256:...`` digest pinned in ``runtime.image``, or None if not pinned."""
        return self.image.digest

    @property
    def image_repository(self) -> str:
        """``runtime.image`` without tag and digest (``127.0.0.1:5000/cortex/hello``)."""
        return self.image.repository

    @property
    def image_tag(self) -> str | None:
        """The tag of ``runtime.image``, or None."""
        return self.image.tag

    def to_document(self) -> dict[str, Any]:
        """The manifest as a JSON-ready dict with every default applied.

        Keys are exactly the manifest's field names; this is ``input.manifest.document``.
        """
        return self.model_dump(mode="json")


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of manifest v1, for editors and other tools.

    Strict like the loader: every object has ``additionalProperties: false``. Some rules (unique
    capability names, SPDX identifiers, confusable characters) are only enforced by
    ``cortex manifest lint``.
    """
    schema = Manifest.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://cortex.dev/schemas/cortex.manifest/v1.json"
    schema["title"] = "CORTEX plugin manifest v1"
    schema["description"] = "manifest.yaml of a CORTEX plugin. Validate with `cortex manifest lint`."
    return schema
