"""The Kubernetes API client and the IngestionJob resource's coordinates, shared by the
operator (ConfigMap sources, TTL deletion) and the HTTP API's cluster mode."""

from __future__ import annotations

from typing import Any

GROUP, VERSION, PLURAL = "kubeingest.io", "v1alpha1", "ingestionjobs"


def api_client(url: str | None) -> Any:
    """A client for `url` without auth (tests, kubectl proxy); else in-cluster config; else
    ~/.kube/config. Imported lazily: `kubeingest run` never needs the kubernetes package."""
    from kubernetes import client, config

    if url:
        cfg = client.Configuration()
        cfg.host = url
        cfg.verify_ssl = False
        return client.ApiClient(cfg)
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:  # not in a pod: a developer's kubeconfig
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()
