"""Redis key names, in one place so the API, the worker and the tests cannot drift apart.

Layout (P = `Settings.redis_prefix`):

    P queue              stream of queued jobs (fields: job, seq), consumer group "workers"
    P dead               dead-letter stream (job, error, attempts)
    P seq:enqueued       counter, incremented for every XADD to the queue
    P seq:delivered      highest seq handed to a worker; queued jobs = enqueued - delivered
    P job:<id>           hash, the job's state
    P batch:<id>         hash, a batch (owner, job ids, rejected files)
    P active:<owner>     set of the owner's queued + running job ids (concurrency quota)
    P ratelimit:<owner>  hash, the owner's token bucket
    P apikey:<sha256>    hash, an API key (name, owner id); the key itself is never stored
    P apikey-ids         hash, owner id -> sha256 (to revoke by id)
    P workers            sorted set, worker name -> last heartbeat (Redis time)
    P expiry             sorted set, finished job id -> when its record and files are deleted
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "workers"


@dataclass(frozen=True)
class Keys:
    prefix: str

    @property
    def queue(self) -> str:
        return f"{self.prefix}queue"

    @property
    def dead(self) -> str:
        return f"{self.prefix}dead"

    @property
    def seq_enqueued(self) -> str:
        return f"{self.prefix}seq:enqueued"

    @property
    def seq_delivered(self) -> str:
        return f"{self.prefix}seq:delivered"

    @property
    def workers(self) -> str:
        return f"{self.prefix}workers"

    @property
    def expiry(self) -> str:
        return f"{self.prefix}expiry"

    @property
    def apikey_ids(self) -> str:
        return f"{self.prefix}apikey-ids"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def batch(self, batch_id: str) -> str:
        return f"{self.prefix}batch:{batch_id}"

    def active(self, owner: str) -> str:
        return f"{self.prefix}active:{owner}"

    def ratelimit(self, owner: str) -> str:
        return f"{self.prefix}ratelimit:{owner}"

    def apikey(self, digest: str) -> str:
        return f"{self.prefix}apikey:{digest}"
