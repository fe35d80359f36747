"""Redis outages (issue 12, items 2 and 6), against a redis-server of the test's own that it kills (SIGKILL)
and restarts on the same port and AOF.

* The API answers 503 + Retry-After during the outage (it answered 500), and an upload that was received
  while Redis went away is never orphaned.
* A worker generating through a Redis blip finishes its jobs without spending an attempt (a failed progress
  write used to fail the engine call and leave the jobs to a reclaim ~60 s later).
* A worker takes up entries pending to its own name at once, not only after they look idle to XAUTOCLAIM.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from service.api import jobs as jobs_api
from service.auth import create_key
from service.config import Settings
from service.keys import GROUP, Keys
from service.testing import TinyConfig, TinyEngine
from service.worker import Worker
from tests.service.conftest import RedisServer, make_settings, submit, vocal_bytes, wait_for, wait_status


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis-own")
    server.start()
    yield server
    server.kill()


def _setup(server: RedisServer, tmp_path: Path, **overrides: object) -> tuple[Settings, redis.Redis, dict]:
    settings = make_settings(server.url, tmp_path / "storage", **overrides)
    client = redis.Redis.from_url(server.url, decode_responses=True)
    headers = {"Authorization": f"Bearer {create_key(client, Keys(settings.redis_prefix), 'outage')[0]}"}
    return settings, client, headers


def _stored(settings: Settings) -> tuple[list[str], list[str]]:
    return (
        sorted(p.name for p in (settings.storage_dir / "incoming").iterdir()),
        sorted(p.name for p in (settings.storage_dir / "jobs").iterdir()),
    )


def test_api_answers_503_with_retry_after_while_redis_is_down(own_redis, tmp_path, client_factory):
    settings, client, headers = _setup(own_redis, tmp_path, redis_retry_after_s=7)
    api = client_factory(settings)
    job = submit(api, headers, vocal_bytes(tmp_path)).json()

    own_redis.kill()
    answers = [
        api.get(f"/v1/jobs/{job['id']}", headers=headers),
        api.head(f"/v1/jobs/{job['id']}", headers=headers),
        api.get(f"/v1/jobs/{job['id']}/mix", headers=headers),
        api.delete(f"/v1/jobs/{job['id']}", headers=headers),
        api.get("/v1/batches/" + "0" * 32, headers=headers),
        submit(api, headers, vocal_bytes(tmp_path, seed=1)),
        api.post("/v1/batches", headers=headers, files={"files": ("a.wav", vocal_bytes(tmp_path, seed=2))}),
    ]
    for r in answers:
        assert r.status_code == 503, (r.request.method, r.request.url, r.text)
        assert r.headers["retry-after"] == "7"
    assert "the job store is unavailable" in answers[0].json()["detail"]
    assert api.get("/readyz").status_code == 503
    assert _stored(settings) == ([], [job["id"]])  # nothing received during the outage was kept

    own_redis.start()  # same port, same AOF: the pool reconnects
    r = api.get(f"/v1/jobs/{job['id']}", headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "queued"
    client.close()


def test_upload_received_as_redis_goes_away_is_not_orphaned(own_redis, tmp_path, client_factory, monkeypatch):
    settings, client, headers = _setup(own_redis, tmp_path)
    api = client_factory(settings)
    real_check = jobs_api.check_vocal

    def check_then_lose_redis(*args, **kwargs):
        info = real_check(*args, **kwargs)
        own_redis.kill()  # the upload is on disk and valid; the enqueue will find Redis gone
        return info

    monkeypatch.setattr(jobs_api, "check_vocal", check_then_lose_redis)
    r = submit(api, headers, vocal_bytes(tmp_path))
    assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
    incoming, job_dirs = _stored(settings)
    assert incoming == []
    own_redis.start()
    keys = Keys(settings.redis_prefix)
    assert list(client.scan_iter(keys.job("*"))) == [] and client.xlen(keys.queue) == 0  # never enqueued
    # Redis could not confirm that the job was not enqueued, so its input waited for the orphan sweep.
    worker = Worker(settings, engine=TinyEngine(TinyConfig(dim=16, layers=1)), client=client, name="sweeper")
    assert worker.sweep_orphans(max_age_s=0) == len(job_dirs)
    assert _stored(settings) == ([], [])
    client.close()


def test_redis_blip_during_generation_costs_no_attempt(own_redis, tmp_path, client_factory, workers):
    # claim_min_idle_ms far beyond the test's timeout: the job must not need a reclaim to finish.
    settings, client, headers = _setup(own_redis, tmp_path, claim_min_idle_ms=60_000)
    api = client_factory(settings)
    job_id = submit(api, headers, vocal_bytes(tmp_path, seconds=3.0)).json()["id"]
    slow = TinyEngine(TinyConfig(dim=16, layers=1, slow_down_s=0.03))  # 150 steps: ~4.5 s of generation
    workers.start(settings, slow, name="blip")
    key = Keys(settings.redis_prefix).job(job_id)
    wait_for(lambda: float(client.hget(key, "progress") or 0) > 0, timeout=30)

    own_redis.kill()
    time.sleep(1.5)  # progress reports fail meanwhile (the client's own retries give up after ~0.4 s)
    own_redis.start()

    def finished() -> dict | None:
        try:
            data = client.hgetall(key)
        except redis.ConnectionError:
            return None
        return data if data.get("status") in ("succeeded", "failed") else None

    done = wait_for(finished, timeout=20)
    assert done["status"] == "succeeded" and done["attempts"] == "1", done
    assert api.get(f"/v1/jobs/{job_id}/mix", headers=headers).status_code == 200
    client.close()


def test_worker_takes_up_entries_pending_to_its_own_name(api, api_key, settings_factory, client_factory, workers):
    settings = settings_factory(claim_min_idle_ms=60_000, auth="open")
    api = client_factory(settings)
    job_id = submit(api, {}, vocal_bytes(settings.storage_dir.parent / "src")).json()["id"]
    keys, client = Keys(settings.redis_prefix), redis.Redis.from_url(settings.redis_url, decode_responses=True)
    # A previous process named "w1" read the entry and died (or dropped its batch on a Redis error).
    client.xgroup_create(keys.queue, GROUP, id="0", mkstream=True)
    assert client.xreadgroup(GROUP, "w1", {keys.queue: ">"}, count=10)
    workers.start(settings, TinyEngine(TinyConfig(dim=16, layers=1)), name="w1")
    done = wait_status(api, job_id, {}, {"succeeded", "failed"}, timeout=10)  # not after 60 s of idleness
    assert done["status"] == "succeeded" and done["attempts"] == 1
    assert client.xpending(keys.queue, GROUP)["pending"] == 0
    client.close()
