"""Housekeeping every worker runs between batches: expired jobs, abandoned uploads, orphaned directories.

All of it is idempotent and safe to run in many workers at once (a record or file deleted by another
worker first is simply gone). Only the schedule lives in the worker (`Worker.janitor`).

* **Expired jobs**: a finished job's record and files are deleted once its result TTL has passed (the
  `expiry` sorted set, written by the FINISH/FAIL/CANCEL scripts).
* **Abandoned uploads**: `incoming/*.part` older than any upload could take (an API process that died
  mid-upload; a live API deletes its own partial files on every error, timeouts included).
* **Orphaned job directories**: a directory without a Redis record, older than `ORPHAN_MAX_AGE_S`: an API
  process that died between storing an upload and enqueueing it, an enqueue that met a Redis outage and
  could not be confirmed absent, or a record lost with a Redis that ran without persistence.
"""

from __future__ import annotations

import logging
import time

import redis

from service.keys import Keys
from service.storage import Storage, is_job_id

log = logging.getLogger("singsong.worker")
INCOMING_MAX_AGE_S = 6 * 3600.0
ORPHAN_SWEEP_INTERVAL_S = 600.0
#: Admission takes milliseconds between storing an upload and enqueueing it, so ten minutes is ample.
ORPHAN_MAX_AGE_S = 600.0
#: Workers that left without saying goodbye (SIGKILL) are pruned from the heartbeat set after a day.
DEAD_WORKER_AGE_S = 86_400.0


def remove_expired(client: redis.Redis, keys: Keys, storage: Storage, limit: int = 500) -> int:
    """Delete the records and files of up to `limit` jobs whose result TTL has passed."""
    expired = client.zrangebyscore(keys.expiry, "-inf", time.time(), start=0, num=limit)
    for job_id in expired:
        if is_job_id(job_id):
            storage.delete_job(job_id)
        pipe = client.pipeline(transaction=True)
        pipe.delete(keys.job(job_id))
        pipe.zrem(keys.expiry, job_id)
        pipe.execute()
    return len(expired)


def sweep_orphans(client: redis.Redis, keys: Keys, storage: Storage, max_age_s: float = ORPHAN_MAX_AGE_S) -> int:
    """Delete job directories older than `max_age_s` that have no Redis record. Returns how many."""
    candidates = storage.old_job_ids(max_age_s)
    pipe = client.pipeline(transaction=False)
    for job_id in candidates:
        pipe.exists(keys.job(job_id))
    orphans = [job_id for job_id, exists in zip(candidates, pipe.execute(), strict=True) if not exists]
    for job_id in orphans:
        storage.delete_job(job_id)
    return len(orphans)


def prune_workers(client: redis.Redis, keys: Keys) -> None:
    client.zremrangebyscore(keys.workers, "-inf", time.time() - DEAD_WORKER_AGE_S)
