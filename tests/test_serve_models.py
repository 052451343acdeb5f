"""Model versions in the service: load, refuse broken bundles, roll back, swap under load."""

import json
import threading

import pytest
from fastapi.testclient import TestClient

from promolift.serve.app import create_app
from serve_helpers import copy_model, customers, payload, settings, write_plan


def _new_version(tmp_path, name="v2"):
    """The same models under another version string (the manifest is not checksummed)."""
    path = copy_model(tmp_path / name)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["bundle_version"] = f"test-{name}"
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


@pytest.fixture
def served(tmp_path):
    s, keys = settings(tmp_path, reasons=0)
    with TestClient(create_app(s)) as client:
        yield client, keys, tmp_path


def _admin(client, keys, path="/v1/admin/models", **body):
    return client.post(path, json=body or None, headers={"X-API-Key": keys["admin"]})


def _version(client, keys):
    return client.get("/v1/models", headers={"X-API-Key": keys["decide"]}).json()


def test_load_and_rollback(served):
    client, keys, tmp = served
    v1 = _version(client, keys)["current"]["version"]
    assert _admin(client, keys, path="/v1/admin/models/rollback").status_code == 409  # nothing before
    r = _admin(client, keys, model_dir=str(_new_version(tmp)))
    assert r.status_code == 201, r.text
    assert r.json()["current"]["version"] == "test-v2" and r.json()["previous"][0]["version"] == v1
    ids, X = customers()
    got = client.post("/v1/decisions", json=payload(X.iloc[:3], ids[:3]), headers={"X-API-Key": keys["decide"]})
    assert {d["model_version"] for d in got.json()["decisions"]} == {"test-v2"}
    r = _admin(client, keys, path="/v1/admin/models/rollback")
    assert r.status_code == 200 and r.json()["current"]["version"] == v1 and r.json()["previous"] == []
    assert f'promolift_model_info{{plan="",version="{v1}"}} 1.0' in client.get("/metrics").text


def test_broken_bundles_are_refused_and_the_running_model_stays(served):
    client, keys, tmp = served
    v1 = _version(client, keys)["current"]["version"]
    altered = _new_version(tmp, "altered")
    victim = next(p for p in sorted((altered / "models").rglob("*")) if p.is_file())
    victim.write_bytes(victim.read_bytes() + b" ")
    missing = _new_version(tmp, "missing")
    next(p for p in sorted((missing / "models").rglob("*")) if p.is_file()).unlink()
    other_plan = write_plan(tmp / "plan-v1")  # the plan of v1 is not the plan of v2
    for body, words in [({"model_dir": str(altered)}, "checksum"),
                        ({"model_dir": str(missing)}, "missing"),
                        ({"model_dir": str(tmp / "nowhere")}, "not a model bundle"),
                        ({"model_dir": str(_new_version(tmp, "v3")), "plan": str(other_plan)}, "plan made with")]:
        r = _admin(client, keys, **body)
        assert r.status_code == 422 and words in r.json()["detail"] and v1 in r.json()["detail"], r.text
        assert _version(client, keys)["current"]["version"] == v1
    assert 'promolift_model_loads_total{outcome="refused"} 4.0' in client.get("/metrics").text


def test_model_swaps_under_load_drop_no_request(served):
    client, keys, tmp = served
    v1 = _version(client, keys)["current"]["version"]
    v2 = _new_version(tmp)
    ids, X = customers()
    body = payload(X.iloc[:20], ids[:20])
    results, errors = [], []
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                r = client.post("/v1/decisions", json=body, headers={"X-API-Key": keys["decide"]})
                results.append((r.status_code, {d["model_version"] for d in r.json()["decisions"]}))
            except Exception as exc:  # noqa: BLE001 - any failure is a dropped request
                errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            assert _admin(client, keys, model_dir=str(v2)).status_code == 201
            assert _admin(client, keys, path="/v1/admin/models/rollback").status_code == 200
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors and len(results) >= 4
    assert all(status == 200 for status, _ in results)
    # every request was answered wholly by one version
    assert all(len(versions) == 1 and versions <= {v1, "test-v2"} for _, versions in results)
