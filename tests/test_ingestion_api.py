"""Ingestion over HTTP (issue 8), through real HTTP and real WebSockets against the app served by
uvicorn, a real redis-server, and `kubeingest embedder` / `kubeingest sink` processes."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_sync
import uvicorn
import yaml
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from kubeingest.services.api.app import create_app
from kubeingest.settings import ApiSettings
from tests.conftest import REPO, Procs, free_port, wait_for
from tests.kmock_harness import KubeApi
from tests.pipeline_helpers import all_points, worker_env

pytestmark = pytest.mark.integration

KEY_A, KEY_B = "key-of-acme", "key-of-globex"
OPTIONS = {"chunking": {"strategy": "characters", "size": 200, "overlap": 0},
           "embedding": {"batchSize": 4}, "maxInFlightBatches": 2}


class Server:
    def __init__(self, settings: ApiSettings) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws = f"ws://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        wait_for(lambda: self.server.started, 20, "uvicorn to start")
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)


@pytest.fixture
def api(redis_server: str, prefix: str) -> Iterator[Server]:
    settings = ApiSettings(
        redis_url=redis_server, stream_prefix=prefix, api_keys=f"acme:{KEY_A},globex:{KEY_B}",
        max_upload_files=20, max_upload_file_bytes=64 * 1024, max_request_bytes=4 << 20,
        events_interval_s=0.25,
    )
    with Server(settings) as server:
        yield server


def h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def keys_under(redis_url: str, prefix: str) -> list[bytes]:
    r = redis_sync.Redis.from_url(redis_url)
    try:
        return sorted(r.scan_iter(match=f"{prefix}:*", count=1000))
    finally:
        r.close()


def upload(py_docs: Path, glob: str) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (p.name, p.read_bytes(), "text/plain")) for p in sorted(py_docs.glob(glob))]


def start_workers(procs: Procs, redis_url: str, prefix: str, qdrant: Path) -> Any:
    env = worker_env(redis_url, prefix, KUBEINGEST_QDRANT_PATH=str(qdrant),
                     KUBEINGEST_BACKEND="hash")
    procs.start("embedder", env)
    return procs.start("sink", env)


def inline_spec(**over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "sources": [{"inline": {"documents": [{"id": "d1", "text": "hello world " * 50}]}}],
        "destination": {"collection": "kb"},
    }
    spec.update(over)
    return spec


async def collect(url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    async with connect(url, additional_headers=headers) as ws:
        return [json.loads(m) async for m in ws]


async def test_upload_progress_over_websocket_ends_in_succeeded_matching_qdrant(
    api: Server, redis_server: str, prefix: str, procs: Procs, tmp_path: Path, py_docs: Path
) -> None:
    qdrant = tmp_path / "qdrant"
    sink = start_workers(procs, redis_server, prefix, qdrant)
    files = upload(py_docs, "[a-f]*.rst.txt")
    async with httpx.AsyncClient(base_url=api.url, headers=h(KEY_A), timeout=30) as http:
        resp = await http.post("/api/v1/ingestions", files=files, data={
            "collection": "tutorial", "name": "tutorial-upload", "options": json.dumps(OPTIONS)})
        assert resp.status_code == 202, resp.text
        accepted = resp.json()
        job = accepted["id"]
        assert accepted["tenantId"] == "acme" and accepted["collection"] == "tutorial"
        events_url = f"{api.ws}{accepted['eventsUrl']}"

        # The first connection follows the job to the end; a second one joins mid-job.
        started = time.monotonic()
        follower = asyncio.create_task(collect(events_url, h(KEY_A)))
        async with connect(f"{events_url}?api_key={KEY_A}") as ws:
            first = json.loads(await ws.recv())
            assert first["type"] == "state" and first["id"] == job
            while first["chunks"]["embedded"] == 0:
                first = json.loads(await ws.recv())
        assert first["phase"] == "Running"
        async with connect(events_url, additional_headers=h(KEY_A)) as ws:
            again = json.loads(await ws.recv())
        assert again["type"] == "state", "a reconnect starts with the current state"
        assert again["phase"] in ("Running", "Succeeded")
        assert again["chunks"]["embedded"] >= first["chunks"]["embedded"] > 0

        events = await asyncio.wait_for(follower, 240)
        took = time.monotonic() - started
        status = (await http.get(f"/api/v1/ingestions/{job}")).json()
        sse = await http.get(accepted["eventsUrl"], headers={"Accept": "text/event-stream"})
        listing = (await http.get("/api/v1/ingestions")).json()

    assert events[0]["type"] == "state"
    assert [e["type"] for e in events[1:-1]] == ["progress"] * (len(events) - 2)
    final = events[-1]
    assert final["type"] == "final" and final["phase"] == "Succeeded", final
    embedded = [e["chunks"]["embedded"] for e in events]
    assert embedded == sorted(embedded), "progress never goes back"
    assert len(events) >= 3, "the job was followed, not only its end"
    assert len(events) <= took / 0.25 + 4, "events are throttled"
    def key(e: dict[str, Any]) -> tuple[Any, ...]:
        return e["phase"], e["documents"], e["chunks"], e["fanoutComplete"], e["errors"]

    assert [a for a, b in itertools.pairwise(events) if key(a) == key(b)] == [], \
        "an event only when something changed"
    total = final["chunks"]["total"]
    assert total > 500 and final["chunks"]["embedded"] == total
    assert final["chunks"]["failed"] == 0 and final["documents"]["total"] == len(files)
    assert final["progress"] == "100%" and final["completionTime"]
    conds = {c["type"]: c["status"] for c in final["conditions"]}
    assert conds == {"Succeeded": "True", "Reconciling": "False", "Stalled": "False"}

    # GET, SSE and the listing say the same.
    assert status["status"]["phase"] == "Succeeded"
    assert status["status"]["chunks"] == final["chunks"]
    assert sse.status_code == 200 and sse.headers["content-type"].startswith("text/event-stream")
    sse_events = [json.loads(line[6:]) for line in sse.text.splitlines()
                  if line.startswith("data: ")]
    assert [e["type"] for e in sse_events] == ["state", "final"]
    assert sse_events[-1]["chunks"] == final["chunks"]
    assert [i["id"] for i in listing["items"]] == [job]

    sink.send_signal(signal.SIGTERM)  # local mode locks its folder: let the sink release it
    assert sink.wait(30) == 0
    points = [p for p in all_points(qdrant, "tutorial") if p.payload["job_id"] == job]
    assert len(points) == total
    assert {p.payload["tenant_id"] for p in points} == {"acme"}
    # The progress keys are gone; the record keeps the final counts.
    assert [k.decode() for k in keys_under(redis_server, f"{prefix}:job:{job}")] == []


async def test_tenants_are_isolated_and_a_key_is_required(
    api: Server, redis_server: str, prefix: str
) -> None:
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        resp = await http.post("/api/v1/ingestions", json={"spec": inline_spec()},
                               headers=h(KEY_A))
        assert resp.status_code == 202, resp.text
        job = resp.json()["id"]
        own = await http.get(f"/api/v1/ingestions/{job}", headers=h(KEY_A))
        assert own.status_code == 200 and own.json()["tenantId"] == "acme"

        # Another tenant's key: the ingestion does not exist for it.
        for method in ("GET", "DELETE"):
            other = await http.request(method, f"/api/v1/ingestions/{job}", headers=h(KEY_B))
            assert other.status_code == 404, (method, other.text)
        assert (await http.get("/api/v1/ingestions", headers=h(KEY_B))).json()["items"] == []
        peek = await http.get("/api/v1/ingestions?tenant=acme", headers=h(KEY_B))
        assert peek.status_code == 403
        sse = await http.get(f"/api/v1/ingestions/{job}/events?api_key={KEY_B}")
        assert sse.status_code == 404
        with pytest.raises(InvalidStatus) as denied:
            await collect(f"{api.ws}/api/v1/ingestions/{job}/events", h(KEY_B))
        assert denied.value.response.status_code == 404
        # A spec naming another tenant is refused, and nothing is created.
        before = keys_under(redis_server, prefix)
        forged = await http.post("/api/v1/ingestions", headers=h(KEY_B),
                                 json={"spec": inline_spec(tenantId="acme")})
        assert forged.status_code == 403 and "acme" in forged.json()["detail"]
        assert keys_under(redis_server, prefix) == before

        # No key, or a wrong one: 401 everywhere.
        for method, url in [("POST", "/api/v1/ingestions"), ("GET", "/api/v1/ingestions"),
                            ("GET", f"/api/v1/ingestions/{job}"),
                            ("DELETE", f"/api/v1/ingestions/{job}"),
                            ("GET", f"/api/v1/ingestions/{job}/events")]:
            assert (await http.request(method, url)).status_code == 401, (method, url)
            wrong = await http.request(method, url, headers=h("nope"))
            assert wrong.status_code == 401, (method, url)
        with pytest.raises(InvalidStatus) as anonymous:
            await collect(f"{api.ws}/api/v1/ingestions/{job}/events", {})
        assert anonymous.value.response.status_code == 401

        # Paging over the tenant's own ingestions, newest first.
        more = [(await http.post("/api/v1/ingestions", json={"spec": inline_spec()},
                                 headers=h(KEY_A))).json()["id"] for _ in range(4)]
        seen, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await http.get("/api/v1/ingestions", params=params,
                                   headers=h(KEY_A))).json()
            assert len(page["items"]) <= 2
            seen += [i["id"] for i in page["items"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert seen == [*reversed(more), job]

        # The owner cancels: state and record are gone.
        assert (await http.delete(f"/api/v1/ingestions/{job}", headers=h(KEY_A))).status_code \
            == 204
        assert (await http.get(f"/api/v1/ingestions/{job}", headers=h(KEY_A))).status_code \
            == 404
    assert not [k for k in keys_under(redis_server, prefix) if job.encode() in k]


async def test_oversized_uploads_and_malformed_specs_leave_nothing_behind(
    api: Server, redis_server: str, prefix: str
) -> None:
    url = "/api/v1/ingestions"
    async with httpx.AsyncClient(base_url=api.url, headers=h(KEY_A), timeout=30) as http:
        big = await http.post(url, data={"collection": "kb"}, files=[
            ("files", ("ok.txt", b"fine text", "text/plain")),
            ("files", ("big.txt", b"x" * (64 * 1024 + 1), "text/plain"))])
        assert big.status_code == 413 and "files[1] (big.txt)" in big.json()["detail"]
        many = await http.post(url, data={"collection": "kb"}, files=[
            ("files", (f"d{i}.txt", b"text", "text/plain")) for i in range(21)])
        assert many.status_code == 413 and "at most 20" in many.json()["detail"]
        body = await http.post(url, json={"spec": inline_spec(), "pad": "x" * (5 << 20)})
        assert body.status_code == 413

        cases = {
            "spec.destination": {"spec": inline_spec(destination=None)},
            "spec.chunking.size": {"spec": inline_spec(chunking={"size": "big"})},
            "spec.sources[0].path": {"spec": inline_spec(sources=[{"path": {"path": "/etc"}}])},
            "spec: required": {"name": "no-spec"},
            "metadata.name": {"metadata": {"name": "Not A Name"}, "spec": inline_spec()},
        }
        for field, payload in cases.items():
            resp = await http.post(url, json=payload)
            assert resp.status_code == 422 and field in resp.json()["detail"], (field, resp.text)
        garbled = await http.post(url, content=b"{not json",
                                  headers={"Content-Type": "application/json"})
        assert garbled.status_code == 422 and "not valid JSON" in garbled.json()["detail"]
        bad_options = await http.post(url, data={"collection": "kb", "options": json.dumps(
            {"chunking": {"overlap": 999, "size": 100}})},
            files=[("files", ("a.txt", b"text", "text/plain"))])
        assert bad_options.status_code == 422
        assert "spec.chunking" in bad_options.json()["detail"]
        binary = await http.post(url, data={"collection": "kb"},
                                 files=[("files", ("a.txt", b"\xff\xfe\x00bad", "text/plain"))])
        assert binary.status_code == 422 and "files[0] (a.txt)" in binary.json()["detail"]
        assert (await http.post(url, content=b"x", headers={"Content-Type": "text/plain"})
                ).status_code == 415
    assert keys_under(redis_server, prefix) == [], "nothing half-created"


def test_submit_command_watches_the_job_to_the_end(
    api: Server, redis_server: str, prefix: str, procs: Procs, tmp_path: Path
) -> None:
    sink = start_workers(procs, redis_server, prefix, tmp_path / "qdrant")
    manifest = tmp_path / "job.yaml"
    manifest.write_text(yaml.safe_dump({
        "apiVersion": "kubeingest.io/v1alpha1", "kind": "IngestionJob",
        "metadata": {"name": "submitted"},
        "spec": {**inline_spec(tenantId="acme", sources=[{"inline": {"documents": [
            {"id": f"d{i}", "text": f"document {i} " * 200} for i in range(5)]}}]), **OPTIONS,
            "deletionPolicy": "Delete"},
    }))
    env = {**os.environ, "KUBEINGEST_API_KEY": KEY_A}
    res = subprocess.run(
        [sys.executable, "-m", "kubeingest.cli", "submit", str(manifest), "--api", api.url,
         "--watch"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr + res.stdout
    assert "accepted (submitted, tenant acme, collection 'kb')" in res.stdout
    assert "Succeeded:" in res.stdout and "chunks stored" in res.stdout
    assert "100.0%" in res.stderr  # the same progress bar as `kubeingest run`
    job = res.stdout.split()[1]
    with httpx.Client(base_url=api.url, headers=h(KEY_A), timeout=60) as http:
        status = http.get(f"/api/v1/ingestions/{job}").json()["status"]
        # deletionPolicy Delete: cancelling (here: deleting a finished one) removes its points.
        assert http.delete(f"/api/v1/ingestions/{job}").status_code == 204
    sink.send_signal(signal.SIGTERM)
    assert sink.wait(30) == 0
    assert status["chunks"]["embedded"] == status["chunks"]["total"] > 0
    assert [p for p in all_points(tmp_path / "qdrant", "kb") if p.payload["job_id"] == job] == []
    assert keys_under(redis_server, f"{prefix}:job:{job}") == []

    rejected = subprocess.run(
        [sys.executable, "-m", "kubeingest.cli", "submit", str(manifest), "--api", api.url],
        env={**env, "KUBEINGEST_API_KEY": KEY_B}, cwd=REPO, capture_output=True, text=True,
        timeout=60,
    )
    assert rejected.returncode == 2 and "HTTP 403" in rejected.stderr


# -- cluster mode: the API creates IngestionJob resources (KMock as the API server) -----------
CR_PATH = "/apis/kubeingest.io/v1alpha1/namespaces/{ns}/ingestionjobs/{name}"


def patch_status(kube: KubeApi, name: str, status: dict[str, Any], ns: str = "jobs") -> None:
    """What the operator does: a merge patch of the status subresource."""
    req = urllib.request.Request(
        kube.url + CR_PATH.format(ns=ns, name=name) + "/status", method="PATCH",
        data=json.dumps({"status": status}).encode(),
        headers={"Content-Type": "application/merge-patch+json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


async def test_cluster_mode_creates_the_resource_and_reads_its_status(
    redis_server: str, prefix: str
) -> None:
    with KubeApi() as kube, Server(ApiSettings(
        redis_url=redis_server, stream_prefix=prefix, api_keys=f"acme:{KEY_A},globex:{KEY_B}",
        ingest_mode="cluster", kube_api_url=kube.url, kube_namespace="jobs",
        events_interval_s=0.1,
    )) as api:
        spec = inline_spec(chunking={"strategy": "characters", "size": 64, "overlap": 0})
        async with httpx.AsyncClient(base_url=api.url, headers=h(KEY_A), timeout=30) as http:
            resp = await http.post("/api/v1/ingestions", json={
                "apiVersion": "kubeingest.io/v1alpha1", "kind": "IngestionJob",
                "metadata": {"name": "kb-job"}, "spec": spec})
            assert resp.status_code == 202, resp.text
            assert resp.json()["id"] == "kb-job"
            cr = await asyncio.to_thread(kube.get_json, CR_PATH.format(ns="jobs", name="kb-job"))
            assert cr["kind"] == "IngestionJob" and cr["spec"] == {**spec, "tenantId": "acme"}

            again = await http.post("/api/v1/ingestions", json={
                "metadata": {"name": "kb-job"}, "spec": spec})
            assert again.status_code == 409

            running = {"phase": "Running", "message": "fanning out",
                       "chunks": {"total": 10, "published": 10, "embedded": 4, "failed": 0},
                       "documents": {"total": 1, "failed": 0}, "progress": "40%"}
            await asyncio.to_thread(patch_status, kube, "kb-job", running)
            got = (await http.get("/api/v1/ingestions/kb-job")).json()
            assert got["tenantId"] == "acme" and got["collection"] == "kb"
            cr = await asyncio.to_thread(kube.get_json, CR_PATH.format(ns="jobs", name="kb-job"))
            assert got["status"] == cr["status"]
            assert (await http.get("/api/v1/ingestions/kb-job", headers=h(KEY_B))).status_code \
                == 404
            assert [i["id"] for i in (await http.get("/api/v1/ingestions")).json()["items"]] \
                == ["kb-job"]
            assert (await http.get("/api/v1/ingestions", headers=h(KEY_B))).json()["items"] == []

            async with connect(f"{api.ws}/api/v1/ingestions/kb-job/events",
                               additional_headers=h(KEY_A)) as ws:
                first = json.loads(await ws.recv())
                assert first["type"] == "state" and first["chunks"]["embedded"] == 4
                done = {**running, "phase": "Succeeded", "progress": "100%",
                        "chunks": {**running["chunks"], "embedded": 10}}
                await asyncio.to_thread(patch_status, kube, "kb-job", done)
                rest = [json.loads(m) async for m in ws]
            assert rest[-1]["type"] == "final" and rest[-1]["phase"] == "Succeeded"
            assert rest[-1]["chunks"]["embedded"] == 10

            assert (await http.delete("/api/v1/ingestions/kb-job")).status_code == 204
            assert await asyncio.to_thread(
                kube.get_json, CR_PATH.format(ns="jobs", name="kb-job")) is None


def test_chart_grants_the_api_exactly_what_cluster_mode_calls() -> None:
    from tests.test_chart import kinds, one, render

    assert "rel-kubeingest-api" not in kinds(render(sets=("api.enabled=true",)), "Role")
    docs = render(sets=("api.enabled=true", "api.ingestMode=cluster", "api.jobsNamespace=jobs"))
    role = kinds(docs, "Role")["rel-kubeingest-api"]
    assert role["metadata"]["namespace"] == "jobs"
    assert role["rules"] == [{"apiGroups": ["kubeingest.io"], "resources": ["ingestionjobs"],
                              "verbs": ["create", "get", "list", "delete"]}]
    binding = kinds(docs, "RoleBinding")["rel-kubeingest-api"]
    assert binding["roleRef"]["name"] == "rel-kubeingest-api"
    sa = binding["subjects"][0]
    assert sa["kind"] == "ServiceAccount" and sa["namespace"] == "ingest"
    pod = one(docs, "Deployment", "rel-kubeingest-api")["spec"]["template"]["spec"]
    assert sa["name"] == pod["serviceAccountName"]
    assert pod["automountServiceAccountToken"] is True  # the API must reach the API server


def test_docs_list_every_route_of_the_openapi_schema() -> None:
    app = create_app(ApiSettings(redis_url="redis://127.0.0.1:1/0"))
    table = (REPO / "docs" / "api.md").read_text()
    paths = app.openapi()["paths"]
    for path, methods in paths.items():
        for method in methods:
            assert f"| `{method.upper()}` | `{path}` |" in table, (method, path)
    assert "| `WS` | `/api/v1/ingestions/{job_id}/events` |" in table
    post = paths["/api/v1/ingestions"]["post"]
    assert set(post["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert {"202", "401", "403", "413", "422"} <= set(post["responses"])


async def test_a_restarted_api_resumes_the_fan_out_and_the_job_completes_exactly(
    redis_server: str, prefix: str, procs: Procs, tmp_path: Path, py_docs: Path
) -> None:
    def settings() -> ApiSettings:
        return ApiSettings(redis_url=redis_server, stream_prefix=prefix,
                           api_keys=f"acme:{KEY_A}", max_upload_file_bytes=64 * 1024)

    files = upload(py_docs, "[a-c]*.rst.txt")
    with Server(settings()) as first:  # no workers yet: backpressure holds the fan-out
        async with httpx.AsyncClient(base_url=first.url, headers=h(KEY_A), timeout=30) as http:
            resp = await http.post("/api/v1/ingestions", files=files, data={
                "collection": "resumed", "options": json.dumps(OPTIONS)})
            assert resp.status_code == 202, resp.text
            job = resp.json()["id"]

            async def published() -> int:
                s = (await http.get(f"/api/v1/ingestions/{job}")).json()["status"]
                return int(s["chunks"]["published"])

            deadline = time.monotonic() + 30
            while await published() == 0:
                assert time.monotonic() < deadline, "the fan-out never started"
                await asyncio.sleep(0.1)
    # The first API process is gone mid fan-out; a new one takes the job over.
    qdrant = tmp_path / "qdrant"
    sink = start_workers(procs, redis_server, prefix, qdrant)
    with Server(settings()) as second:
        events = await asyncio.wait_for(collect(
            f"{second.ws}/api/v1/ingestions/{job}/events", h(KEY_A)), 180)
    final = events[-1]
    assert final["type"] == "final" and final["phase"] == "Succeeded", final
    assert final["chunks"]["embedded"] == final["chunks"]["total"] > 100
    assert final["documents"]["total"] == len(files)
    cond = next(c for c in final["conditions"] if c["type"] == "Succeeded")
    assert cond["status"] == "True"
    sink.send_signal(signal.SIGTERM)
    assert sink.wait(30) == 0
    points = [p for p in all_points(qdrant, "resumed") if p.payload["job_id"] == job]
    assert len(points) == final["chunks"]["total"]


async def test_a_cancel_on_another_replica_stops_the_fan_out_and_leaves_nothing(
    redis_server: str, prefix: str, py_docs: Path
) -> None:
    def settings() -> ApiSettings:
        return ApiSettings(redis_url=redis_server, stream_prefix=prefix,
                           api_keys=f"acme:{KEY_A}", max_upload_file_bytes=64 * 1024)

    with Server(settings()) as a, Server(settings()) as b:
        async with httpx.AsyncClient(headers=h(KEY_A), timeout=30) as http:
            resp = await http.post(f"{a.url}/api/v1/ingestions", files=upload(py_docs, "c*"),
                                   data={"collection": "kb", "options": json.dumps(OPTIONS)})
            job = resp.json()["id"]
            status = (await http.get(f"{b.url}/api/v1/ingestions/{job}")).json()["status"]
            assert status["phase"] in ("Pending", "Running")
            # No workers: A's fan-out waits on backpressure; B cancels it.
            assert (await http.delete(f"{b.url}/api/v1/ingestions/{job}")).status_code == 204
            assert (await http.get(f"{a.url}/api/v1/ingestions/{job}")).status_code == 404
            wait_for(lambda: not [k for k in keys_under(redis_server, prefix)
                                  if job.encode() in k], 10, "A to stop and sweep")
            await asyncio.sleep(1.5)  # nothing comes back
            assert not [k for k in keys_under(redis_server, prefix) if job.encode() in k]
