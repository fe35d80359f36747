"""Prometheus metrics of the API and the worker (separate processes, each with its own registry).

Metrics are module-level objects so that several app instances in one process (tests) share them instead
of registering duplicates. HTTP metrics are labelled by route template ("/v1/jobs/{job_id}"), never by
raw path, so the number of series stays bounded. Queue-wide gauges are read from Redis at scrape time,
because any API replica may be scraped and only Redis knows the whole queue.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("singsong_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "singsong_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UPLOAD_BYTES = Counter("singsong_upload_bytes_total", "Bytes of audio accepted")
JOBS_SUBMITTED = Counter("singsong_jobs_submitted_total", "Jobs accepted into the queue")
SUBMISSIONS_REJECTED = Counter("singsong_submissions_rejected_total", "Rejected submissions", ["reason"])

QUEUE_DEPTH = Gauge("singsong_queue_depth", "Jobs waiting for a worker")
JOBS_PENDING = Gauge("singsong_jobs_in_progress", "Jobs handed to a worker and not yet acknowledged")
DEAD_LETTERS = Gauge("singsong_dead_letters", "Entries in the dead-letter stream")
LIVE_WORKERS = Gauge("singsong_live_workers", "Workers with a recent heartbeat")

# Worker side (exported by `singsong worker` when SINGSONG_WORKER_METRICS_PORT is set).
WORKER_JOBS = Counter("singsong_worker_jobs_total", "Jobs finished by this worker", ["outcome"])
WORKER_BATCH_SIZE = Histogram(
    "singsong_worker_batch_size", "Vocals per engine call", buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32)
)
WORKER_ENGINE_SECONDS = Histogram(
    "singsong_worker_engine_seconds",
    "Seconds per engine call",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
WORKER_QUEUE_WAIT = Histogram(
    "singsong_worker_queue_wait_seconds",
    "Seconds from submission to start",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
)
