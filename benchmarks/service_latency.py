"""Service latency and worker throughput, on loopback, with a private redis-server and the tiny engine.

Measures, each phase bounded to a few seconds:

1. `GET /v1/jobs/{id}` latency (p50/p99) and rate with `--clients` concurrent clients (one httpx
   AsyncClient each, keep-alive) against uvicorn in a subprocess (1 process, API-key auth on, as deployed);
2. upload latency of a ~10 MB WAV (`POST /v1/jobs`: streaming to disk, decoding for validation, enqueue);
3. queue overhead per job: `started_at - created_at` (API accepted -> a waiting worker claimed it), jobs
   submitted one at a time to an idle worker;
4. worker throughput (jobs/s, whole worker path: claim, load, engine, write, publish) at batch size 8 vs 1,
   with the default `TinyEngine` (conv encoder + 2 GRU cells of 128 units stepped autoregressively at 50
   frames/s - the per-step structure of the real cascade, not a model tuned to this benchmark).

The benchmark and the server share the machine's cores, so the client's own CPU use is inside the latency
figures. Requires redis-server.

    .venv/bin/python benchmarks/service_latency.py [--clients 200] [--duration 3] [--jobs 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import numpy as np
import redis
import soundfile as sf


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to separate server cost from client cost."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def vocal(path: Path, seconds: float, sample_rate: int = 16_000, channels: int = 1, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = 0.1 * np.sin(2 * np.pi * (220 + 20 * seed) * t) + 0.01 * rng.standard_normal(len(t))
    data = np.repeat(tone[:, None], channels, axis=1) if channels > 1 else tone
    sf.write(path, data.astype(np.float32), sample_rate, subtype="PCM_16")
    return path


def start_redis(directory: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--appendonly",
            "yes",
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(200):
        try:
            client.ping()
            return proc, url
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def start_api(env: dict[str, str], port: int) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "service.api.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proc = subprocess.Popen(cmd, env=env)
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("the API did not start")


async def poll_latency(base: str, headers: dict[str, str], job_id: str, clients: int, duration: float) -> list[float]:
    """`clients` closed-loop pollers, each its own AsyncClient and connection, created and connected before
    the clock starts (one shared SSL context: building 200 of them would dominate the measurement)."""
    latencies: list[float] = []
    errors = 0
    ssl_context = httpx.create_ssl_context()
    pool = [httpx.AsyncClient(base_url=base, headers=headers, timeout=60, verify=ssl_context) for _ in range(clients)]
    await asyncio.gather(*(c.get("/healthz") for c in pool))  # open every connection
    deadline = time.perf_counter() + duration

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            r = await client.get(f"/v1/jobs/{job_id}")
            if r.status_code == 200:
                latencies.append(time.perf_counter() - start)
            else:
                errors += 1

    await asyncio.gather(*(client_loop(c) for c in pool))
    await asyncio.gather(*(c.aclose() for c in pool))
    if errors:
        print(f"  ({errors} non-200 answers)")
    return latencies


def wait_done(client: httpx.Client, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.005)
    raise TimeoutError(job_id)


def worker_throughput(settings_kwargs: dict, vocals: list[Path], batch_size: int, threads: int) -> tuple[float, int]:
    """Enqueue all vocals with no worker running, then time one in-process worker draining the queue."""
    import torch
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.config import Settings
    from service.testing import TinyEngine
    from service.worker import Worker

    torch.set_num_threads(threads)
    prefix = f"bench-b{batch_size}-{time.time_ns()}:"
    settings = Settings(**{**settings_kwargs, "redis_prefix": prefix, "batch_size": batch_size})
    with TestClient(create_app(settings)) as api:
        for path in vocals:
            assert api.post("/v1/jobs", files={"audio": (path.name, path.read_bytes())}).status_code == 202
    engine = TinyEngine()
    worker = Worker(settings, engine=engine, name=f"bench-{batch_size}")
    worker.run_once(block=False)  # warm-up batch (first-call allocations), not timed
    start = time.perf_counter()
    handled = 0
    while n := worker.run_once(block=False):
        handled += n
    elapsed = time.perf_counter() - start
    return handled / elapsed, len(engine.calls) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of polling")
    parser.add_argument("--uploads", type=int, default=5, help="10 MB uploads to time")
    parser.add_argument("--queue-jobs", type=int, default=20, help="jobs for the queue-overhead phase")
    parser.add_argument("--jobs", type=int, default=32, help="jobs per throughput run")
    parser.add_argument("--vocal-seconds", type=float, default=2.0, help="length of the throughput vocals")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the in-process worker")
    parser.add_argument("--repeats", type=int, default=3, help="throughput runs per batch size")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed")

    work = Path(tempfile.mkdtemp(prefix="singsong-bench-"))
    redis_proc, redis_url = start_redis(work)
    port = free_port()
    common = {
        "redis_url": redis_url,
        "storage_dir": str(work / "storage"),
        "rate_limit_per_s": 1e6,
        "rate_limit_burst": 1_000_000,
        "max_active_jobs": 100_000,
        "max_queue_length": 100_000,
        "max_upload_bytes": 64 * 1024 * 1024,
        "heartbeat_s": 0.5,
        "read_block_ms": 1000,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("SINGSONG_")}
    env.update({f"SINGSONG_{k.upper()}": str(v) for k, v in common.items()})
    env.update({"SINGSONG_REDIS_PREFIX": "bench:", "SINGSONG_AUTH": "keys", "OMP_NUM_THREADS": "1"})
    api = start_api(env, port)
    worker_proc = None
    try:
        from service.auth import create_key
        from service.keys import Keys

        key, _ = create_key(redis.Redis.from_url(redis_url, decode_responses=True), Keys("bench:"), "bench")
        headers = {"Authorization": f"Bearer {key}"}
        base = f"http://127.0.0.1:{port}"
        client = httpx.Client(base_url=base, headers=headers, timeout=60)
        small = vocal(work / "small.wav", 1.0)

        # 1. status polling
        job_id = client.post("/v1/jobs", files={"audio": ("v.wav", small.read_bytes())}).json()["id"]
        single = asyncio.run(poll_latency(base, headers, job_id, 1, 1.0))  # also the warm-up
        print(
            f"GET /v1/jobs/{{id}}, 1 client: p50 {percentile(single, 50) * 1e3:.1f} ms, "
            f"p99 {percentile(single, 99) * 1e3:.1f} ms"
        )
        cpu_before = process_cpu_seconds(api.pid)
        latencies = asyncio.run(poll_latency(base, headers, job_id, args.clients, args.duration))
        server_cpu = process_cpu_seconds(api.pid) - cpu_before
        print(
            f"GET /v1/jobs/{{id}}, {args.clients} concurrent clients, {args.duration:g} s: "
            f"p50 {percentile(latencies, 50) * 1e3:.1f} ms, p99 {percentile(latencies, 99) * 1e3:.1f} ms, "
            f"{len(latencies) / args.duration:.0f} req/s (closed loop: latency ~ clients / rate); "
            f"API process CPU {server_cpu / max(1, len(latencies)) * 1e3:.2f} ms per request"
        )

        # 2. 10 MB upload
        big = vocal(work / "big.wav", 10 * 1024 * 1024 / (44_100 * 2 * 2), sample_rate=44_100, channels=2)
        times = []
        for _ in range(args.uploads):
            start = time.perf_counter()
            r = client.post("/v1/jobs", files={"audio": ("big.wav", big.read_bytes())})
            times.append(time.perf_counter() - start)
            assert r.status_code == 202, r.text
        print(
            f"POST /v1/jobs with a {big.stat().st_size / 2**20:.1f} MiB WAV ({args.uploads} uploads): "
            f"median {statistics.median(times) * 1e3:.0f} ms, max {max(times) * 1e3:.0f} ms"
        )
        redis.Redis.from_url(redis_url).flushdb()  # the queued jobs above would delay phase 3
        key, _ = create_key(redis.Redis.from_url(redis_url, decode_responses=True), Keys("bench:"), "bench")
        client.headers["Authorization"] = f"Bearer {key}"

        # 3. queue overhead: a worker subprocess waiting on XREADGROUP BLOCK
        worker_env = {**env, "SINGSONG_ENGINE": "service.testing:build_tiny_engine", "SINGSONG_DEVICE": "cpu"}
        worker_proc = subprocess.Popen(
            [sys.executable, "-m", "service.worker"],
            env=worker_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        waits = []
        for i in range(args.queue_jobs + 1):
            job = client.post("/v1/jobs", files={"audio": ("v.wav", small.read_bytes())}).json()
            done = wait_done(client, job["id"])
            if i:  # the first one includes the worker's start-up (torch import, engine build)
                waits.append(done["started_at"] - done["created_at"])
        print(
            f"queue overhead (accepted -> claimed by an idle worker), {args.queue_jobs} jobs: "
            f"p50 {percentile(waits, 50) * 1e3:.1f} ms, p99 {percentile(waits, 99) * 1e3:.1f} ms"
        )
        worker_proc.send_signal(signal.SIGTERM)
        worker_proc.wait(30)
        worker_proc = None
    finally:
        if worker_proc is not None:
            worker_proc.kill()
        api.terminate()
        api.wait(10)

    # 4. worker throughput, batch 8 vs 1
    vocals = [vocal(work / f"t{i}.wav", args.vocal_seconds * (1 + 0.02 * (i % 5)), seed=i) for i in range(args.jobs)]
    kwargs = {**common, "auth": "open"}
    rates: dict[int, list[float]] = {1: [], 8: []}
    calls = {}
    for _ in range(args.repeats):  # interleaved, so a burst of load from elsewhere hits both settings
        for batch_size in (1, 8):
            rate, calls[batch_size] = worker_throughput(kwargs, vocals, batch_size, args.threads)
            rates[batch_size].append(rate)
    for batch_size in (1, 8):
        print(
            f"worker throughput, batch {batch_size}: median {statistics.median(rates[batch_size]):.2f} jobs/s, "
            f"best {max(rates[batch_size]):.2f} ({args.repeats} runs of {args.jobs} x {args.vocal_seconds:g} s "
            f"vocals, {calls[batch_size]} engine calls each, {args.threads} torch thread(s))"
        )
    ratio_median = statistics.median(rates[8]) / statistics.median(rates[1])
    print(f"batch 8 vs batch 1: {ratio_median:.2f}x (medians), {max(rates[8]) / max(rates[1]):.2f}x (best runs)")
    redis_proc.terminate()
    redis_proc.wait(10)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
