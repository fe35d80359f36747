"""The GPU worker: Redis Streams consumer that runs queued jobs through the engine in batches.

One loop iteration:

1. **Reclaim** entries other workers left pending for longer than `claim_min_idle_ms` (XAUTOCLAIM): their
   worker died (SIGKILL, OOM, lost machine). Live workers never look idle, because the heartbeat thread
   re-claims (XCLAIM ... JUSTID, which resets idle time) the entries it is working on. Entries pending to
   this worker's own name that it is not working on (a batch it dropped, or a previous life of a worker
   restarted under the same name) are taken up at once, without waiting for them to look idle.
2. **Read** new entries (XREADGROUP COUNT batch_size), topping up a partial reclaim.
3. **Claim** each job in Redis (Lua CLAIM: queued|running -> running, attempts += 1); cancelled, deleted
   and stale entries are acknowledged and skipped; a job that already used all its attempts (it crashed
   its workers every time: a poison input) goes to the dead-letter stream.
4. **Load** the vocals, **group** them by duration (longest/shortest <= length_tolerance, so padding
   stays small) and run **one batched forward per group** through the engine.
5. **Write** every take atomically into the attempt's own directory, then **publish** (Lua FINISH: status,
   results, the vocal's melody check, XACK + XDEL in one step). Only now can the API see results, so nothing
   half-written is visible.

Failures: an AudioError on load is final (the input will not get better). An engine error in a batch of
several jobs re-runs them one by one, so one bad vocal cannot fail its batch mates; a job that fails on
its own is re-enqueued (FAIL, non-final) until `max_attempts` runs, then failed and dead-lettered.

Redis outages: progress reports are best-effort (a lost one is skipped, not an engine failure), and
finished results wait for Redis to come back (up to `redis_outage_wait_s`) before being published, so a
blip costs no job an attempt.

SIGTERM/SIGINT: stop reading, finish the batch in hand, leave. Held entries of a worker killed harder are
taken over by XAUTOCLAIM once idle. A periodic janitor deletes expired jobs' records and files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from core.audio import Audio, AudioError, load_audio
from pipelines.inference.engine import AccompanimentEngine, Take, with_melody_checks
from pipelines.inference.engine_loader import load_engine
from service import janitor as housekeeping
from service import metrics
from service.config import Settings
from service.jobs import JobRecord
from service.keys import GROUP, Keys
from service.outage import REDIS_DOWN, when_redis_is_back
from service.scripts import CLAIM, FAIL, FINISH, PROGRESS
from service.storage import Storage, is_job_id

log = logging.getLogger("singsong.worker")
T = TypeVar("T")
PROGRESS_INTERVAL_S = 0.25
WRITE_THREADS = 8
#: After a failed progress report, skip reports for this long: each failure costs the client's retries,
#: which would otherwise slow the generation loop down for the whole outage.
PROGRESS_BACKOFF_S = 5.0
REDIS_SOCKET_TIMEOUT_S = 10.0


@dataclass
class Claimed:
    """A job this worker is running now."""

    entry: str
    job: JobRecord
    attempt: int
    vocal: Audio | None = None


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        engine: AccompanimentEngine | None = None,
        client: redis.Redis | None = None,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.keys = Keys(settings.redis_prefix)
        self.client = client or redis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            socket_connect_timeout=REDIS_SOCKET_TIMEOUT_S,
            socket_timeout=REDIS_SOCKET_TIMEOUT_S + settings.read_block_ms / 1000,  # XREADGROUP blocks
        )
        self.storage = Storage(settings.storage_dir)
        self.engine = engine or load_engine(settings.engine, settings.model_dir, settings.device)
        self.name = name or settings.worker_name or f"{socket.gethostname()}-{os.getpid()}"
        self.batch_size = max(1, min(settings.batch_size, self.engine.max_batch_size))
        self._stop = threading.Event()
        self._held: set[str] = set()  # stream entries being worked on, kept alive by the heartbeat
        self._held_lock = threading.Lock()
        self._claim_cursor = "0-0"
        self._next_janitor = 0.0
        self._next_orphan_sweep = 0.0
        self._claim = self.client.register_script(CLAIM)
        self._progress = self.client.register_script(PROGRESS)
        self._finish = self.client.register_script(FINISH)
        self._fail = self.client.register_script(FAIL)

    # ------------------------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        """Finish the batch in hand, then leave `run` (what SIGTERM does)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: self._on_signal(signum))

    def _on_signal(self, signum: int) -> None:
        log.info("worker %s: %s received, finishing the current batch", self.name, signal.Signals(signum).name)
        self.stop()

    def run(self) -> None:
        """Serve until `stop()`. Redis outages are waited out (a restart with AOF loses nothing)."""
        log.info("worker %s: batch size %d, engine %s", self.name, self.batch_size, type(self.engine).__name__)
        heartbeat = threading.Thread(target=self._heartbeat_loop, name=f"heartbeat-{self.name}", daemon=True)
        heartbeat.start()
        try:
            while not self._stop.is_set():
                try:
                    self.run_once()
                except REDIS_DOWN as error:
                    log.warning("worker %s: Redis unavailable (%s), retrying", self.name, error)
                    self._stop.wait(1.0)
        finally:
            self._stop.set()
            heartbeat.join(timeout=self.settings.heartbeat_s + 5)
            with contextlib.suppress(redis.RedisError):
                self.client.zrem(self.keys.workers, self.name)
            log.info("worker %s: stopped", self.name)

    def run_once(self, block: bool = True) -> int:
        """One iteration (reclaim/read, process, janitor). Returns the number of stream entries handled."""
        self.ensure_group()
        if time.time() >= self._next_janitor:
            self.janitor()
            self._next_janitor = time.time() + self.settings.janitor_interval_s
        entries = self._own_pending()
        if len(entries) < self.batch_size:
            entries += self._reclaim(self.batch_size - len(entries))
        if len(entries) < self.batch_size:
            entries += self._read(self.batch_size - len(entries), block=block and not entries)
        if entries and len(entries) < self.batch_size and self.settings.batch_wait_ms:
            entries += self._read(self.batch_size - len(entries), block=True, block_ms=self.settings.batch_wait_ms)
        if entries:
            self.process(entries)
        return len(entries)

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.keys.queue, GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    # ---------------------------------------------------------------------------------------- reading
    def _own_pending(self) -> list[tuple[str, dict[str, str]]]:
        """Entries the group still assigns to this worker's name although it is not working on them.

        Called between batches, when nothing is held: every such entry was dropped (a batch abandoned on a
        Redis error that outlasted the retries) or belongs to a previous process with the same name.
        XREADGROUP from id 0 returns them without waiting for them to look idle to XAUTOCLAIM.
        """
        reply = self.client.xreadgroup(GROUP, self.name, {self.keys.queue: "0"}, count=self.batch_size)
        entries = [(entry, fields) for _stream, items in reply or [] for entry, fields in items]
        for entry, fields in entries:
            if not fields:  # deleted from the stream while pending to us: nothing to run
                self._ack(entry)
        found = [(entry, fields) for entry, fields in entries if fields]
        if found:
            log.warning("worker %s: resuming %d job(s) pending to this worker", self.name, len(found))
        return found

    def _reclaim(self, count: int) -> list[tuple[str, dict[str, str]]]:
        reply = self.client.xautoclaim(
            self.keys.queue,
            GROUP,
            self.name,
            min_idle_time=self.settings.claim_min_idle_ms,
            start_id=self._claim_cursor,
            count=count,
        )
        self._claim_cursor, claimed = reply[0], reply[1]
        if claimed:
            log.warning("worker %s: took over %d stale job(s)", self.name, len(claimed))
        return [(entry, fields) for entry, fields in claimed if fields is not None]

    def _read(self, count: int, *, block: bool, block_ms: int | None = None) -> list[tuple[str, dict[str, str]]]:
        reply = self.client.xreadgroup(
            GROUP,
            self.name,
            {self.keys.queue: ">"},
            count=count,
            # Capped so that an idle worker still looks for stale entries (XAUTOCLAIM) often enough.
            block=min(block_ms or self.settings.read_block_ms, self.settings.claim_min_idle_ms // 2) if block else None,
        )
        return [(entry, fields) for _stream, items in reply or [] for entry, fields in items]

    # ------------------------------------------------------------------------------------- processing
    def process(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        with self._held_lock:
            self._held.update(entry for entry, _ in entries)
        try:
            claimed = [c for c in (self._claim_entry(entry, fields) for entry, fields in entries) if c]
            loaded = [c for c in claimed if self._load(c)]
            for group in self._group_by_length(loaded):
                self._run_group(group)
        finally:
            with self._held_lock:
                self._held.difference_update(entry for entry, _ in entries)

    def _claim_entry(self, entry: str, fields: dict[str, str]) -> Claimed | None:
        job_id = fields.get("job", "")
        if not is_job_id(job_id):
            log.error("worker %s: dropping malformed queue entry %s: %r", self.name, entry, fields)
            self._ack(entry)
            return None
        outcome, attempts = self._claim(
            keys=[self.keys.job(job_id), self.keys.seq_delivered],
            args=[self.name, f"{time.time():.6f}", self.settings.max_attempts, entry, fields.get("seq", "0")],
        )
        attempts = int(attempts)
        if outcome == "running":
            job = JobRecord.from_hash(self.client.hgetall(self.keys.job(job_id)))
            metrics.WORKER_QUEUE_WAIT.observe(max(0.0, time.time() - job.created_at))
            return Claimed(entry, job, attempts)
        if outcome == "exhausted":
            job = JobRecord.from_hash(self.client.hgetall(self.keys.job(job_id)))
            message = f"the job stopped its worker {attempts} times (crash or timeout) and was given up"
            self._fail_job(Claimed(entry, job, attempts), message, final=True)
            return None
        log.info("worker %s: skipping job %s (%s)", self.name, job_id, outcome)
        self._ack(entry)
        return None

    def _load(self, claimed: Claimed) -> bool:
        try:
            claimed.vocal = load_audio(
                self.storage.input_path(claimed.job.id),
                max_bytes=self.settings.max_upload_bytes,
                max_seconds=self.settings.max_seconds,
            )
            return True
        except AudioError as error:  # validated on upload, so this is rare - and retrying would not help
            self._fail_job(claimed, f"cannot read the vocal: {error.problem}", final=True)
        except OSError as error:  # storage hiccup (NFS): worth another attempt
            log.warning("worker %s: job %s: cannot read input: %s", self.name, claimed.job.id, error)
            self._fail_job(claimed, "the uploaded vocal could not be read from storage", final=False)
        return False

    def _group_by_length(self, jobs: list[Claimed]) -> list[list[Claimed]]:
        """Sort by duration and cut greedily: a group ends when full or when the next vocal is more than
        `length_tolerance` times longer than the group's shortest (padding is wasted accelerator time)."""
        groups: list[list[Claimed]] = []
        for job in sorted(jobs, key=lambda c: c.vocal.duration if c.vocal else 0.0):
            assert job.vocal is not None
            current = groups[-1] if groups else None
            if (
                current is None
                or len(current) >= self.batch_size
                or job.vocal.duration > self.settings.length_tolerance * max(current[0].vocal.duration, 1e-3)
            ):
                groups.append([job])
            else:
                current.append(job)
        return groups

    def _run_group(self, group: list[Claimed]) -> None:
        try:
            takes = self._generate(group)
        except Exception as error:
            if len(group) == 1:
                self._engine_failed(group[0], error)
                return
            log.warning("worker %s: batch of %d failed (%r); retrying one by one", self.name, len(group), error)
            for claimed in group:
                self._run_group([claimed])
            return
        self._write_and_publish(group, takes)

    def _generate(self, group: list[Claimed]) -> list[list[Take]]:
        vocals = [c.vocal for c in group if c.vocal is not None]
        options = [c.job.options.generation_options() for c in group]
        report = self._progress_reporter(group)
        metrics.WORKER_BATCH_SIZE.observe(len(group))
        start = time.perf_counter()
        takes = self.engine.accompany_batch(vocals, options, progress=report)
        metrics.WORKER_ENGINE_SECONDS.observe(time.perf_counter() - start)
        if len(takes) != len(group) or any(len(t) != o.takes for t, o in zip(takes, options, strict=True)):
            raise RuntimeError("the engine returned a different number of results than requested")
        return with_melody_checks(vocals, takes)

    def _progress_reporter(self, group: list[Claimed]) -> Callable[[float], None]:
        last = [0.0]

        def report(fraction: float) -> None:
            now = time.monotonic()
            if now - last[0] < PROGRESS_INTERVAL_S:
                return  # a fast engine must not turn into a Redis write storm
            last[0] = now
            value = f"{0.95 * min(max(fraction, 0.0), 1.0):.4f}"  # the last 5 % is writing the files
            try:  # best-effort: the client has retried already; a lost report must not fail the generation
                pipe = self.client.pipeline(transaction=False)
                for c in group:
                    self._progress(keys=[self.keys.job(c.job.id)], args=[c.attempt, value], client=pipe)
                pipe.execute()
            except redis.RedisError as error:
                last[0] = now + PROGRESS_BACKOFF_S
                log.warning("worker %s: progress report skipped (%s)", self.name, error)

        return report

    def _write_and_publish(self, group: list[Claimed], takes: list[list[Take]]) -> None:
        """Write every take of the group, then publish each job whose files are all on disk.

        The files are written by a small thread pool: each is fsynced (a result announced in Redis must
        survive a power cut), and concurrent fsyncs share the filesystem's journal commits, so a batch
        of 8 jobs does not wait for 32 sequential disk flushes (measured: the flushes took longer than
        the tiny engine's whole forward pass).
        """

        def read_statuses() -> list[str | None]:
            pipe = self.client.pipeline(transaction=False)
            for c in group:
                pipe.hget(self.keys.job(c.job.id), "status")
            return pipe.execute()

        statuses = self._when_redis_is_back(read_statuses)
        writes = {}
        with ThreadPoolExecutor(max_workers=WRITE_THREADS, thread_name_prefix="write") as pool:
            for claimed, job_takes, status in zip(group, takes, statuses, strict=True):
                if status == "running":  # cancelled or deleted while generating: write nothing
                    writes[claimed.job.id] = pool.submit(self._write_takes, claimed, job_takes)
        for claimed, job_takes in zip(group, takes, strict=True):
            future = writes.get(claimed.job.id)
            if future is None:
                self._discard(claimed, "cancelled")
                continue
            error = future.exception()
            if error is not None:
                log.error("worker %s: job %s: writing results failed: %r", self.name, claimed.job.id, error)
                self.storage.delete_attempt(claimed.job.id, claimed.attempt)
                self._fail_job(claimed, f"writing the results failed ({type(error).__name__})", final=False)
                continue
            self._publish(claimed, job_takes)

    def _write_takes(self, claimed: Claimed, takes: list[Take]) -> None:
        job_id, fmt = claimed.job.id, claimed.job.options.format
        for t in takes:
            for kind, samples in (("mix", t.mix), ("accompaniment", t.accompaniment)):
                self.storage.write_result(job_id, claimed.attempt, kind, t.take, fmt, samples, t.sample_rate)

    def _publish(self, claimed: Claimed, takes: list[Take]) -> None:
        """FINISH: results become visible only now, after every file was written."""
        job_id = claimed.job.id
        results = json.dumps([{"take": t.take, "seed": t.seed} for t in takes])
        check = takes[0].melody if takes else None
        melody = json.dumps({"coverage": check.coverage, "warnings": list(check.warnings)} if check else {})
        now = time.time()
        outcome = self._when_redis_is_back(
            lambda: self._finish(
                keys=[self.keys.job(job_id), self.keys.active(claimed.job.owner), self.keys.expiry, self.keys.queue],
                args=[
                    claimed.attempt,
                    results,
                    f"{now:.6f}",
                    f"{now + self.settings.result_ttl_s:.0f}",
                    job_id,
                    claimed.entry,
                    GROUP,
                    melody,
                ],
            )
        )
        if outcome != "succeeded":
            self._discard(claimed, outcome)
            return
        metrics.WORKER_JOBS.labels("succeeded").inc()
        log.info("worker %s: job %s succeeded (attempt %d)", self.name, job_id, claimed.attempt)

    def _when_redis_is_back(self, call: Callable[[], T]) -> T:
        """Results already computed are worth waiting for (service/outage.py)."""
        return when_redis_is_back(call, self.settings.redis_outage_wait_s, f"worker {self.name}")

    def _discard(self, claimed: Claimed, outcome: str) -> None:
        """Cancelled, deleted, or taken over by another worker meanwhile: this attempt's files are nobody's."""
        self.storage.delete_attempt(claimed.job.id, claimed.attempt)
        self._ack(claimed.entry)
        metrics.WORKER_JOBS.labels("discarded").inc()
        log.info(
            "worker %s: job %s %s, output discarded (attempt %d)", self.name, claimed.job.id, outcome, claimed.attempt
        )

    def _engine_failed(self, claimed: Claimed, error: BaseException) -> None:
        log.error("worker %s: job %s attempt %d failed: %r", self.name, claimed.job.id, claimed.attempt, error)
        final = claimed.attempt >= self.settings.max_attempts
        message = f"generation failed ({type(error).__name__}) after {claimed.attempt} attempt(s)"
        self._fail_job(claimed, message, final=final)

    def _fail_job(self, claimed: Claimed, message: str, *, final: bool) -> None:
        now = time.time()
        job = claimed.job
        outcome = self._when_redis_is_back(
            lambda: self._fail(
                keys=[
                    self.keys.job(job.id),
                    self.keys.active(job.owner),
                    self.keys.expiry,
                    self.keys.queue,
                    self.keys.dead,
                    self.keys.seq_enqueued,
                ],
                args=[
                    claimed.attempt,
                    message,
                    f"{now:.6f}",
                    f"{now + self.settings.result_ttl_s:.0f}",
                    job.id,
                    claimed.entry,
                    GROUP,
                    "1" if final else "0",
                ],
            )
        )
        metrics.WORKER_JOBS.labels("failed" if outcome == "failed" else "retried").inc()
        log.warning("worker %s: job %s -> %s: %s", self.name, job.id, outcome, message)

    def _ack(self, entry: str) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.xack(self.keys.queue, GROUP, entry)
        pipe.xdel(self.keys.queue, entry)
        pipe.execute()

    # ------------------------------------------------------------------------------- heartbeat, janitor
    def heartbeat(self) -> None:
        """Announce liveness (for /readyz) and keep our in-flight entries from looking idle."""
        seconds, micros = self.client.time()
        self.client.zadd(self.keys.workers, {self.name: seconds + micros / 1e6})
        with self._held_lock:
            held = set(self._held)
        if held:
            # Only entries the group still assigns to us: re-claiming one another worker has taken over
            # (because we stalled) would start a tug of war.
            pending = self.client.xpending_range(self.keys.queue, GROUP, "-", "+", len(held) + 16, self.name)
            mine = [p["message_id"] for p in pending if p["message_id"] in held]
            if mine:
                self.client.xclaim(self.keys.queue, GROUP, self.name, 0, mine, justid=True)
        if self.settings.heartbeat_file:
            Path(self.settings.heartbeat_file).touch()

    def _heartbeat_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.heartbeat()
            except redis.RedisError as error:
                log.warning("worker %s: heartbeat failed: %s", self.name, error)
            self._stop.wait(self.settings.heartbeat_s)

    def janitor(self) -> int:
        """Expired jobs, abandoned uploads, orphaned directories (service/janitor.py). Returns expired jobs."""
        expired = housekeeping.remove_expired(self.client, self.keys, self.storage)
        self.storage.sweep_incoming(housekeeping.INCOMING_MAX_AGE_S)
        if time.time() >= self._next_orphan_sweep:
            self.sweep_orphans()
            self._next_orphan_sweep = time.time() + housekeeping.ORPHAN_SWEEP_INTERVAL_S
        housekeeping.prune_workers(self.client, self.keys)
        if expired:
            log.info("worker %s: janitor removed %d expired job(s)", self.name, expired)
        return expired

    def sweep_orphans(self, max_age_s: float = housekeeping.ORPHAN_MAX_AGE_S) -> int:
        """Delete job directories without a Redis record, older than `max_age_s` (see service/janitor.py)."""
        removed = housekeeping.sweep_orphans(self.client, self.keys, self.storage, max_age_s)
        if removed:
            log.warning("worker %s: removed %d orphaned job directories", self.name, removed)
        return removed


def main() -> None:
    """`python -m service.worker`: a worker configured only from the environment (used by tests)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port)
    worker = Worker(settings)
    worker.install_signal_handlers()
    worker.run()


if __name__ == "__main__":
    main()
