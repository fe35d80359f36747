"""/v1/jobs: submit a vocal, poll it, download the results, cancel/delete it.

Order of checks on submission, cheapest first, so that a client over its quota or facing a full queue is
told so before it has uploaded 100 MB: authentication (401) and rate limit (429), quota and queue bound
(429/503, pre-check), the upload itself (413/415, streamed), the options (422), the audio (415/422, decoded
in a thread), and finally the atomic enqueue, which re-checks quota and queue bound.

Jobs of other owners answer 404, exactly like jobs that do not exist, so ids cannot be probed.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from service import metrics
from service.api.deps import Context, context, enqueue, precheck_capacity, principal
from service.api.schemas import JobResponse, error_responses, job_response
from service.api.uploads import BodyTimeouts, VocalInfo, check_vocal, receive_multipart, reject
from service.auth import Principal
from service.jobs import JobOptions, JobRecord, JobStatus, new_job_fields
from service.storage import IncomingFile, is_job_id, new_id

#: Every /v1 route: authentication (401), invalid parameters (422, also replacing FastAPI's default 422
#: schema, since the handler in errors.py answers it as an ErrorBody too), rate limit (429), Redis or queue
#: unavailable (503).
V1_ERRORS = error_responses(401, 422, 429, 503)
router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[Depends(principal)], responses=V1_ERRORS)

FORM_OVERHEAD = 64 * 1024  # multipart boundaries, headers and option fields on top of the file itself
MEDIA_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg"}


def _option_properties() -> dict[str, Any]:
    """The options' JSON schema, bounds included, derived from `JobOptions` so the two cannot drift."""
    properties: dict[str, Any] = {}
    for name, prop in JobOptions.model_json_schema()["properties"].items():
        prop = {k: v for k, v in prop.items() if k != "title"}
        if "anyOf" in prop:  # `seed: int | None`: a form field is left out, never null
            branch = next(b for b in prop.pop("anyOf") if b.get("type") != "null")
            prop = {**branch, **{k: v for k, v in prop.items() if k != "default"}}
        properties[name] = prop
    return properties


_OPTION_PROPS = _option_properties()


def multipart_body(file_field: dict[str, Any], required: str) -> dict[str, Any]:
    """OpenAPI description of a body read by the streaming parser (FastAPI cannot infer it)."""
    schema = {"type": "object", "required": [required], "properties": {required: file_field, **_OPTION_PROPS}}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


def parse_options(fields: dict[str, str], max_takes: int) -> JobOptions:
    values = {k: v for k, v in fields.items() if v.strip() != ""}
    try:
        options = JobOptions.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in error.errors())
        raise reject(422, f"invalid options: {problems}") from None
    if options.takes > max_takes:
        raise reject(422, f"invalid options: takes: at most {max_takes} takes per job")
    return options


async def admit(
    ctx: Context,
    who: Principal,
    vocals: list[tuple[str, IncomingFile, VocalInfo]],
    options: JobOptions,
    batch_id: str = "",
) -> list[str]:
    """Move validated uploads into place and enqueue them as one unit. Returns the job ids.

    A seed is fixed here when the client gave none, so that a retry on another worker reproduces the same
    take and the seed reported back is the one that was used.
    """
    now = time.time()
    fields, job_ids = [], []
    try:
        for name, incoming, info in vocals:
            job_id = new_id()
            job_ids.append(job_id)
            seed = options.seed if options.seed is not None else secrets.randbelow(2**31 - 1)
            await run_in_threadpool(ctx.storage.adopt_input, job_id, incoming.path)
            fields.append(
                new_job_fields(
                    job_id=job_id,
                    owner=who.owner,
                    options=options.model_copy(update={"seed": seed}),
                    filename=name,
                    duration=info.duration,
                    sample_rate=info.sample_rate,
                    created_at=now,
                    batch=batch_id,
                )
            )
        await enqueue(ctx, who, fields)
    except (aioredis.ConnectionError, aioredis.TimeoutError):
        # Redis went away during the enqueue, so the script may have run. The inputs are deleted only if
        # Redis confirms that no job exists; otherwise they stay for the worker's orphan sweep (job
        # directories without a record), and an enqueued job keeps its input.
        await _discard_unless_enqueued(ctx, job_ids)
        raise
    except BaseException:
        for job_id in job_ids:
            await run_in_threadpool(ctx.storage.delete_job, job_id)
        raise
    metrics.UPLOAD_BYTES.inc(sum(incoming.size for _, incoming, _ in vocals))
    return job_ids


async def _discard_unless_enqueued(ctx: Context, job_ids: list[str]) -> None:
    try:
        exists = await ctx.redis.exists(*(ctx.keys.job(job_id) for job_id in job_ids)) if job_ids else 0
    except (aioredis.ConnectionError, aioredis.TimeoutError):
        return
    if not exists:
        for job_id in job_ids:
            await run_in_threadpool(ctx.storage.delete_job, job_id)


async def load_job(ctx: Context, who: Principal, job_id: str) -> tuple[JobRecord, int]:
    """The job (404 unless it exists and belongs to `who`) and the highest seq delivered to a worker.

    Both in one round trip: status polling is the hottest path of the API.
    """
    if not is_job_id(job_id):
        raise reject(404, "no such job")
    pipe = ctx.redis.pipeline(transaction=False)
    pipe.hgetall(ctx.keys.job(job_id))
    pipe.get(ctx.keys.seq_delivered)
    data, delivered = await pipe.execute()
    if not data or data.get("owner") != who.owner or "status" not in data:
        raise reject(404, "no such job")
    return JobRecord.from_hash(data), int(delivered or 0)


@router.post(
    "",
    status_code=202,
    response_model=JobResponse,
    summary="Submit a vocal",
    openapi_extra=multipart_body({"type": "string", "format": "binary"}, "audio"),
    responses=error_responses(400, 408, 413, 415, 422),
)
async def submit_job(request: Request, response: Response) -> JobResponse:
    """Multipart form: the vocal in a file field (`audio`), options as fields (seed, temperature, takes,
    format, ...). Answers 202 with the job; poll `GET /v1/jobs/{id}` until it has succeeded."""
    ctx, who = context(request), request.state.principal
    await precheck_capacity(ctx, who, 1)
    form = await receive_multipart(
        request,
        ctx.storage,
        max_body_bytes=ctx.settings.max_upload_bytes + FORM_OVERHEAD,
        max_files=1,
        file_limit=lambda _name: ctx.settings.max_upload_bytes,
        timeouts=BodyTimeouts.from_settings(ctx.settings),
    )
    try:
        if len(form.files) != 1:
            raise reject(422, "attach the vocal as a file field named 'audio'")
        options = parse_options(form.fields, ctx.settings.max_takes)
        upload = form.files[0]
        info = await run_in_threadpool(check_vocal, upload.incoming.path, upload.name, ctx.settings)
        [job_id] = await admit(ctx, who, [(upload.name, upload.incoming, info)], options)
    finally:
        form.discard()  # a no-op for adopted files (already moved), cleanup for everything else
    response.headers["Location"] = f"/v1/jobs/{job_id}"
    return await get_job(job_id, request)


@router.get("/{job_id}", response_model=JobResponse, summary="Job status", responses=error_responses(404))
async def get_job(job_id: str, request: Request) -> JobResponse:
    job, delivered = await load_job(context(request), request.state.principal, job_id)
    return job_response(job, delivered)


async def _download(request: Request, job_id: str, kind: str, take: int) -> FileResponse:
    ctx = context(request)
    job, _ = await load_job(ctx, request.state.principal, job_id)
    if job.status != JobStatus.succeeded:
        raise reject(409, f"the job is {job.status.value}; results exist only once it has succeeded")
    if take >= job.options.takes:
        raise reject(404, f"the job has {job.options.takes} take(s), numbered from 0")
    fmt = job.options.format
    path = ctx.storage.result_path(job.id, job.result_attempt, kind, take, fmt)
    if not path.is_file():
        raise reject(404, "the result has expired or was deleted")
    stem = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in job.filename.rsplit(".", 1)[0])
    suffix = f"-take{take}" if job.options.takes > 1 else ""
    return FileResponse(path, media_type=MEDIA_TYPES[fmt], filename=f"{stem or 'vocal'}-{kind}{suffix}.{fmt}")


_DOWNLOAD = {"response_class": FileResponse, "responses": error_responses(404, 409, 422)}


@router.get("/{job_id}/mix", summary="Download the mixed song", **_DOWNLOAD)
async def download_mix(request: Request, job_id: str, take: int = Query(0, ge=0, le=15)) -> FileResponse:
    return await _download(request, job_id, "mix", take)


@router.get("/{job_id}/accompaniment", summary="Download the accompaniment stem", **_DOWNLOAD)
async def download_accompaniment(request: Request, job_id: str, take: int = Query(0, ge=0, le=15)) -> FileResponse:
    return await _download(request, job_id, "accompaniment", take)


@router.delete(
    "/{job_id}", status_code=204, summary="Cancel a job and delete its files", responses=error_responses(404)
)
async def delete_job(job_id: str, request: Request) -> Response:
    """A queued or running job becomes `cancelled` (visible until its result TTL); a finished job is
    removed entirely. All files are deleted now; a worker still generating it discards its output."""
    ctx, who = context(request), request.state.principal
    if not is_job_id(job_id):
        raise reject(404, "no such job")
    now = time.time()
    outcome = await ctx.cancel_script(
        keys=[ctx.keys.job(job_id), ctx.keys.active(who.owner), ctx.keys.expiry],
        args=[who.owner, f"{now:.6f}", f"{now + ctx.settings.result_ttl_s:.0f}", job_id],
    )
    if outcome == "missing":
        raise reject(404, "no such job")
    await run_in_threadpool(ctx.storage.delete_job, job_id)
    return Response(status_code=204)
