"""Response models (the OpenAPI schema clients see) and their construction from job records."""

from __future__ import annotations

from pydantic import BaseModel, Field

from service.jobs import JobOptions, JobRecord, JobStatus


class ErrorBody(BaseModel):
    """Every error answer (4xx, 503): one human-readable sentence naming the problem."""

    detail: str = Field(description="what is wrong, e.g. 'vocal.wav: the vocal is silent (...)'")


#: What each status the API answers means; `error_responses` turns these into OpenAPI response entries.
ERROR_MEANINGS = {
    400: "malformed multipart body or boundary",
    401: "missing, unknown or revoked API key",
    404: "no such job or batch (or it belongs to another key)",
    408: "the client sent the body too slowly (the connection is closed)",
    409: "the job has not succeeded (yet)",
    413: "upload too large",
    415: "not audio, or not multipart/form-data",
    422: "unusable audio or invalid options",
    429: "rate limit or active-jobs quota exceeded (see Retry-After)",
    503: "queue full, storage full or Redis unreachable (see Retry-After)",
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}


def error_responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI `responses` for the given error statuses, all with an `ErrorBody`."""
    out: dict[int | str, dict] = {}
    for code in codes:
        entry: dict = {"model": ErrorBody, "description": ERROR_MEANINGS[code]}
        if code in (429, 503):
            entry["headers"] = _RETRY_AFTER
        out[code] = entry
    return out


class TakeLinks(BaseModel):
    take: int
    seed: int
    mix: str
    accompaniment: str


class JobResponse(BaseModel):
    id: str
    status: JobStatus
    progress: float = Field(description="0..1")
    queue_position: int | None = Field(None, description="1 = next to start; only while queued")
    error: str | None = None
    filename: str
    duration_s: float
    options: JobOptions
    attempts: int
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    batch_id: str | None = None
    results: list[TakeLinks] = Field(default_factory=list, description="download links, once succeeded")
    melody_coverage: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="once succeeded: share of the vocal's duration in held, pitched notes (sung vocals 0.5-0.9; "
        "speech, noise and silence below 0.3, which adds a warning)",
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="once succeeded: problems with the input that did not stop the job, e.g. 'little or no sung "
        "melody: ...' when the vocal has little or no pitched melody for the accompaniment to follow",
    )


class RejectedFile(BaseModel):
    name: str
    status: int
    error: str


class BatchJob(BaseModel):
    id: str
    name: str
    status: JobStatus | None = Field(None, description="null once the job has expired or was deleted")
    progress: float = 0.0
    error: str | None = None


class BatchResponse(BaseModel):
    id: str
    created_at: float
    counts: dict[str, int]
    jobs: list[BatchJob]
    rejected: list[RejectedFile]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    redis: bool
    live_workers: int
    problems: list[str] = Field(default_factory=list)


def job_response(job: JobRecord, delivered_seq: int | None) -> JobResponse:
    position = None
    if job.status == JobStatus.queued and delivered_seq is not None:
        position = max(1, job.seq - delivered_seq)
    results = []
    if job.status == JobStatus.succeeded:
        for r in job.results:
            query = f"?take={r.take}"
            results.append(
                TakeLinks(
                    take=r.take,
                    seed=r.seed,
                    mix=f"/v1/jobs/{job.id}/mix{query}",
                    accompaniment=f"/v1/jobs/{job.id}/accompaniment{query}",
                )
            )
    return JobResponse(
        id=job.id,
        status=job.status,
        progress=round(job.progress, 4),
        queue_position=position,
        error=job.error or None,
        filename=job.filename,
        duration_s=round(job.duration, 3),
        options=job.options,
        attempts=job.attempts,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        batch_id=job.batch or None,
        results=results,
        melody_coverage=job.melody_coverage if job.status == JobStatus.succeeded else None,
        warnings=job.warnings if job.status == JobStatus.succeeded else [],
    )
