"""API keys, ownership, rate limit, concurrent-job quota and the queue bound."""

from __future__ import annotations

import hashlib

import pytest

from core import cli
from service.auth import create_key, revoke_key
from service.keys import Keys
from tests.service.conftest import submit, vocal_bytes, wait_status


def test_requests_without_a_valid_key_are_401(api, tmp_path):
    data = vocal_bytes(tmp_path)
    assert submit(api, {}, data).status_code == 401
    assert submit(api, {"Authorization": "Bearer ss_nope"}, data).status_code == 401
    assert api.get("/v1/jobs/" + "0" * 32, headers={"X-API-Key": "wrong"}).status_code == 401
    assert api.get("/healthz").status_code == 200  # probes need no key


def test_keys_are_stored_hashed_and_can_be_revoked(api, rclient, keys, tmp_path):
    key, owner = create_key(rclient, keys, "bob")
    stored = rclient.keys(keys.prefix + "apikey:*")
    assert stored == [keys.apikey(hashlib.sha256(key.encode()).hexdigest())]
    assert all(key not in str(rclient.hgetall(k)) for k in stored)  # the key itself is nowhere in Redis
    data = vocal_bytes(tmp_path)
    assert submit(api, {"X-API-Key": key}, data).status_code == 202  # the alternative header works too
    assert revoke_key(rclient, keys, owner)
    assert submit(api, {"X-API-Key": key}, data).status_code == 401


def test_jobs_are_visible_only_to_their_owner(api, api_key, rclient, keys, tmp_path):
    other = {"Authorization": f"Bearer {create_key(rclient, keys, 'mallory')[0]}"}
    job = submit(api, api_key, vocal_bytes(tmp_path)).json()
    for method, path in [("GET", ""), ("GET", "/mix"), ("GET", "/accompaniment"), ("DELETE", "")]:
        r = api.request(method, f"/v1/jobs/{job['id']}{path}", headers=other)
        assert r.status_code == 404, (method, path)
        assert r.json()["detail"] == "no such job"  # same answer as for a job that does not exist
    assert api.get(f"/v1/jobs/{job['id']}", headers=api_key).json()["status"] == "queued"  # untouched
    batch = api.post("/v1/batches", headers=api_key, files=[("files", ("a.wav", vocal_bytes(tmp_path)))]).json()
    assert api.get(f"/v1/batches/{batch['id']}", headers=other).status_code == 404
    assert api.get(f"/v1/batches/{batch['id']}", headers=api_key).status_code == 200


def test_open_mode_needs_no_key(settings_factory, client_factory, tmp_path):
    api = client_factory(settings_factory(auth="open"))
    job = submit(api, {}, vocal_bytes(tmp_path))
    assert job.status_code == 202
    assert api.get(f"/v1/jobs/{job.json()['id']}").status_code == 200


def test_rate_limit_answers_429_with_retry_after(settings_factory, client_factory, rclient):
    settings = settings_factory(rate_limit_per_s=0.5, rate_limit_burst=3)
    api = client_factory(settings)
    key = {"Authorization": f"Bearer {create_key(rclient, Keys(settings.redis_prefix), 'x')[0]}"}
    codes = [api.get("/v1/jobs/" + "0" * 32, headers=key).status_code for _ in range(4)]
    assert codes == [404, 404, 404, 429]
    r = api.get("/v1/jobs/" + "0" * 32, headers=key)
    assert r.status_code == 429 and int(r.headers["retry-after"]) in (1, 2)


def test_concurrent_job_quota(settings_factory, client_factory, rclient, workers, engine, tmp_path):
    settings = settings_factory(max_active_jobs=2)
    api = client_factory(settings)
    key = {"Authorization": f"Bearer {create_key(rclient, Keys(settings.redis_prefix), 'q')[0]}"}
    other = {"Authorization": f"Bearer {create_key(rclient, Keys(settings.redis_prefix), 'r')[0]}"}
    data = vocal_bytes(tmp_path)
    first, second = submit(api, key, data).json(), submit(api, key, data).json()
    r = submit(api, key, data)
    assert r.status_code == 429 and r.headers["retry-after"] == str(settings.quota_retry_after_s)
    assert "too many active jobs (2 queued or running" in r.json()["detail"]
    assert submit(api, other, data).status_code == 202  # the quota is per key
    # A batch must fit entirely.
    files = [("files", (f"{i}.wav", data)) for i in range(3)]
    assert api.post("/v1/batches", headers=other, files=files).status_code == 429
    workers.start(settings, engine)
    for job in (first, second):
        wait_status(api, job["id"], key, {"succeeded"})
    assert submit(api, key, data).status_code == 202  # finished jobs free their slots


def test_queue_bound_answers_503(settings_factory, client_factory, rclient, tmp_path):
    settings = settings_factory(max_queue_length=2)
    api = client_factory(settings)
    keys = Keys(settings.redis_prefix)
    a = {"Authorization": f"Bearer {create_key(rclient, keys, 'a')[0]}"}
    b = {"Authorization": f"Bearer {create_key(rclient, keys, 'b')[0]}"}
    data = vocal_bytes(tmp_path)
    assert submit(api, a, data).status_code == 202
    assert submit(api, b, data).status_code == 202
    r = submit(api, a, data)
    assert r.status_code == 503 and r.headers["retry-after"] == str(settings.queue_full_retry_after_s)
    assert rclient.xlen(keys.queue) == 2  # nothing half-enqueued
    assert list((settings.storage_dir / "incoming").iterdir()) == []
    assert len(list((settings.storage_dir / "jobs").iterdir())) == 2


def test_create_key_command(settings, api, monkeypatch, capsys, tmp_path):
    assert "service.cli" in cli.COMMAND_MODULES
    monkeypatch.setenv("SINGSONG_REDIS_URL", settings.redis_url)
    monkeypatch.setenv("SINGSONG_REDIS_PREFIX", settings.redis_prefix)
    assert cli.main(["service", "create-key", "--name", "carol"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("ss_")
    assert submit(api, {"Authorization": f"Bearer {key}"}, vocal_bytes(tmp_path)).status_code == 202
    assert cli.main(["service", "list-keys"]) == 0
    owner, name = capsys.readouterr().out.split()
    assert name == "carol"
    assert cli.main(["service", "revoke-key", owner]) == 0
    assert cli.main(["service", "revoke-key", owner]) == 2  # unknown now: a one-line error, exit status 2
    with pytest.raises(SystemExit):
        cli.main(["service", "create-key"])  # --name is required
