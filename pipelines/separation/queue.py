"""A work queue of tracks on Redis Streams: one producer, any number of separation consumers, crash-safe.

Why Redis Streams with a consumer group (Redis >= 6.2 for XAUTOCLAIM): every message is delivered to one
consumer of the group, stays in the group's *pending entries list* until that consumer acknowledges it, and a
pending message whose consumer went quiet for `claim_timeout` can be taken over by another (XAUTOCLAIM).
That is at-least-once delivery; separation outputs are idempotent (a finished track is skipped, writes are
atomic), so a track processed twice after a crash costs time, not correctness.

Keys, for a queue named `NAME`::

    NAME:tracks     the stream; each entry has one field `job` = {"key", "path", "split"} as JSON
    NAME:seen       set of enqueued keys: enqueueing the same corpus twice adds nothing
    NAME:failed     dead-letter stream: {"job", "reason", "consumer", "deliveries"} for unreadable tracks and
                    for messages delivered more than `max_deliveries` times (a track that crashes consumers)

A consumer calls `claim` (stale messages of dead consumers first, then new ones), `touch` now and then for
the tracks it still holds (XCLAIM to itself resets their idle time, so a long track on a live consumer is not
stolen), then `ack` (XACK + XDEL) or `fail`. `drained` is true when nothing is waiting or held by anyone.

The interface (`TrackQueue`) is small on purpose so that the service's queue (`service/queue.py`) can provide
the same four calls over its own connection handling.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core.errors import SingsongError
from pipelines.separation.tracks import TrackJob

logger = logging.getLogger(__name__)

DEFAULT_QUEUE_NAME = "singsong:separate"
DEFAULT_GROUP = "separators"


class QueueError(SingsongError):
    """The queue server cannot be reached or answered something unexpected."""


@dataclass(frozen=True)
class Claim:
    """A message held by this consumer: the track to process and how often it was delivered so far."""

    message_id: str
    job: TrackJob
    deliveries: int = 1


@dataclass(frozen=True)
class EnqueueResult:
    added: int
    duplicates: int


@dataclass(frozen=True)
class QueueStats:
    waiting: int  # in the stream, not yet delivered to any consumer
    pending: int  # delivered, not acknowledged (in progress, or held by a dead consumer)
    failed: int  # in the dead-letter stream
    consumers: int


class TrackQueue(Protocol):
    def enqueue(self, jobs: Iterable[TrackJob], *, requeue: bool = False) -> EnqueueResult: ...
    def claim(self, count: int = 1, *, block_ms: int = 1000) -> list[Claim]: ...
    def touch(self, claims: Iterable[Claim]) -> None: ...
    def ack(self, claim: Claim) -> None: ...
    def fail(self, claim: Claim, reason: str) -> None: ...
    def drained(self) -> bool: ...


def encode_job(job: TrackJob) -> str:
    return json.dumps({"key": job.key, "path": str(job.path), "split": job.split}, sort_keys=True)


def decode_job(text: str | bytes) -> TrackJob:
    document = json.loads(text)
    return TrackJob(key=document["key"], path=Path(document["path"]), split=document.get("split"))


class RedisTrackQueue:
    """`TrackQueue` on a Redis stream + consumer group (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        name: str = DEFAULT_QUEUE_NAME,
        group: str = DEFAULT_GROUP,
        consumer: str | None = None,
        claim_timeout_s: float = 600.0,
        max_deliveries: int = 3,
        client: Any | None = None,
    ) -> None:
        import redis

        self.client = client if client is not None else redis.Redis.from_url(url, socket_timeout=60)
        self.url = url
        self.stream, self.seen_key, self.failed_stream = f"{name}:tracks", f"{name}:seen", f"{name}:failed"
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.claim_timeout_ms = max(1, int(claim_timeout_s * 1000))
        self.max_deliveries = max_deliveries
        self._autoclaim_cursor = "0-0"
        self._ensure_group()

    def _ensure_group(self) -> None:
        import redis

        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise QueueError(f"{self.url}: cannot create consumer group ({error})") from error
        except redis.ConnectionError as error:
            raise QueueError(f"{self.url}: cannot reach the queue server ({error})") from error

    # ------------------------------------------------------------------------------------------ producer
    def enqueue(self, jobs: Iterable[TrackJob], *, requeue: bool = False) -> EnqueueResult:
        """Add tracks; keys enqueued before are skipped unless `requeue`. Pipelined in chunks of 500."""
        added = duplicates = 0
        chunk: list[TrackJob] = []

        def flush() -> None:
            nonlocal added, duplicates
            if not chunk:
                return
            new = chunk
            if not requeue:
                with self.client.pipeline() as pipe:
                    for job in chunk:
                        pipe.sadd(self.seen_key, job.key)
                    fresh = pipe.execute()
                new = [job for job, is_new in zip(chunk, fresh, strict=True) if is_new]
                duplicates += len(chunk) - len(new)
            with self.client.pipeline() as pipe:
                for job in new:
                    if requeue:
                        pipe.sadd(self.seen_key, job.key)
                    pipe.xadd(self.stream, {"job": encode_job(job)})
                pipe.execute()
            added += len(new)
            chunk.clear()

        for job in jobs:
            chunk.append(job)
            if len(chunk) >= 500:
                flush()
        flush()
        return EnqueueResult(added=added, duplicates=duplicates)

    # ------------------------------------------------------------------------------------------ consumer
    def claim(self, count: int = 1, *, block_ms: int = 1000) -> list[Claim]:
        """Up to `count` messages: first stale ones of other consumers, then new ones (blocking up to
        `block_ms` when there is nothing at all; 0 or less: do not block)."""
        claims = self._recover(count)
        if len(claims) < count:
            block = block_ms if not claims and block_ms > 0 else None
            response = self.client.xreadgroup(
                self.group, self.consumer, {self.stream: ">"}, count=count - len(claims), block=block
            )
            for _stream, messages in response or []:
                for message_id, fields in messages:
                    claim = self._to_claim(message_id, fields, deliveries=1)
                    if claim is not None:
                        claims.append(claim)
        return claims

    def _recover(self, count: int) -> list[Claim]:
        """XAUTOCLAIM stale messages; those delivered too often go to the dead-letter stream."""
        claims: list[Claim] = []
        response = self.client.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=self.claim_timeout_ms,
            start_id=self._autoclaim_cursor,
            count=count,
        )
        cursor, messages = response[0], response[1]
        self._autoclaim_cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        for message_id, fields in messages:
            if fields is None:  # deleted from the stream while pending
                self.client.xack(self.stream, self.group, message_id)
                continue
            info = self.client.xpending_range(self.stream, self.group, min=message_id, max=message_id, count=1)
            deliveries = int(info[0]["times_delivered"]) if info else 1
            claim = self._to_claim(message_id, fields, deliveries=deliveries)
            if claim is None:
                continue
            logger.warning(
                "recovered %s (%s) from a stale consumer, delivery %d", claim.job.key, claim.message_id, deliveries
            )
            if deliveries > self.max_deliveries:
                self.fail(claim, f"gave up after {deliveries - 1} deliveries without an acknowledgement")
                continue
            claims.append(claim)
        return claims

    def _to_claim(self, message_id: Any, fields: dict, *, deliveries: int) -> Claim | None:
        message_id = message_id.decode() if isinstance(message_id, bytes) else str(message_id)
        raw = fields.get(b"job", fields.get("job"))
        try:
            job = decode_job(raw)
        except (TypeError, ValueError, KeyError) as error:
            logger.error("dropping malformed queue message %s: %s", message_id, error)
            self.client.xadd(self.failed_stream, {"message": json.dumps(str(raw)), "reason": f"malformed: {error}"})
            self.client.xack(self.stream, self.group, message_id)
            self.client.xdel(self.stream, message_id)
            return None
        return Claim(message_id=message_id, job=job, deliveries=deliveries)

    def touch(self, claims: Iterable[Claim]) -> None:
        """Reset the idle time of messages this consumer still works on (a heartbeat)."""
        ids = [claim.message_id for claim in claims]
        if ids:
            self.client.xclaim(self.stream, self.group, self.consumer, min_idle_time=0, message_ids=ids, justid=True)

    def ack(self, claim: Claim) -> None:
        with self.client.pipeline() as pipe:
            pipe.xack(self.stream, self.group, claim.message_id)
            pipe.xdel(self.stream, claim.message_id)
            pipe.execute()

    def fail(self, claim: Claim, reason: str) -> None:
        """Move a message to the dead-letter stream (it will not be retried)."""
        entry = {
            "job": encode_job(claim.job),
            "reason": reason,
            "consumer": self.consumer,
            "deliveries": str(claim.deliveries),
        }
        with self.client.pipeline() as pipe:
            pipe.xadd(self.failed_stream, entry)
            pipe.xack(self.stream, self.group, claim.message_id)
            pipe.xdel(self.stream, claim.message_id)
            pipe.execute()

    # ------------------------------------------------------------------------------------------ status
    def stats(self) -> QueueStats:
        groups = {
            g["name"].decode() if isinstance(g["name"], bytes) else g["name"]: g
            for g in self.client.xinfo_groups(self.stream)
        }
        group = groups.get(self.group, {})
        pending = int(group.get("pending", 0))
        lag = group.get("lag")
        waiting = int(lag) if lag is not None else max(0, int(self.client.xlen(self.stream)) - pending)
        failed = int(self.client.xlen(self.failed_stream)) if self.client.exists(self.failed_stream) else 0
        return QueueStats(waiting=waiting, pending=pending, failed=failed, consumers=int(group.get("consumers", 0)))

    def drained(self) -> bool:
        """Nothing waiting and nothing held by any consumer (acknowledged entries are deleted)."""
        return int(self.client.xlen(self.stream)) == 0

    def failures(self) -> list[dict[str, str]]:
        out = []
        for _id, fields in self.client.xrange(self.failed_stream):
            out.append(
                {
                    (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                    for k, v in fields.items()
                }
            )
        return out


__all__ = [
    "DEFAULT_GROUP",
    "DEFAULT_QUEUE_NAME",
    "Claim",
    "EnqueueResult",
    "QueueError",
    "QueueStats",
    "RedisTrackQueue",
    "TrackQueue",
    "decode_job",
    "encode_job",
]
