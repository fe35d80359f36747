"""The worker: batching, retries and dead letters, cancellation, result TTL, graceful stop."""

from __future__ import annotations

import threading

from service.testing import CallRecord, TinyConfig, TinyEngine
from service.worker import Worker
from tests.service.conftest import submit, vocal_bytes, wait_for


class PoisonEngine(TinyEngine):
    """The tiny network, except that it raises for vocals of one exact length (a 'poison' input)."""

    def __init__(self, poison_seconds: float) -> None:
        super().__init__(TinyConfig(dim=16, layers=1))
        self.poison_seconds = poison_seconds

    def accompany_batch(self, vocals, options, progress=None):
        if any(abs(v.duration - self.poison_seconds) < 1e-6 for v in vocals):
            self.calls.append(CallRecord(len(vocals), -1))  # record the failed call too
            raise RuntimeError("CUDA error: an illegal memory access was encountered (simulated)")
        return super().accompany_batch(vocals, options, progress)


def test_queued_jobs_run_in_one_batched_engine_call(api, api_key, settings, tmp_path):
    engine = TinyEngine(TinyConfig(dim=16, layers=1))
    ids = [submit(api, api_key, vocal_bytes(tmp_path, seconds=1.0 + 0.05 * i, seed=i)).json()["id"] for i in range(6)]
    worker = Worker(settings, engine=engine, name="batcher")
    assert worker.run_once(block=False) == 6
    assert [(c.batch_size, c.rows) for c in engine.calls] == [(6, 6)]  # one forward for all six jobs
    for job_id in ids:
        assert api.get(f"/v1/jobs/{job_id}", headers=api_key).json()["status"] == "succeeded"


def test_batches_respect_batch_size_and_group_by_length(api, api_key, settings_factory, client_factory, rclient):
    settings = settings_factory(batch_size=3, auth="open", length_tolerance=1.5)
    api = client_factory(settings)
    engine = TinyEngine(TinyConfig(dim=16, layers=1))
    lengths = [1.0, 3.0, 1.1, 3.2, 1.2, 1.05]
    tmp = settings.storage_dir.parent / "src"
    for i, seconds in enumerate(lengths):
        assert submit(api, {}, vocal_bytes(tmp, seconds=seconds, seed=i), takes=2 if i == 0 else 1).status_code == 202
    worker = Worker(settings, engine=engine, name="grouper")
    while worker.run_once(block=False):
        pass
    durations = [sorted(round(d, 2) for d in c.durations) for c in engine.calls]
    # first read (3 jobs: 1.0, 3.0, 1.1) splits by length; the second read (3.2, 1.2, 1.05) too
    assert durations == [[1.0, 1.1], [3.0], [1.05, 1.2], [3.2]]
    assert engine.calls[0].rows == 3  # two takes of the first vocal + one of the other


def test_failing_job_is_retried_then_dead_lettered_without_failing_its_batch(
    api, api_key, settings, rclient, keys, tmp_path
):
    engine = PoisonEngine(poison_seconds=1.25)
    good = submit(api, api_key, vocal_bytes(tmp_path, seconds=1.2, seed=1)).json()["id"]
    bad = submit(api, api_key, vocal_bytes(tmp_path, seconds=1.25, seed=2)).json()["id"]
    worker = Worker(settings, engine=engine, name="retrier")
    while worker.run_once(block=False):
        pass
    assert api.get(f"/v1/jobs/{good}", headers=api_key).json()["status"] == "succeeded"
    failed = api.get(f"/v1/jobs/{bad}", headers=api_key).json()
    assert failed["status"] == "failed" and failed["attempts"] == settings.max_attempts
    assert failed["error"] == "generation failed (RuntimeError) after 3 attempt(s)"  # no internals leaked
    # batch [good, bad] failed -> both re-run alone; then the bad one twice more on its own
    assert [c.batch_size for c in engine.calls] == [2, 1, 1, 1, 1]
    dead = rclient.xrange(keys.dead)
    assert len(dead) == 1 and dead[0][1]["job"] == bad and dead[0][1]["attempts"] == "3"
    assert rclient.xlen(keys.queue) == 0 and rclient.xpending(keys.queue, "workers")["pending"] == 0
    assert not (settings.storage_dir / "jobs" / bad / "a3").exists()


def test_expired_results_are_cleaned_up(settings_factory, client_factory, api_key, rclient, tmp_path):
    settings = settings_factory(result_ttl_s=1, auth="open")
    api = client_factory(settings)
    engine = TinyEngine(TinyConfig(dim=16, layers=1))
    job = submit(api, {}, vocal_bytes(tmp_path)).json()
    worker = Worker(settings, engine=engine, name="janitor")
    worker.run_once(block=False)
    job_dir = settings.storage_dir / "jobs" / job["id"]
    assert api.get(f"/v1/jobs/{job['id']}").json()["status"] == "succeeded" and (job_dir / "a1").is_dir()
    assert worker.janitor() == 0  # not yet expired
    wait_for(lambda: worker.janitor() == 1, timeout=5, interval=0.2)
    assert not job_dir.exists()
    assert api.get(f"/v1/jobs/{job['id']}").status_code == 404


def test_stale_incoming_uploads_are_swept(settings, engine):
    import os
    import time

    worker = Worker(settings, engine=engine, name="sweeper")
    old = worker.storage.incoming(10)
    old.write(b"abc")
    old.close()
    os.utime(old.path, (time.time() - 7 * 3600,) * 2)
    fresh = worker.storage.incoming(10)
    worker.janitor()
    assert not old.path.exists() and fresh.path.exists()


def test_stop_finishes_the_current_batch_and_reads_no_more(api, api_key, settings, tmp_path):
    engine = TinyEngine(TinyConfig(dim=16, layers=1, slow_down_s=0.01, max_batch_size=2))
    ids = [submit(api, api_key, vocal_bytes(tmp_path, seconds=1.5, seed=i)).json()["id"] for i in range(3)]
    worker = Worker(settings, engine=engine, name="stopper")
    thread = threading.Thread(target=worker.run)
    thread.start()
    wait_for(lambda: len(engine.calls) == 1)  # mid-batch (2 jobs)
    worker.stop()
    thread.join(20)
    assert not thread.is_alive()
    statuses = [api.get(f"/v1/jobs/{i}", headers=api_key).json()["status"] for i in ids]
    assert statuses == ["succeeded", "succeeded", "queued"]  # the batch in hand finished; nothing new was read
    assert len(engine.calls) == 1


def test_orphaned_job_directories_are_swept(api, api_key, settings, engine, tmp_path):
    import os
    import time

    kept = submit(api, api_key, vocal_bytes(tmp_path)).json()["id"]
    worker = Worker(settings, engine=engine, name="orphans")
    orphan = worker.storage.jobs_dir / ("e" * 32)
    orphan.mkdir()
    (orphan / "input").write_bytes(b"left behind by a crashed API process")
    for path in (orphan, worker.storage.jobs_dir / kept):
        os.utime(path, (time.time() - 7 * 3600,) * 2)
    assert worker.sweep_orphans() == 1
    assert not orphan.exists() and (worker.storage.jobs_dir / kept / "input").is_file()
