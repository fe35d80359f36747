"""Queue mode on a real redis-server: dedupe, claims, acknowledgements, stale-claim recovery, dead letters."""

from __future__ import annotations

import time
from pathlib import Path

from core.datasets import read_manifest
from pipelines.separation.engine import TrackJob
from pipelines.separation.queue import RedisTrackQueue
from pipelines.separation.separate import SeparateOptions, run_separation
from tests.pipelines.separation.conftest import write_corrupt


def _jobs(n: int) -> list[TrackJob]:
    return [TrackJob(key=f"k{i}", path=Path(f"/data/t{i}.flac"), split="train") for i in range(n)]


def test_enqueue_is_deduplicated_and_each_message_goes_to_one_consumer(redis_url: str, redis_queue_name) -> None:
    a = RedisTrackQueue(redis_url, name=redis_queue_name, consumer="a")
    b = RedisTrackQueue(redis_url, name=redis_queue_name, consumer="b")
    assert a.enqueue(_jobs(5)).added == 5
    again = a.enqueue(_jobs(6))
    assert (again.added, again.duplicates) == (1, 5)
    got_a, got_b = a.claim(4, block_ms=0), b.claim(4, block_ms=0)
    keys = [c.job.key for c in got_a + got_b]
    assert sorted(keys) == [f"k{i}" for i in range(6)] and len(set(keys)) == 6
    assert got_a[0].job.path == Path("/data/t0.flac") and got_a[0].job.split == "train"
    assert a.stats().pending == 6 and not a.drained()
    for claim in got_a:
        a.ack(claim)
    for claim in got_b:
        b.ack(claim)
    assert a.drained() and a.stats().pending == 0
    assert a.claim(1, block_ms=0) == []


def test_stale_claims_of_a_dead_consumer_are_recovered(redis_url: str, redis_queue_name) -> None:
    dead = RedisTrackQueue(redis_url, name=redis_queue_name, consumer="dead", claim_timeout_s=0.2)
    alive = RedisTrackQueue(redis_url, name=redis_queue_name, consumer="alive", claim_timeout_s=0.2)
    dead.enqueue(_jobs(2))
    held = dead.claim(2, block_ms=0)
    assert len(held) == 2
    assert alive.claim(2, block_ms=0) == []  # still fresh: nobody may take them
    time.sleep(0.3)
    dead.touch(held[:1])  # the heartbeat keeps k0 with its consumer
    recovered = alive.claim(2, block_ms=0)
    assert [c.job.key for c in recovered] == ["k1"] and recovered[0].deliveries == 2
    alive.ack(recovered[0])


def test_a_message_that_keeps_failing_goes_to_the_dead_letter_stream(redis_url: str, redis_queue_name) -> None:
    queue = RedisTrackQueue(redis_url, name=redis_queue_name, consumer="c", claim_timeout_s=0.05, max_deliveries=2)
    queue.enqueue(_jobs(1))
    assert len(queue.claim(1, block_ms=0)) == 1  # delivery 1, never acknowledged (consumer crashed)
    time.sleep(0.1)
    assert queue.claim(1, block_ms=0)[0].deliveries == 2
    time.sleep(0.1)
    assert queue.claim(1, block_ms=0) == []  # delivery 3 > max: dead-lettered instead
    failures = queue.failures()
    assert len(failures) == 1 and "gave up" in failures[0]["reason"] and queue.drained()


def test_queue_consumers_separate_the_corpus_once(
    tmp_path: Path, mixtures: Path, tiny_repo, redis_url: str, redis_queue_name
) -> None:
    repo, name = tiny_repo
    write_corrupt(mixtures / "broken.flac")
    out = tmp_path / "sep"

    def options(**extra) -> SeparateOptions:
        return SeparateOptions(
            input=mixtures,
            out=out,
            model=name,
            repo=repo,
            shifts=0,
            progress=False,
            queue=redis_url,
            queue_name=redis_queue_name,
            idle_exit=0.5,
            **extra,
        )

    produced = run_separation(options(enqueue=True))
    assert produced.total == 5 and not produced.model_loaded
    assert run_separation(options(enqueue=True)).skipped == 5  # enqueueing twice adds nothing
    first = run_separation(options())
    assert first.separated == 4 and [k for k, _ in first.failed] == ["broken"]
    second = run_separation(options())  # a late consumer finds a drained queue and exits
    assert second.separated == 0 and second.failed == []
    queue = RedisTrackQueue(redis_url, name=redis_queue_name)
    assert queue.drained() and [f["reason"].split(":")[0] for f in queue.failures()] == ["CorruptAudioError"]
    assert len(list(read_manifest(out / "manifest.jsonl"))) == 4
    # requeueing finished tracks costs nothing: consumers acknowledge them without separating
    run_separation(options(enqueue=True, requeue=True))
    third = run_separation(options())
    assert (third.separated, third.skipped) == (0, 4)
