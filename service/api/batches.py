"""/v1/batches: many vocals in one request (several file fields, or one zip archive).

All files share the options. Files that fail validation are listed as rejected and the rest are
accepted; a batch where nothing is usable is answered 422. The accepted jobs are enqueued as one unit:
the whole batch must fit the key's quota and the queue bound, or nothing is queued (429/503).
"""

from __future__ import annotations

import json
import time

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from service.api.deps import context, precheck_capacity, principal
from service.api.jobs import V1_ERRORS, admit, multipart_body, parse_options
from service.api.schemas import BatchJob, BatchResponse, RejectedFile, error_responses
from service.api.uploads import BodyTimeouts, check_vocal, extract_zip, receive_multipart, reject
from service.jobs import JobStatus
from service.storage import IncomingFile, new_id

router = APIRouter(prefix="/v1/batches", tags=["batches"], dependencies=[Depends(principal)], responses=V1_ERRORS)

#: A batch record outlives its jobs' results by a week, so a client can still learn what happened.
BATCH_GRACE_S = 7 * 86_400


@router.post(
    "",
    status_code=202,
    response_model=BatchResponse,
    summary="Submit many vocals",
    openapi_extra=multipart_body(
        {"type": "array", "items": {"type": "string", "format": "binary"}, "minItems": 1}, "files"
    ),
    responses=error_responses(400, 408, 413, 415, 422),
)
async def submit_batch(request: Request) -> BatchResponse:
    """Multipart form: vocals in file fields (any field name, e.g. repeated `files`), or a single zip
    archive; options as fields, applied to every vocal."""
    ctx, who, settings = context(request), request.state.principal, context(request).settings
    await precheck_capacity(ctx, who, 1)
    form = await receive_multipart(
        request,
        ctx.storage,
        max_body_bytes=settings.batch_max_bytes,
        max_files=settings.batch_max_files,
        # a part announced as a zip may be as large as the whole batch; audio parts get the per-file limit
        file_limit=lambda name: settings.batch_max_bytes if _is_zip_name(name) else settings.max_upload_bytes,
        timeouts=BodyTimeouts.from_settings(settings),
    )
    extracted: list[tuple[str, IncomingFile]] = []
    try:
        if not form.files:
            raise reject(422, "attach vocals as file fields, or one zip archive")
        options = parse_options(form.fields, settings.max_takes)
        files = [(f.name, f.incoming) for f in form.files]
        if len(files) == 1 and _is_zip_name(files[0][0]):
            extracted = await run_in_threadpool(extract_zip, files[0][1].path, ctx.storage, settings)
            files = extracted
        accepted, rejected = [], []
        for name, incoming in files:
            if incoming.size > settings.max_upload_bytes:
                rejected.append(RejectedFile(name=name, status=413, error=f"{name}: larger than the upload limit"))
                continue
            try:
                info = await run_in_threadpool(check_vocal, incoming.path, name, settings)
            except HTTPException as error:
                rejected.append(RejectedFile(name=name, status=error.status_code, error=str(error.detail)))
                continue
            accepted.append((name, incoming, info))
        if not accepted:
            problems = "; ".join(r.error for r in rejected)
            raise reject(422, f"no usable vocal in the batch: {problems}")
        batch_id = new_id()
        job_ids = await admit(ctx, who, accepted, options, batch_id=batch_id)
    finally:
        form.discard()
        for _name, incoming in extracted:
            incoming.discard()
    now = time.time()
    jobs = [{"id": job_id, "name": name} for job_id, (name, _, _) in zip(job_ids, accepted, strict=True)]
    record = {
        "owner": who.owner,
        "created_at": f"{now:.6f}",
        "jobs": json.dumps(jobs),
        "rejected": json.dumps([r.model_dump() for r in rejected]),
    }
    pipe = ctx.redis.pipeline(transaction=True)
    pipe.hset(ctx.keys.batch(batch_id), mapping=record)
    pipe.expire(ctx.keys.batch(batch_id), settings.result_ttl_s + BATCH_GRACE_S)
    await pipe.execute()
    return await get_batch(batch_id, request)


@router.get("/{batch_id}", response_model=BatchResponse, summary="Batch status", responses=error_responses(404))
async def get_batch(batch_id: str, request: Request) -> BatchResponse:
    ctx, who = context(request), request.state.principal
    record = await ctx.redis.hgetall(ctx.keys.batch(batch_id)) if len(batch_id) == 32 else {}
    if not record or record.get("owner") != who.owner:
        raise reject(404, "no such batch")
    jobs = json.loads(record["jobs"])
    pipe = ctx.redis.pipeline(transaction=False)
    for job in jobs:
        pipe.hmget(ctx.keys.job(job["id"]), "status", "progress", "error")
    states = await pipe.execute()
    out, counts = [], {s.value: 0 for s in JobStatus}
    for job, (status, progress, error) in zip(jobs, states, strict=True):
        if status in counts:
            counts[status] += 1
        out.append(
            BatchJob(
                id=job["id"],
                name=job["name"],
                status=status if status in counts else None,
                progress=float(progress or 0),
                error=error or None,
            )
        )
    rejected = [RejectedFile(**r) for r in json.loads(record.get("rejected") or "[]")]
    created = float(record["created_at"])
    return BatchResponse(id=batch_id, created_at=created, counts=counts, jobs=out, rejected=rejected)


def _is_zip_name(name: str) -> bool:
    return name.lower().endswith(".zip")
