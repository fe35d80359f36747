"""`singsong pipeline separate`: a corpus of mixtures -> aligned (vocals, instrumental) pairs, resumable.

SingSong (Donahue et al., 2023, §3.1) builds its training pairs by running an off-the-shelf source separator
over a large music corpus: the separated vocals are the input, the rest of the mix is the target. This stage
does that with demucs through the cross-track batched engine (`engine.py`).

Output layout (paths in the manifest are relative to it, as everywhere in the project)::

    OUT/
        manifest.jsonl                 one line per finished track: {"id", "split", "duration", "sample_rate",
                                       "model", "source", "stems": {"vocals": ..., "instrumental": ...}}
        <key>/vocals.flac              float separation written as 16-bit FLAC (or --format wav, 16-bit)
        <key>/instrumental.flac
        <key>/separation.json          written last: marks the track finished and records how it was made

Resumable and idempotent: a track whose `separation.json` matches the current settings (model file, segment,
overlap, shifts, instrumental mode, format, seed) and whose source still has the same size and mtime is
skipped without loading it; when every track is finished the model is not even loaded. Audio files and the
marker are each written atomically (temporary file + rename), so an interrupted run leaves either no marker
(the track is redone) or a complete track. A track that cannot be read (corrupt, truncated, not audio) is
logged with its reason and skipped; the run goes on and the summary lists it.

Scale-out: `--shard i/N` (see `tracks.py`) for N independent copies over a shared filesystem, or a Redis
queue (`queue.py`): `--queue URL --enqueue` lists the input once, and any number of `--queue URL` consumers
separate whatever they claim, acknowledging each track once its marker is written.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from core.datasets import MANIFEST_NAME
from core.device import resolve_device
from core.errors import SingsongError
from pipelines.separation.engine import BatchedSeparator, SeparatedTrack, TrackJob

logger = logging.getLogger(__name__)

MARKER = "separation.json"
FAILED_MARKER = "separation.failed.json"  # an unreadable source: not retried until it changes (or --retry-failed)
STAGE_VERSION = 1


@dataclass
class SeparateOptions:
    input: Path | None
    out: Path
    model: str = "htdemucs"
    repo: Path | None = None
    device: str = "auto"
    segment: float | None = None
    overlap: float = 0.25
    shifts: int = 1
    batch_size: int = 8
    instrumental: str = "add"
    format: str = "flac"
    shard: str | None = None
    split: str | None = None
    seed: int = 0
    threads: int | None = None
    prefetch: int = 2
    max_seconds: float = 30 * 60.0
    retry_failed: bool = False
    progress: bool = True
    # queue mode
    queue: str | None = None
    queue_name: str = "singsong:separate"
    enqueue: bool = False
    requeue: bool = False
    idle_exit: float = 30.0
    claim_timeout: float = 600.0


@dataclass
class SeparationSummary:
    total: int = 0
    separated: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    failed_before: list[tuple[str, str]] = field(default_factory=list)  # known-bad sources, not retried
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    model_seconds: float = 0.0
    batches: int = 0
    model: str = ""
    model_loaded: bool = False

    @property
    def realtime_factor(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds else 0.0

    def format(self) -> str:
        text = (
            f"{self.total} tracks: {self.separated} separated, {self.skipped} already done, "
            f"{len(self.failed)} failed; {self.audio_seconds:.0f} s of audio in {self.wall_seconds:.1f} s wall"
        )
        if self.separated:
            text += f" ({self.realtime_factor:.1f}x real time, {self.batches} batches)"
        if self.failed_before:
            text += f"; {len(self.failed_before)} unreadable in an earlier run, not retried (--retry-failed)"
        for key, reason in self.failed:
            text += f"\n  failed {key}: {reason}"
        return text


# ------------------------------------------------------------------------------------------ resumability
def model_identity(name: str, repo: Path | None) -> str:
    """What identifies the model's weights: the checksummed file name for a local repository."""
    if repo is None:
        return name
    from pipelines.separation.repo import list_repo

    found = list_repo(repo).get(name)
    if found is None:
        raise SingsongError(f"{repo}: no model or bag named {name!r} (found: {', '.join(list_repo(repo)) or 'none'})")
    if found.suffix == ".yaml":  # a bag: its members' files matter too
        import yaml

        members = yaml.safe_load(found.read_text()).get("models", [])
        return f"{name}:" + ",".join(model_identity(str(m), repo) for m in members)
    return found.name


def settings_fingerprint(options: SeparateOptions) -> dict[str, Any]:
    return {
        "stage_version": STAGE_VERSION,
        "model": model_identity(options.model, options.repo),
        "segment": options.segment,
        "overlap": options.overlap,
        "shifts": options.shifts,
        "instrumental": options.instrumental,
        "format": options.format,
        "seed": options.seed,
    }


def _source_signature(path: Path) -> dict[str, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def is_finished(out: Path, job: TrackJob, fingerprint: dict[str, Any]) -> bool:
    marker = out / job.key / MARKER
    try:
        document = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return (
        document.get("settings") == fingerprint
        and document.get("source_stat") == _source_signature(job.path)
        and all((out / job.key / name).is_file() for name in document.get("files", {}).values())
    )


def known_failure(out: Path, job: TrackJob) -> str | None:
    """The error of an earlier run on this very source file (same size and mtime), else None."""
    try:
        document = json.loads((out / job.key / FAILED_MARKER).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return document.get("error") if document.get("source_stat") == _source_signature(job.path) else None


def _write_json_atomic(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True))
    os.replace(tmp, path)


def write_track(out: Path, result: SeparatedTrack, fingerprint: dict[str, Any], fmt: str) -> None:
    """Both stems (each atomically), then the marker."""
    from core.audio import save_audio

    assert result.vocals is not None and result.instrumental is not None
    folder = out / result.job.key
    files = {"vocals": f"vocals.{fmt}", "instrumental": f"instrumental.{fmt}"}
    for stem, samples in (("vocals", result.vocals), ("instrumental", result.instrumental)):
        save_audio(folder / files[stem], samples, result.sample_rate, subtype="PCM_16")
    (folder / FAILED_MARKER).unlink(missing_ok=True)
    peak = float(max(abs(result.vocals).max(), abs(result.instrumental).max()))
    _write_json_atomic(
        folder / MARKER,
        {
            "id": result.job.key,
            "split": result.job.split,
            "source": str(result.job.path),
            "source_stat": _source_signature(result.job.path),
            "settings": fingerprint,
            "files": files,
            "duration": result.duration,
            "sample_rate": result.sample_rate,
            "peak": peak,
            "clipped": peak > 1.0,
            "finished_at": time.time(),
        },
    )


def write_manifest(out: Path) -> int:
    """Rebuild OUT/manifest.jsonl from every finished track's marker; returns the number of tracks."""
    entries = []
    for marker in sorted(out.rglob(MARKER)):
        try:
            document = json.loads(marker.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        folder = marker.parent.relative_to(out).as_posix()
        entries.append(
            {
                "id": document["id"],
                "split": document.get("split"),
                "duration": document["duration"],
                "sample_rate": document["sample_rate"],
                "model": document["settings"]["model"],
                "source": document["source"],
                "stems": {stem: f"{folder}/{name}" for stem, name in document["files"].items()},
            }
        )
    entries.sort(key=lambda entry: entry["id"])
    tmp = out / f".{MANIFEST_NAME}.{os.getpid()}.tmp"
    tmp.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    os.replace(tmp, out / MANIFEST_NAME)
    return len(entries)


# ------------------------------------------------------------------------------------------ running
def build_engine(options: SeparateOptions) -> BatchedSeparator:
    from pipelines.separation.repo import load_separator

    model, info = load_separator(options.model, options.repo)
    logger.info(
        "model %s: %s, %d Hz, %.2fM parameters",
        options.model,
        "/".join(info.sources),
        info.sample_rate,
        info.parameters / 1e6,
    )
    try:
        return BatchedSeparator(
            model,
            info,
            segment=options.segment,
            overlap=options.overlap,
            shifts=options.shifts,
            batch_size=options.batch_size,
            device=resolve_device(options.device),
            instrumental=options.instrumental,
            prefetch=options.prefetch,
            seed=options.seed,
            max_seconds=options.max_seconds,
        )
    except ValueError as error:  # bad --segment/--overlap/--shifts/--batch-size for this model
        raise SingsongError(str(error)) from error


class _Writer:
    """Writes finished tracks in a background thread (encoding FLAC overlaps the next forward)."""

    def __init__(self, out: Path, fingerprint: dict[str, Any], fmt: str, max_pending: int = 4) -> None:
        self.out, self.fingerprint, self.fmt = out, fingerprint, fmt
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="separation-write")
        self.pending: deque[tuple[SeparatedTrack, Future]] = deque()
        self.max_pending = max_pending

    def submit(self, result: SeparatedTrack) -> Iterator[tuple[SeparatedTrack, BaseException | None]]:
        self.pending.append((result, self.pool.submit(write_track, self.out, result, self.fingerprint, self.fmt)))
        while len(self.pending) > self.max_pending:
            yield self._pop()

    def flush(self) -> Iterator[tuple[SeparatedTrack, BaseException | None]]:
        """Wait for every write in flight."""
        while self.pending:
            yield self._pop()

    def drain(self) -> Iterator[tuple[SeparatedTrack, BaseException | None]]:
        yield from self.flush()
        self.pool.shutdown()

    def _pop(self) -> tuple[SeparatedTrack, BaseException | None]:
        result, future = self.pending.popleft()
        return result, future.exception()


def run_separation(options: SeparateOptions) -> SeparationSummary:
    """Separate every unfinished track of `options.input` (or of the queue), as the module docstring says."""
    import torch

    from pipelines.separation.tracks import Shard, list_tracks

    if options.format not in ("flac", "wav"):
        raise SingsongError(f"--format must be flac or wav (got {options.format!r})")
    if options.threads:
        torch.set_num_threads(options.threads)
    started = time.perf_counter()
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = settings_fingerprint(options)
    summary = SeparationSummary(model=fingerprint["model"])

    queue = None
    if options.queue:
        from pipelines.separation.queue import RedisTrackQueue

        queue = RedisTrackQueue(options.queue, name=options.queue_name, claim_timeout_s=options.claim_timeout)
        if options.enqueue:
            return _enqueue(options, queue, summary, started)
        bar = tqdm(desc="tracks", unit="track", disable=not options.progress)
    else:
        if options.input is None:
            raise SingsongError("--input is required (or --queue URL to consume a queue)")
        jobs = list_tracks(options.input, shard=Shard.parse(options.shard), split=options.split)
        summary.total = len(jobs)
        todo = []
        for job in jobs:
            if is_finished(out, job, fingerprint):
                summary.skipped += 1
            elif not options.retry_failed and (error := known_failure(out, job)) is not None:
                summary.failed_before.append((job.key, error))
            else:
                todo.append(job)
        bar = tqdm(
            total=len(jobs), initial=len(jobs) - len(todo), desc="tracks", unit="track", disable=not options.progress
        )
        if not todo:  # nothing to do: do not even load the model
            bar.close()
            write_manifest(out)
            summary.wall_seconds = time.perf_counter() - started
            return summary

    engine = build_engine(options)
    summary.model_loaded = True
    writer = _Writer(out, fingerprint, options.format)
    held: dict[str, Any] = {}  # queue claims in flight, by track key

    def settle(result: SeparatedTrack, error: BaseException | None) -> None:
        claim = held.pop(result.job.key, None)
        if result.error is None and error is not None:
            # Our side failed (disk full, permissions), not the track: leave a queue claim unacknowledged so
            # that it is retried after `claim_timeout` (up to the queue's delivery limit).
            result.error = f"writing failed: {error}"
            claim = None
        if result.error is not None:
            logger.error("skipping %s (%s): %s", result.job.key, result.job.path, result.error)
            summary.failed.append((result.job.key, result.error))
            if error is None:  # the source itself is bad: remember it, so reruns do not retry it
                _write_json_atomic(
                    out / result.job.key / FAILED_MARKER,
                    {
                        "error": result.error,
                        "source": str(result.job.path),
                        "source_stat": _source_signature(result.job.path),
                        "at": time.time(),
                    },
                )
            if claim is not None and queue is not None:
                queue.fail(claim, result.error)
        else:
            summary.separated += 1
            summary.audio_seconds += result.duration
            if claim is not None and queue is not None:
                queue.ack(claim)
        bar.update(1)

    def settle_writes() -> None:
        for done, error in writer.flush():
            settle(done, error)

    source: Iterator[TrackJob | None]
    if queue is not None:
        engine.on_batch = _heartbeat(queue, held, options.claim_timeout)
        # While the queue is empty, finish (and acknowledge) the writes in flight: `drained` counts them.
        claims = _queue_jobs(queue, out, fingerprint, summary, options, bar, on_idle=settle_writes)
        source = _track_claims(claims, held)
    else:
        source = iter(todo)
    for result in engine.separate(source):
        if result.error is not None:
            settle(result, None)
            continue
        for done, error in writer.submit(result):
            settle(done, error)
    for done, error in writer.drain():
        settle(done, error)
    bar.close()
    write_manifest(out)
    summary.model_seconds = engine.stats.model_seconds
    summary.batches = engine.stats.batches
    summary.wall_seconds = time.perf_counter() - started
    if queue is not None:
        summary.total = summary.separated + summary.skipped + len(summary.failed)
    return summary


def _enqueue(options: SeparateOptions, queue: Any, summary: SeparationSummary, started: float) -> SeparationSummary:
    """Producer: list the input (this shard/split) once and enqueue what was not enqueued before."""
    from pipelines.separation.tracks import Shard, list_tracks

    if options.input is None:
        raise SingsongError("--enqueue needs --input")
    jobs = list_tracks(options.input, shard=Shard.parse(options.shard), split=options.split)
    result = queue.enqueue(jobs, requeue=options.requeue)
    summary.total, summary.skipped = len(jobs), result.duplicates
    logger.info("enqueued %d tracks (%d were already queued) on %s", result.added, result.duplicates, options.queue)
    summary.wall_seconds = time.perf_counter() - started
    return summary


def _queue_jobs(
    queue: Any,
    out: Path,
    fingerprint: dict[str, Any],
    summary: SeparationSummary,
    options: SeparateOptions,
    bar: tqdm,
    on_idle: Any,
) -> Iterator[Any]:
    """Claims from the queue as engine jobs (tagged with their claim); None when momentarily empty.

    Ends after `idle_exit` seconds without work once the queue is drained (0: never ends).
    """
    idle_since: float | None = None
    while True:
        claims = queue.claim(1, block_ms=1000 if idle_since else 0)
        if not claims:
            on_idle()
            now = time.monotonic()
            idle_since = idle_since or now
            if options.idle_exit > 0 and now - idle_since >= options.idle_exit and queue.drained():
                return
            yield None
            continue
        idle_since = None
        claim = claims[0]
        if is_finished(out, claim.job, fingerprint):
            queue.ack(claim)
            summary.skipped += 1
            bar.update(1)
            continue
        claim.job.meta["claim"] = claim
        yield claim.job


def _track_claims(source: Iterator[TrackJob | None], held: dict[str, Any]) -> Iterator[TrackJob | None]:
    for job in source:
        if job is not None:
            held[job.key] = job.meta["claim"]
        yield job


def _heartbeat(queue: Any, held: dict[str, Any], claim_timeout: float) -> Any:
    last = [time.monotonic()]

    def beat() -> None:
        now = time.monotonic()
        if held and now - last[0] > claim_timeout / 4:
            queue.touch(list(held.values()))
            last[0] = now

    return beat


__all__ = [
    "FAILED_MARKER",
    "MARKER",
    "SeparateOptions",
    "SeparationSummary",
    "is_finished",
    "known_failure",
    "run_separation",
    "settings_fingerprint",
    "write_manifest",
    "write_track",
]
