"""The job record: what a job's Redis hash holds, and the options a client may set.

The hash is flat strings (Redis hashes are); `JobRecord.from_hash` turns it into typed values once, so the
API and the worker never parse fields ad hoc. Options travel as one JSON field and are validated by the
same pydantic model on submission (API) and before generation (worker), so a record written by an older
API version cannot reach the engine unchecked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipelines.inference.engine import MAX_KEY_STRENGTH, MAX_PLAN_CANDIDATES, GenerationOptions


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


TERMINAL = frozenset({JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled})


class JobOptions(BaseModel):
    """Generation options of one job (multipart form fields of POST /v1/jobs and /v1/batches).

    `allow_inf_nan=False`: "nan" and "inf" parse as floats, and NaN then fails every bound with a baffling
    "should be greater than 0"; refusing them first says what is wrong ("should be a finite number").
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="random if omitted; reported back")
    temperature: float | None = Field(None, gt=0.0, le=5.0, description="unset: the model's recommended value")
    top_k: int | None = Field(None, ge=0, le=100_000, description="unset: the model's recommended value")
    top_p: float | None = Field(None, ge=0.0, le=1.0, description="unset: the model's recommended value")
    guidance_scale: float | None = Field(None, ge=0.0, le=20.0, description="unset: the model's recommended value")
    plan_candidates: int | None = Field(
        None, ge=1, le=MAX_PLAN_CANDIDATES, description="harmony plans sampled per take, best kept; unset: the model's"
    )
    key_strength: float | None = Field(
        None, ge=0.0, le=MAX_KEY_STRENGTH, description="pull of the vocal's key on the harmony plan; unset: the model's"
    )
    takes: int = Field(1, ge=1, le=16, description="independent accompaniments (download with ?take=N)")
    format: Literal["wav", "flac", "mp3"] = Field("wav", description="format of the results")

    def generation_options(self) -> GenerationOptions:
        """The engine's options; `seed` must have been fixed (the API does that) so retries reproduce."""
        return GenerationOptions(
            seed=self.seed,
            temperature=self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            guidance_scale=self.guidance_scale,
            plan_candidates=self.plan_candidates,
            key_strength=self.key_strength,
            takes=self.takes,
        )


@dataclass
class TakeResult:
    take: int
    seed: int


@dataclass
class JobRecord:
    """A job as stored in `P job:<id>` (see service/scripts.py for the transitions)."""

    id: str
    owner: str
    status: JobStatus
    options: JobOptions
    filename: str = ""
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    progress: float = 0.0
    attempts: int = 0
    error: str = ""
    seq: int = 0
    entry: str = ""
    duration: float = 0.0
    sample_rate: int = 0
    batch: str = ""
    worker: str = ""
    result_attempt: int = 0
    results: list[TakeResult] = field(default_factory=list)
    melody_coverage: float | None = None  # set with the results (pipelines/inference/melody_check.py)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> JobRecord:
        def num(name: str, kind: type = float, default: Any = 0) -> Any:
            value = data.get(name)
            return kind(float(value)) if value not in (None, "") else default

        results = [TakeResult(**item) for item in json.loads(data.get("results") or "[]")]
        melody = json.loads(data.get("melody") or "{}")
        return cls(
            id=data["id"],
            owner=data.get("owner", ""),
            status=JobStatus(data["status"]),
            options=JobOptions.model_validate_json(data.get("options") or "{}"),
            filename=data.get("filename", ""),
            created_at=num("created_at"),
            started_at=num("started_at", default=None),
            finished_at=num("finished_at", default=None),
            progress=num("progress"),
            attempts=num("attempts", int),
            error=data.get("error", ""),
            seq=num("seq", int),
            entry=data.get("entry", ""),
            duration=num("duration"),
            sample_rate=num("sample_rate", int),
            batch=data.get("batch", ""),
            worker=data.get("worker", ""),
            result_attempt=num("result_attempt", int),
            results=results,
            melody_coverage=melody.get("coverage"),
            warnings=list(melody.get("warnings", [])),
        )


def new_job_fields(
    *,
    job_id: str,
    owner: str,
    options: JobOptions,
    filename: str,
    duration: float,
    sample_rate: int,
    created_at: float,
    batch: str = "",
) -> dict[str, str]:
    """The fields ENQUEUE writes (besides status/seq/entry/attempts/progress, which the script sets)."""
    return {
        "id": job_id,
        "owner": owner,
        "options": options.model_dump_json(),
        "filename": filename,
        "duration": f"{duration:.6f}",
        "sample_rate": str(sample_rate),
        "created_at": f"{created_at:.6f}",
        "batch": batch,
    }
