"""A Kubernetes API for end-to-end tests: KMock, run in a background thread, plus real kubectl.

Why a thread: KMock is an in-process aiohttp server. The operator under test is a separate OS
process (so a test can kill -9 it), and the tests drive it with blocking calls (kubectl through
`subprocess.run`, polling with `time.sleep`); those would freeze a server that shared the test's
event loop. So `KubeApi` runs the emulator on its own loop in a daemon thread, and the tests stay
plain synchronous functions. Everything the tests read comes over HTTP (kubectl, or `get_json`),
never from the emulator's memory, so no state is shared across the threads.

KMock (0.8) stores objects as plain dicts and knows little of the API server's bookkeeping.
`ApiServerEmulator` adds what kopf and kubectl rely on, the way a real API server does it:
- on create: `metadata.uid`, `creationTimestamp`, `generation: 1`, `namespace` from the URL,
  `apiVersion`/`kind` when missing, and a name from `generateName` (kopf posts Events so);
- on every write: a new `metadata.resourceVersion`, etcd-style, one counter for all objects
  (kopf's JSON-patches of finalizers `test` it; a failed test is answered 422, not 500);
- on a spec change through the main resource: `generation + 1`;
- for resources with the `status` subresource: a write to the main resource drops `status`, a
  write to `/status` keeps only `status` (an operator that writes status the wrong way sees
  it vanish, as it would on a cluster);
- lists carry `kind: <Kind>List` and the resourceVersion they were taken at; a watch takes its
  snapshot and subscribes atomically, and `?resourceVersion=N` replays the events after N.
  KMock's own watch lost the events between its snapshot and its subscription: kopf's first
  finalizer patch often vanished that way and the job was never handled;
- discovery: the core group is `v1` (not `/v1`), and subresources have no short names of their
  own (kubectl warned that `ij` was ambiguous).
KMock still does not validate objects against the CRD schema, runs no garbage collector and
does not print the CRD's printer columns; tests/test_crd.py covers the schema.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import datetime
import itertools
import json
import os
import secrets
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import jsonpatch
import kmock
import yaml

REPO = Path(__file__).resolve().parent.parent
CRD_PATH = REPO / "crds" / "ingestionjob.yaml"
FETCH_TOOLS = REPO / "scripts" / "fetch-tools.sh"

# The built-in resources the operator (and kopf's scanners) touch, besides the CRD's own.
BUILTIN_RESOURCES: dict[str, dict[str, Any]] = {
    "v1/namespaces": {"kind": "Namespace", "singular": "namespace", "namespaced": False,
                      "shortnames": ["ns"], "verbs": ["get", "list", "watch", "create", "delete"]},
    "v1/events": {"kind": "Event", "singular": "event", "namespaced": True,
                  "shortnames": ["ev"],
                  "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
    "v1/configmaps": {"kind": "ConfigMap", "singular": "configmap", "namespaced": True,
                      "shortnames": ["cm"],
                      "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    "apiextensions.k8s.io/v1/customresourcedefinitions": {
        "kind": "CustomResourceDefinition", "singular": "customresourcedefinition",
        "namespaced": False, "shortnames": ["crd", "crds"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
}
CR_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]


def crd_resources(crd_path: Path = CRD_PATH) -> dict[str, dict[str, Any]]:
    """The discovery entries of a CRD file: one per served version, as an API server has."""
    crd = yaml.safe_load(crd_path.read_text(encoding="utf-8"))
    spec, names = crd["spec"], crd["spec"]["names"]
    return {
        f"{spec['group']}/{v['name']}/{names['plural']}": {
            "kind": names["kind"], "singular": names["singular"],
            "namespaced": spec["scope"] == "Namespaced",
            "shortnames": names.get("shortNames", []), "categories": names.get("categories", []),
            "subresources": list(v.get("subresources", {})), "verbs": CR_VERBS,
        }
        for v in spec["versions"] if v.get("served", True)
    }


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace(
        "+00:00", "Z")


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what kubectl --type merge and kopf send)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


class _StampingBus(kmock.Bus[Any]):
    """A resource's watch-event bus that, like etcd, gives every write a new resourceVersion
    and remembers the events, so a watch can start at the version its list was taken at."""

    def __init__(self, versions: itertools.count[int]) -> None:
        super().__init__()
        self._versions = versions
        self.history: list[tuple[int, dict[str, Any]]] = []

    async def put(self, *items: Any) -> None:
        for item in items:
            rv = next(self._versions)
            # The event's metadata dict is the stored object's own: the object gets it too.
            item["object"].setdefault("metadata", {})["resourceVersion"] = str(rv)
            self.history.append((rv, item))
        await super().put(*items)


@attrs.define(kw_only=True)
class ApiServerEmulator(kmock.KubernetesEmulator):
    """KMock's emulator plus the API server's bookkeeping (see the module docstring)."""

    _versions: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1000),
                                                   init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._buses = collections.defaultdict(lambda: _StampingBus(self._versions))

    async def _handle(self, request: kmock.Request) -> Any:
        if request.resource is not None:
            if request.action == kmock.action.CREATE and isinstance(request.data, dict):
                self._admit_create(request)
            elif request.action == kmock.action.UPDATE and request.name is not None:
                self._admit_update(request)
        return await super()._handle(request)

    def _info(self, resource: Any) -> Any:
        for res in self.resources:
            if res == resource:
                return self.resources[res]
        return None

    def _has_status(self, request: kmock.Request) -> bool:
        info = self._info(request.resource)
        return info is not None and "status" in info.subresources

    @staticmethod
    def _api_version(resource: Any) -> str:
        return f"{resource.group}/{resource.version}" if resource.group else str(resource.version)

    async def _serve_version(self, request: kmock.Request) -> Any:
        # Subresources (`ingestionjobs/status`) have no short names of their own: KMock lists
        # them there too, and kubectl then warns that `ij` is ambiguous.
        payload = await super()._serve_version(request)
        if payload["groupVersion"].startswith("/"):  # the core group is "v1", not "/v1"
            payload["groupVersion"] = payload["groupVersion"][1:]
        for entry in payload["resources"]:
            if "/" in entry["name"]:
                entry["shortNames"], entry["categories"] = [], []
        return payload

    @staticmethod
    def _selects(request: kmock.Request, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata", {})
        if request.namespace is not None and meta.get("namespace") != request.namespace:
            return False
        name = request.name
        for term in request.params.get("fieldSelector", "").split(","):
            if term.startswith("metadata.name="):
                name = term.removeprefix("metadata.name=")
        return name is None or meta.get("name") == name

    def _current(self, request: kmock.Request) -> list[dict[str, Any]]:
        return [obj.raw for (res, _, _), obj in self.objects.items()
                if res == request.resource and not obj.deleted
                and self._selects(request, obj.raw)]

    def _bus(self, request: kmock.Request) -> _StampingBus:
        bus: _StampingBus = self._buses[request.resource]
        return bus

    async def _serve_list(self, request: kmock.Request) -> Any:
        # A list has a kind (`IngestionJobList`), which kubectl needs, and the resourceVersion
        # it was taken at, from which a watch continues without losing events.
        if self._info(request.resource) is None:
            return await super()._serve_list(request)  # KMock's 404
        async with self._lock:
            items = self._current(request)
            bus = self._bus(request)
            rv = bus.history[-1][0] if bus.history else 0
        info = self._info(request.resource)
        return {"apiVersion": self._api_version(request.resource),
                "kind": f"{info.kind or 'Object'}List",
                "metadata": {"resourceVersion": str(rv)}, "items": items}

    async def _serve_watch(self, request: kmock.Request) -> Any:
        # KMock's own watch dumps the objects, then subscribes: a write in between is lost
        # (kopf then never sees its finalizer land). Here the snapshot and the subscription are
        # atomic, and a watch with ?resourceVersion= replays what happened since.
        yield b""
        bus = self._bus(request)
        since = request.params.get("resourceVersion", "")
        async with self._lock:
            marker = await bus.mark()
            if since.isdigit() and int(since) > 0:
                backlog = [event for rv, event in bus.history if rv > int(since)]
            else:
                backlog = [{"type": "ADDED", "object": obj} for obj in self._current(request)]
        try:
            for event in backlog:
                if self._selects(request, event["object"]):
                    yield event
            async for event in bus.stream(since=marker):
                if self._selects(request, event["object"]):
                    yield event
        finally:
            await bus.unmark(marker)

    def _admit_create(self, request: kmock.Request) -> None:
        info = self._info(request.resource)
        if info is not None and info.kind:  # kopf posts its Events without them
            request.data.setdefault("apiVersion", self._api_version(request.resource))
            request.data.setdefault("kind", info.kind)
        meta = request.data.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)
        if request.namespace and not meta.get("namespace"):
            meta["namespace"] = request.namespace
        meta.update({"uid": str(uuid.uuid4()), "creationTimestamp": _now(), "generation": 1})
        if self._has_status(request):
            request.data.pop("status", None)

    def _admit_update(self, request: kmock.Request) -> None:
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return  # KMock answers 404 itself
        current = self.objects[key].raw
        data = request.data
        if isinstance(data, list):  # JSON patch (kopf's finalizers): honour its `test` ops
            try:
                patched = jsonpatch.apply_patch(copy.deepcopy(current), data)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
                raise kmock.KubernetesError(
                    status=422, reason="Invalid", message=f"the JSON patch failed: {e}") from e
        elif isinstance(data, dict):
            if self._has_status(request):
                if request.subresource == "status":
                    for k in [k for k in data if k != "status"]:
                        del data[k]
                else:
                    data.pop("status", None)
            patched = _merge_patch(current, data)
        else:
            return
        if request.subresource is None and patched.get("spec") != current.get("spec"):
            generation = int(current.get("metadata", {}).get("generation", 1)) + 1
            if isinstance(data, list):
                data.append({"op": "add", "path": "/metadata/generation", "value": generation})
            else:
                if not isinstance(data.get("metadata"), dict):
                    data["metadata"] = {}
                data["metadata"]["generation"] = generation


class KubeApi:
    """An `ApiServerEmulator` served over real HTTP from a background thread."""

    def __init__(self, resources: dict[str, dict[str, Any]] | None = None) -> None:
        self.resources = {**BUILTIN_RESOURCES, **(resources or crd_resources())}
        self.url = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="kmock", daemon=True)

    def start(self) -> KubeApi:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("KMock did not start within 30s")
        if self._error is not None:
            raise RuntimeError("KMock failed to start") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def __enter__(self) -> KubeApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as e:  # surfaced by start()
            self._error = e
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with ApiServerEmulator() as emulator, kmock.Server(emulator) as server:
            for key, info in self.resources.items():
                emulator.resources[key] = info
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    # -- reading over HTTP (what any client sees) -------------------------------------------
    def get_json(self, path: str) -> Any:
        """GET a path; None on 404."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def events(self, namespace: str = "default") -> list[dict[str, Any]]:
        body = self.get_json(f"/api/v1/namespaces/{namespace}/events")
        return list(body["items"]) if body else []


def fetch_kubectl() -> Path:
    """The real kubectl binary, fetched by scripts/fetch-tools.sh into .tools/ if needed.

    Raises RuntimeError (the tests fail, they do not skip) when it cannot be had.
    """
    res = subprocess.run(["bash", str(FETCH_TOOLS)], capture_output=True, text=True, timeout=600,
                         cwd=REPO)
    if res.returncode != 0:
        raise RuntimeError(f"scripts/fetch-tools.sh failed:\n{res.stdout}\n{res.stderr}")
    paths = [Path(line) for line in res.stdout.splitlines() if line.endswith("/kubectl")]
    if not paths or not os.access(paths[0], os.X_OK):
        raise RuntimeError(f"scripts/fetch-tools.sh printed no kubectl:\n{res.stdout}")
    return paths[0]


class KubectlError(RuntimeError):
    pass


class Kubectl:
    """`kubectl --server=<KMock>` with a private (empty) kubeconfig and discovery cache."""

    def __init__(self, binary: Path, server: str, workdir: Path, namespace: str = "default"):
        workdir.mkdir(parents=True, exist_ok=True)
        self.base = [str(binary), f"--server={server}", f"--cache-dir={workdir / 'cache'}",
                     "--request-timeout=30s", f"--namespace={namespace}"]
        self.env = {**os.environ, "KUBECONFIG": str(workdir / "kubeconfig"),
                    "HOME": str(workdir)}

    def run(self, *args: str, stdin: str | None = None, timeout: float = 60,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([*self.base, *args], input=stdin, capture_output=True, text=True,
                             env=self.env, timeout=timeout)
        if check and res.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)} exited {res.returncode}:\n"
                               f"{res.stdout}\n{res.stderr}")
        return res

    def apply(self, manifest: Path | str) -> str:
        """Apply a file, or YAML text given as a str that is not a path."""
        if isinstance(manifest, Path):
            return self.run("apply", "--validate=false", "-f", str(manifest)).stdout
        return self.run("apply", "--validate=false", "-f", "-", stdin=manifest).stdout

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        res = self.run("get", kind, name, "-o", "json", check=False)
        if res.returncode != 0:
            if "NotFound" in res.stderr or "not found" in res.stderr:
                return None
            raise KubectlError(f"kubectl get {kind} {name}: {res.stderr}")
        obj: dict[str, Any] = json.loads(res.stdout)
        return obj

    def jsonpath(self, kind: str, name: str, path: str) -> str:
        return self.run("get", kind, name, "-o", f"jsonpath={path}").stdout

    def patch_merge(self, kind: str, name: str, patch: dict[str, Any]) -> str:
        return self.run("patch", kind, name, "--type=merge", "-p", json.dumps(patch)).stdout

    def delete(self, kind: str, name: str, *, wait: bool = True, timeout: float = 90) -> str:
        return self.run("delete", kind, name, f"--wait={str(wait).lower()}",
                        f"--timeout={int(timeout)}s", timeout=timeout + 30).stdout


def poll(cond: Callable[[], Any], timeout: float, what: str, *,
         interval: float = 0.2, alive: Callable[[], str | None] | None = None) -> Any:
    """Poll `cond` until truthy; fail naming `what` (and the last value) after `timeout`.

    `alive` is checked each round: a non-None answer (e.g. "operator exited 1") fails at once
    instead of waiting out the deadline.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = cond()
        if last:
            return last
        if alive is not None and (dead := alive()) is not None:
            raise AssertionError(f"{dead} while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)
