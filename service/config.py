"""Service configuration: one pydantic-settings model read from `SINGSONG_*` environment variables.

The API, the worker and the admin CLI all build the same `Settings`, so a deployment configures every
process from one environment (docker-compose passes the same variables to each container). Defaults suit a
single machine; everything that bounds resource use (upload size, duration, queue length, quotas) is a
setting because the right numbers depend on the GPU behind the queue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024


class Settings(BaseSettings):
    """Every knob of the service. Environment variable = `SINGSONG_` + field name in upper case."""

    model_config = SettingsConfigDict(env_prefix="SINGSONG_", extra="ignore")

    # --- shared state ------------------------------------------------------------------------------
    redis_url: str = "redis://localhost:6379/0"
    #: Prefix of every Redis key, so several deployments (or test runs) can share one Redis.
    redis_prefix: str = "singsong:"
    #: Shared directory for uploads and results; the API and all workers must see the same files.
    storage_dir: Path = Path("data/service")

    # --- authentication and fairness --------------------------------------------------------------
    #: "keys": every /v1 request needs an API key. "open": no keys, every request is one anonymous owner
    #: (for a single user on localhost; never expose an open service to a network).
    auth: Literal["keys", "open"] = "keys"
    #: Token bucket per key: sustained requests per second and burst size (all /v1 requests count).
    rate_limit_per_s: float = Field(5.0, gt=0)
    rate_limit_burst: int = Field(60, ge=1)
    #: Queued + running jobs one key may have at a time (a batch must fit entirely).
    max_active_jobs: int = Field(32, ge=1)
    #: Jobs waiting in the queue (all keys together); beyond it submissions get 503 + Retry-After.
    max_queue_length: int = Field(1000, ge=1)
    quota_retry_after_s: int = Field(10, ge=1)
    queue_full_retry_after_s: int = Field(30, ge=1)

    # --- uploads ------------------------------------------------------------------------------------
    max_upload_bytes: int = Field(100 * MiB, ge=1024)
    max_seconds: float = Field(300.0, gt=0)
    #: Shorter vocals are answered 422: a click or a 10 ms tone is no performance to accompany.
    min_seconds: float = Field(1.0, ge=0)
    #: A vocal whose RMS level is below this (dBFS) is answered with 422 "the vocal is silent".
    silence_dbfs: float = -60.0
    #: Largest sample magnitude accepted (16 = +24 dBFS). Float WAVs may hold any value; real recordings
    #: run a little over full scale at most, while 1e30 is a broken or hostile file.
    max_sample_magnitude: float = Field(16.0, gt=1.0)
    max_takes: int = Field(4, ge=1, le=16)

    # --- batches ------------------------------------------------------------------------------------
    batch_max_files: int = Field(32, ge=1)
    #: Whole request body of POST /v1/batches (many files, or one zip).
    batch_max_bytes: int = Field(1024 * MiB, ge=1024)
    zip_max_entries: int = Field(256, ge=1)
    zip_max_uncompressed_bytes: int = Field(2048 * MiB, ge=1024)

    # --- slow clients (like nginx's client_header_timeout, client_body_timeout) --------------------
    #: A request's headers must arrive within this many seconds of its first byte (or of the connection).
    header_timeout_s: float = Field(20.0, gt=0)
    #: Longest wait for the next piece of an upload body; then 408 and the partial file is deleted.
    body_timeout_s: float = Field(30.0, gt=0)
    #: After `min_rate_grace_s`, an upload slower than this on average is answered 408 (0: no minimum).
    min_upload_bytes_per_s: int = Field(8192, ge=0)
    min_rate_grace_s: float = Field(10.0, ge=0)

    # --- Redis outages --------------------------------------------------------------------------------
    #: Retry-After of the 503 the API answers while Redis is unreachable.
    redis_retry_after_s: int = Field(5, ge=1)
    #: How long a worker holding finished results keeps retrying to publish them while Redis is away.
    redis_outage_wait_s: float = Field(300.0, gt=0)

    # --- results ------------------------------------------------------------------------------------
    #: Finished (succeeded, failed, cancelled) jobs and their files are deleted this long after finishing.
    result_ttl_s: int = Field(24 * 3600, ge=1)

    # --- worker -------------------------------------------------------------------------------------
    #: Engine factory, "package.module:callable"; called as callable(model_dir=..., device=...). The
    #: default is the cascade accompanist, which with no model_dir loads the model shipped in the package.
    engine: str = "pipelines.inference.accompanist:load_engine"
    model_dir: Path | None = None
    device: str = "auto"
    #: Consumer name in the Redis group; default hostname-pid. A restarted worker with the same name
    #: would see its own stale entries as pending, which XAUTOCLAIM handles either way.
    worker_name: str = ""
    #: Most jobs in one engine call (also capped by the engine's own max_batch_size).
    batch_size: int = Field(8, ge=1)
    #: Longest/shortest vocal duration allowed in one batch: padding beyond this wastes accelerator time.
    length_tolerance: float = Field(1.5, ge=1.0)
    #: After a read returned fewer jobs than batch_size, wait this long for more (0: never wait).
    batch_wait_ms: int = Field(0, ge=0)
    read_block_ms: int = Field(1000, ge=1)
    #: A pending job whose worker has not touched it for this long is taken over (XAUTOCLAIM).
    claim_min_idle_ms: int = Field(60_000, ge=1)
    heartbeat_s: float = Field(5.0, gt=0)
    #: /readyz needs a worker heartbeat younger than this.
    heartbeat_ttl_s: float = Field(30.0, gt=0)
    #: Runs of a job (crashes included) before it goes to the dead-letter stream.
    max_attempts: int = Field(3, ge=1)
    janitor_interval_s: float = Field(30.0, gt=0)
    #: Prometheus port of the worker process (0: no metrics server).
    worker_metrics_port: int = Field(0, ge=0, le=65535)
    #: File the worker touches on every heartbeat, for a container HEALTHCHECK ("" to disable).
    heartbeat_file: str = ""

    @field_validator("model_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # docker-compose passes unset variables as "" (SINGSONG_MODEL_DIR: ${SINGSONG_MODEL_DIR:-}).
        return None if value == "" else value

    @model_validator(mode="after")
    def _check_timing(self) -> Settings:
        # Running jobs are kept alive by the heartbeat; if it were slower than the takeover threshold,
        # a healthy but busy worker would have its jobs stolen mid-batch.
        if self.claim_min_idle_ms < 2 * self.heartbeat_s * 1000:
            raise ValueError("claim_min_idle_ms must be at least twice heartbeat_s (in ms)")
        return self
