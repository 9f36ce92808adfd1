"""Shared pytest fixtures. Each area keeps its fixtures in its own tests/_*_fixtures.py module."""

from tests._container_fixtures import container_env, container_runtime, hello_image, oci_client
from tests._install_fixtures import federation, private_sigstore, registry_evaluator

__all__ = ["container_env", "container_runtime", "federation", "hello_image", "oci_client",
           "private_sigstore", "registry_evaluator"]
