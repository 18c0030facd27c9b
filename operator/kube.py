"""The operator's own Kubernetes API calls (kopf does the watching): ConfigMap sources and
deleting finished jobs. The sync client runs in worker threads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubeingest.kubeclient import GROUP, PLURAL, VERSION, api_client
from kubeingest.sources import SourceError

__all__ = ["GROUP", "PLURAL", "VERSION", "Kube"]


class Kube:
    def __init__(self, url: str | None) -> None:
        self._api = api_client(url)
        self.core = client.CoreV1Api(self._api)
        self.custom = client.CustomObjectsApi(self._api)

    def configmap_reader(self, namespace: str) -> Any:
        def read(name: str) -> Mapping[str, str]:
            try:
                cm = self.core.read_namespaced_config_map(name, namespace)
            except ApiException as e:
                raise SourceError(
                    f"cannot read ConfigMap {namespace}/{name}: HTTP {e.status}"
                ) from e
            return dict(cm.data or {})

        return read

    def delete_job(self, namespace: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as e:
            if e.status != 404:  # already gone is what we wanted
                raise

    def close(self) -> None:
        self._api.close()
