"""Crashes: a worker SIGKILLed mid-job, a worker SIGTERMed mid-batch, Redis killed and restarted (AOF)."""

from __future__ import annotations

import json
import signal

import redis

from service.auth import create_key
from service.keys import Keys
from service.testing import TinyConfig, TinyEngine
from tests.service.conftest import (
    RedisServer,
    make_settings,
    submit,
    vocal_bytes,
    wait_for,
    wait_status,
    worker_subprocess,
)


def _slow_model_dir(tmp_path, slow_down_s: float):
    model_dir = tmp_path / "model"
    model_dir.mkdir(exist_ok=True)
    (model_dir / "tiny_engine.json").write_text(json.dumps({"dim": 16, "layers": 1, "slow_down_s": slow_down_s}))
    return model_dir


def test_sigkilled_worker_job_is_completed_by_another_worker(
    api, api_key, settings, workers, engine, rclient, keys, tmp_path
):
    job = submit(api, api_key, vocal_bytes(tmp_path, seconds=2.0)).json()
    victim = worker_subprocess(settings, _slow_model_dir(tmp_path, 0.05), name="victim")  # ~5 s for this job
    try:
        running = wait_status(api, job["id"], api_key, {"running"}, timeout=60)
        assert running["attempts"] == 1
        wait_for(lambda: api.get(f"/v1/jobs/{job['id']}", headers=api_key).json()["progress"] > 0, timeout=30)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert rclient.xpending(keys.queue, "workers")["consumers"] == [{"name": "victim", "pending": 1}]

    rescuer = workers.start(settings, engine, name="rescuer")  # claim_min_idle_ms=800 in the test settings
    done = wait_status(api, job["id"], api_key, {"succeeded", "failed"}, timeout=30)
    assert done["status"] == "succeeded" and done["attempts"] == 2
    assert rclient.hget(keys.job(job["id"]), "worker") == rescuer.name
    assert rclient.xpending(keys.queue, "workers")["pending"] == 0
    assert api.get(f"/v1/jobs/{job['id']}/mix", headers=api_key).status_code == 200
    assert not (settings.storage_dir / "jobs" / job["id"] / "a1").exists()  # the dead attempt left nothing


def test_sigterm_finishes_the_running_job_then_exits(api, api_key, settings, tmp_path):
    ids = [submit(api, api_key, vocal_bytes(tmp_path, seconds=1.0, seed=i)).json()["id"] for i in range(2)]
    proc = worker_subprocess(settings, _slow_model_dir(tmp_path, 0.02), name="terminated")  # ~1 s per batch
    try:
        wait_status(api, ids[0], api_key, {"running"}, timeout=60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    output = proc.stdout.read()
    assert "SIGTERM received, finishing the current batch" in output
    # Both jobs were read as one batch before the signal, and that batch was finished.
    for job_id in ids:
        assert api.get(f"/v1/jobs/{job_id}", headers=api_key).json()["status"] == "succeeded"
    rclient = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    assert rclient.zscore(Keys(settings.redis_prefix).workers, "terminated") is None  # said goodbye


def test_jobs_and_queue_survive_a_redis_restart(tmp_path, client_factory, workers):
    server = RedisServer(tmp_path / "redis-aof")
    server.start()
    try:
        settings = make_settings(server.url, tmp_path / "storage")
        keys = Keys(settings.redis_prefix)
        client = redis.Redis.from_url(server.url, decode_responses=True)
        headers = {"Authorization": f"Bearer {create_key(client, keys, 'durable')[0]}"}
        api = client_factory(settings)
        ids = [submit(api, headers, vocal_bytes(tmp_path, seed=i)).json()["id"] for i in range(3)]

        server.kill()  # SIGKILL: no shutdown save, only what the AOF already holds
        server.start()
        assert client.xlen(keys.queue) == 3
        assert [client.hget(keys.job(i), "status") for i in ids] == ["queued"] * 3

        engine = TinyEngine(TinyConfig(dim=16, layers=1))
        workers.start(settings, engine)
        for job_id in ids:  # the API's pooled connections died with the server and must reconnect
            assert wait_status(api, job_id, headers, {"succeeded", "failed"})["status"] == "succeeded"
        client.close()
    finally:
        server.kill()


def test_a_busy_worker_keeps_its_job(api, api_key, settings, workers, engine, rclient, keys, tmp_path):
    """A job running longer than claim_min_idle_ms is not taken over while its worker's heartbeat lives."""
    slow = TinyEngine(TinyConfig(dim=16, layers=1, slow_down_s=0.02))  # 100 steps: ~2 s > 0.8 s min idle
    job = submit(api, api_key, vocal_bytes(tmp_path, seconds=2.0)).json()
    busy = workers.start(settings, slow, name="busy")
    wait_status(api, job["id"], api_key, {"running"})
    workers.start(settings, engine, name="idle")  # polls XAUTOCLAIM the whole time
    done = wait_status(api, job["id"], api_key, {"succeeded", "failed"}, timeout=30)
    assert done["status"] == "succeeded" and done["attempts"] == 1
    assert rclient.hget(keys.job(job["id"]), "worker") == busy.name
