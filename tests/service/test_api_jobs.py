"""Job lifecycle through the REST API with a real worker (thread) and the tiny engine."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from service.testing import TinyConfig, TinyEngine
from tests.service.conftest import submit, vocal_bytes, wait_for, wait_status, write_speech


def test_job_lifecycle_end_to_end(api, api_key, settings, workers, engine, tmp_path):
    data = vocal_bytes(tmp_path, seconds=1.5)
    response = submit(api, api_key, data, name="my take.wav", seed=1234, temperature=0.8)
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["queue_position"] == 1
    assert job["options"]["seed"] == 1234 and job["filename"] == "my take.wav"
    assert api.get(f"/v1/jobs/{job['id']}/mix", headers=api_key).status_code == 409  # not ready: no result yet

    calls_before = len(engine.calls)
    workers.start(settings, engine)
    done = wait_status(api, job["id"], api_key, {"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    assert done["progress"] == 1.0 and done["queue_position"] is None and done["attempts"] == 1
    assert done["results"] == [
        {
            "take": 0,
            "seed": 1234,
            "mix": f"/v1/jobs/{job['id']}/mix?take=0",
            "accompaniment": f"/v1/jobs/{job['id']}/accompaniment?take=0",
        }
    ]
    assert len(engine.calls) > calls_before

    vocal, rate = sf.read(io.BytesIO(data), dtype="float32")
    downloads = {}
    for kind in ("mix", "accompaniment"):
        r = api.get(f"/v1/jobs/{job['id']}/{kind}", headers=api_key)
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        assert f'filename="my_take-{kind}.wav"' in r.headers["content-disposition"]
        downloads[kind], out_rate = sf.read(io.BytesIO(r.content), dtype="float32")
        assert out_rate == rate and downloads[kind].shape == vocal.shape
    accompaniment = downloads["accompaniment"]
    assert np.abs(accompaniment).max() > 0.01  # the network produced sound, not silence
    # mix = vocal + accompaniment (no limiting needed at these levels), up to 16-bit rounding
    np.testing.assert_allclose(downloads["mix"], vocal + accompaniment, atol=1e-3)


def test_same_seed_reproduces_and_takes_differ(api, api_key, settings, workers, engine, tmp_path):
    data = vocal_bytes(tmp_path, seconds=1.0)
    first = submit(api, api_key, data, seed=7, takes=2, format="flac").json()
    second = submit(api, api_key, data, seed=7, takes=1, format="flac").json()
    workers.start(settings, engine)
    for job in (first, second):
        assert wait_status(api, job["id"], api_key, {"succeeded", "failed"})["status"] == "succeeded"

    def take(job_id: str, n: int) -> np.ndarray:
        r = api.get(f"/v1/jobs/{job_id}/accompaniment", params={"take": n}, headers=api_key)
        assert r.status_code == 200 and r.headers["content-type"] == "audio/flac"
        assert f"-take{n}.flac" in r.headers["content-disposition"] or n == 0
        return sf.read(io.BytesIO(r.content), dtype="float32")[0]

    a0, a1, b0 = take(first["id"], 0), take(first["id"], 1), take(second["id"], 0)
    np.testing.assert_allclose(a0, b0, atol=1e-4)  # same vocal, same seed -> same take, whatever the batch
    assert np.abs(a0 - a1).max() > 1e-2  # take 1 uses another seed
    r = api.get(f"/v1/jobs/{first['id']}/mix", params={"take": 2}, headers=api_key)
    assert r.status_code == 404 and "2 take(s)" in r.json()["detail"]


def test_mp3_output(api, api_key, settings, workers, engine, tmp_path):
    job = submit(api, api_key, vocal_bytes(tmp_path, seconds=1.0), format="mp3").json()
    workers.start(settings, engine)
    assert wait_status(api, job["id"], api_key, {"succeeded", "failed"})["status"] == "succeeded"
    r = api.get(f"/v1/jobs/{job['id']}/mix", headers=api_key)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
    decoded, rate = sf.read(io.BytesIO(r.content), dtype="float32")
    assert rate == 16_000 and abs(len(decoded) - 16_000) < 2000


def test_seed_is_fixed_at_submission(api, api_key, tmp_path):
    job = submit(api, api_key, vocal_bytes(tmp_path)).json()
    assert isinstance(job["options"]["seed"], int)  # chosen by the API, so a retry reproduces the same take


def test_queue_position_counts_jobs_ahead(api, api_key, tmp_path):
    data = vocal_bytes(tmp_path)
    ids = [submit(api, api_key, data).json()["id"] for _ in range(3)]
    positions = [api.get(f"/v1/jobs/{i}", headers=api_key).json()["queue_position"] for i in ids]
    assert positions == [1, 2, 3]


def test_delete_queued_job_cancels_it_and_the_worker_skips_it(
    api, api_key, settings, workers, engine, rclient, keys, tmp_path
):
    job = submit(api, api_key, vocal_bytes(tmp_path)).json()
    job_dir = settings.storage_dir / "jobs" / job["id"]
    assert (job_dir / "input").is_file()
    assert api.delete(f"/v1/jobs/{job['id']}", headers=api_key).status_code == 204
    assert not job_dir.exists()
    assert api.get(f"/v1/jobs/{job['id']}", headers=api_key).json()["status"] == "cancelled"

    calls_before = len(engine.calls)
    workers.start(settings, engine)
    wait_for(lambda: rclient.xlen(keys.queue) == 0)  # the entry was consumed, acknowledged and removed
    assert len(engine.calls) == calls_before  # ...without generating anything
    assert api.get(f"/v1/jobs/{job['id']}", headers=api_key).json()["status"] == "cancelled"
    assert all(rclient.scard(k) == 0 for k in rclient.keys(settings.redis_prefix + "active:*"))  # quota freed


def test_delete_running_job_discards_its_output(api, api_key, settings, workers, tmp_path):
    slow = TinyEngine(TinyConfig(dim=16, layers=1, slow_down_s=0.02))  # ~100 steps: 2 s of "GPU time"
    job = submit(api, api_key, vocal_bytes(tmp_path, seconds=2.0)).json()
    workers.start(settings, slow)
    wait_status(api, job["id"], api_key, {"running"})
    assert api.delete(f"/v1/jobs/{job['id']}", headers=api_key).status_code == 204
    wait_for(lambda: len(slow.calls) == 1)
    job_dir = settings.storage_dir / "jobs" / job["id"]
    wait_for(lambda: not job_dir.exists(), timeout=10)  # the worker wrote nothing or removed what it wrote
    workers.stop_all()
    assert not job_dir.exists()
    assert api.get(f"/v1/jobs/{job['id']}", headers=api_key).json()["status"] == "cancelled"


def test_delete_finished_job_removes_record_and_files(api, api_key, settings, workers, engine, tmp_path):
    job = submit(api, api_key, vocal_bytes(tmp_path)).json()
    workers.start(settings, engine)
    assert wait_status(api, job["id"], api_key, {"succeeded", "failed"})["status"] == "succeeded"
    assert api.delete(f"/v1/jobs/{job['id']}", headers=api_key).status_code == 204
    assert not (settings.storage_dir / "jobs" / job["id"]).exists()
    assert api.get(f"/v1/jobs/{job['id']}", headers=api_key).status_code == 404
    assert api.delete(f"/v1/jobs/{job['id']}", headers=api_key).status_code == 404


def test_progress_is_reported_while_running(api, api_key, settings, workers, tmp_path):
    slow = TinyEngine(TinyConfig(dim=16, layers=1, slow_down_s=0.01))
    job = submit(api, api_key, vocal_bytes(tmp_path, seconds=3.0)).json()
    workers.start(settings, slow)
    running = wait_for(
        lambda: (
            (b := api.get(f"/v1/jobs/{job['id']}", headers=api_key).json())["progress"] > 0
            and b["status"] == "running"
            and b
        )
    )
    assert 0 < running["progress"] < 1 and running["started_at"] is not None
    assert wait_status(api, job["id"], api_key, {"succeeded"})["progress"] == 1.0


def test_unknown_and_malformed_ids_are_404(api, api_key):
    assert api.get("/v1/jobs/" + "0" * 32, headers=api_key).status_code == 404
    assert api.get("/v1/jobs/..%2F..%2Fetc", headers=api_key).status_code == 404
    assert api.get("/v1/jobs/not-an-id/mix", headers=api_key).status_code == 404
    assert api.delete("/v1/jobs/abc", headers=api_key).status_code == 404


def test_openapi_docs_and_health(api, settings, workers, engine):
    spec = api.get("/openapi.json").json()
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/mix", "/v1/batches", "/readyz"} <= set(spec["paths"])
    assert "multipart/form-data" in spec["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]
    assert api.get("/docs").status_code == 200
    assert api.get("/healthz").json() == {"status": "ok"}
    not_ready = api.get("/readyz")
    assert not_ready.status_code == 503 and "no worker heartbeat" in not_ready.json()["problems"]
    workers.start(settings, engine)
    ready = wait_for(lambda: (r := api.get("/readyz")).status_code == 200 and r)
    assert ready.json()["live_workers"] == 1


def test_metrics_endpoint(api, api_key, tmp_path):
    submit(api, api_key, vocal_bytes(tmp_path))
    text = api.get("/metrics").text
    assert "singsong_queue_depth 1.0" in text
    assert 'singsong_http_requests_total{method="POST",route="/v1/jobs",status="202"}' in text


def test_job_status_reports_the_melody_coverage_and_a_warning_for_speech(
    api, api_key, settings, workers, engine, tmp_path
):
    sung = submit(api, api_key, vocal_bytes(tmp_path, seconds=2.0), seed=1).json()
    speech = submit(api, api_key, write_speech(tmp_path / "talk.wav").read_bytes(), name="talk.wav", seed=1).json()
    assert sung["melody_coverage"] is None and sung["warnings"] == []  # known once the job has run
    workers.start(settings, engine)
    sung = wait_status(api, sung["id"], api_key, {"succeeded", "failed"})
    speech = wait_status(api, speech["id"], api_key, {"succeeded", "failed"})
    assert sung["status"] == speech["status"] == "succeeded"
    assert sung["melody_coverage"] > 0.5 and sung["warnings"] == []  # a held, pitched tone
    assert speech["melody_coverage"] < 0.15  # accompanied all the same, but with a word about it
    (warning,) = speech["warnings"]
    assert warning.startswith("little or no sung melody: ")
    schema = api.get("/openapi.json").json()["components"]["schemas"]["JobResponse"]["properties"]
    assert "held, pitched notes" in schema["melody_coverage"]["description"]
    assert "little or no sung melody" in schema["warnings"]["description"]
