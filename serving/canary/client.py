"""The thin layer over `kserve.KServeClient`. The SDK client is created on first use, so dry runs
and tests never need a kubeconfig; bodies are turned into SDK objects by the strict converter, so
what is sent is exactly the dict that --dry-run prints."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from serving.canary.errors import CanaryError
from serving.canary.sdk import to_sdk_model
from serving.canary.status import HTTPROUTE_GROUP, HTTPROUTE_PLURAL, HTTPROUTE_VERSION


class IsvcClient(Protocol):
    def get(self, name: str, namespace: str) -> dict[str, Any]: ...

    def patch(self, name: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def replace(self, name: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def wait_ready(
        self, name: str, namespace: str, *, timeout_s: int, poll_s: int, expected_generation: int | None
    ) -> None: ...

    def get_httproute(self, name: str, namespace: str) -> dict[str, Any] | None: ...


def _default_kserve_client() -> Any:
    from kserve import KServeClient
    from kubernetes.config import ConfigException

    try:
        return KServeClient()
    except (ConfigException, FileNotFoundError) as exc:
        raise CanaryError(
            f"cannot reach a cluster: {exc}; set KUBECONFIG, or work offline from a saved object (`kubectl get isvc -o yaml`): "
            "`status --current FILE`, or `deploy|promote|rollback --dry-run --current FILE`"
        ) from exc


class KServeIsvcClient:
    """`IsvcClient` on the KServe SDK: merge patches through `KServeClient.patch`, whole objects
    through `KServeClient.replace`, readiness through `KServeClient.wait_isvc_ready`."""

    def __init__(self, kserve_factory: Callable[[], Any] = _default_kserve_client):
        self._factory = kserve_factory
        self._kserve: Any = None

    @property
    def kserve(self) -> Any:
        if self._kserve is None:
            self._kserve = self._factory()
        return self._kserve

    def get(self, name: str, namespace: str) -> dict[str, Any]:
        try:
            return self.kserve.get(name, namespace=namespace)
        except RuntimeError as exc:  # the SDK wraps ApiException in RuntimeError
            raise CanaryError(f"cannot read InferenceService {name} in namespace {namespace}: {exc}") from exc

    def patch(self, name: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        isvc = to_sdk_model(body, validate=False)
        try:
            return self.kserve.patch(name, isvc, namespace=namespace)
        except RuntimeError as exc:
            raise CanaryError(f"patch of InferenceService {name} in namespace {namespace} failed: {exc}") from exc

    def replace(self, name: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        isvc = to_sdk_model(body, validate=True)
        try:
            return self.kserve.replace(name, isvc, namespace=namespace)
        except RuntimeError as exc:
            raise CanaryError(f"replace of InferenceService {name} in namespace {namespace} failed: {exc}") from exc

    def wait_ready(
        self, name: str, namespace: str, *, timeout_s: int, poll_s: int, expected_generation: int | None
    ) -> None:
        try:
            self.kserve.wait_isvc_ready(
                name,
                namespace=namespace,
                timeout_seconds=timeout_s,
                polling_interval=poll_s,
                expected_generation=expected_generation,
            )
        except RuntimeError as exc:
            raise CanaryError(f"InferenceService {name} in namespace {namespace} did not become ready: {exc}") from exc

    def get_httproute(self, name: str, namespace: str) -> dict[str, Any] | None:
        from kubernetes.client.rest import ApiException

        try:
            return self.kserve.api_instance.get_namespaced_custom_object(
                HTTPROUTE_GROUP, HTTPROUTE_VERSION, namespace, HTTPROUTE_PLURAL, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise CanaryError(f"cannot read HTTPRoute {name} in namespace {namespace}: {exc.status} {exc.reason}") from exc
