"""Fuzz the REST API against its own OpenAPI schema with schemathesis (`--checks all`), bounded in time.

Starts what a deployment runs, on loopback and in a temporary directory: a redis-server, the API
(`python -m service serve`, API keys on) and a worker with the tiny test engine (so /readyz is ready and
jobs really finish). It mints a key, submits one real vocal and one batch so that the job and batch routes
get ids that exist (schemathesis cannot invent them: without them those routes would only answer 404), then
runs

    schemathesis run URL/openapi.json --checks all --config-file scripts/schemathesis.toml ...

and prints schemathesis's summary. Exit status: schemathesis's (0 = no failures).

    .venv/bin/python scripts/fuzz_api.py [--max-time 120] [--seed 1] [--max-examples 50]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import redis
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.auth import create_key  # noqa: E402
from service.keys import Keys  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, redis.ConnectionError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not come up within {timeout:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-time", type=int, default=120, help="schemathesis time budget in seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-examples", type=int, default=50, help="test cases per operation and phase")
    args, extra = parser.parse_known_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed")
    work = Path(tempfile.mkdtemp(prefix="fuzz-api-"))
    redis_port, api_port, prefix = free_port(), free_port(), "fuzz:"
    (work / "redis").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SINGSONG_")}
    env.update(
        SINGSONG_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        SINGSONG_REDIS_PREFIX=prefix,
        SINGSONG_STORAGE_DIR=str(work / "storage"),
        # The fuzzer is one client sending thousands of requests: lift the fairness limits, not the checks.
        SINGSONG_RATE_LIMIT_PER_S="100000",
        SINGSONG_RATE_LIMIT_BURST="100000",
        SINGSONG_MAX_ACTIVE_JOBS="100000",
        SINGSONG_ENGINE="service.testing:build_tiny_engine",
        SINGSONG_DEVICE="cpu",
        PYTHONPATH=str(REPO),
        OMP_NUM_THREADS="1",
    )
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    redis_cmd = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--dir", str(work / "redis")]
    processes = [subprocess.Popen([*redis_cmd, "--save", ""], **quiet)]
    try:
        client = redis.Redis(port=redis_port, decode_responses=True, socket_connect_timeout=1)
        wait_until(client.ping, "redis-server")
        processes.append(
            subprocess.Popen([sys.executable, "-m", "service", "serve", "--port", str(api_port)], env=env, **quiet)
        )
        processes.append(subprocess.Popen([sys.executable, "-m", "service", "worker"], env=env, **quiet))
        base = f"http://127.0.0.1:{api_port}"
        wait_until(lambda: httpx.get(base + "/readyz", timeout=2).status_code == 200, "the API and a worker")
        key, _ = create_key(client, Keys(prefix), "fuzz")
        job_id, batch_id = submit_vocal(base, key, work)
        doomed, _ = submit_vocal(base, key, work)  # DELETE gets a job of its own: the others keep theirs
        config = work / "schemathesis.toml"
        config.write_text(
            f'[parameters]\njob_id = "{job_id}"\nbatch_id = "{batch_id}"\n\n[[operations]]\n'
            f'include-name = "DELETE /v1/jobs/{{job_id}}"\nparameters = {{ job_id = "{doomed}" }}\n\n'
            + (REPO / "scripts" / "schemathesis.toml").read_text()
        )
        cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", base + "/openapi.json"]
        cmd += ["--checks", "all", "-H", f"Authorization: Bearer {key}", "--seed", str(args.seed), "--workers", "1"]
        cmd += ["--max-time", str(args.max_time), "--max-examples", str(args.max_examples), "--no-color"]
        cmd += ["--generation-database", "none", *extra]
        print("$", " ".join(c if "Bearer" not in c else "Authorization: Bearer ***" for c in cmd), flush=True)
        return subprocess.run(cmd, check=False, cwd=work).returncode  # its .schemathesis/ cache goes there too
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


def submit_vocal(base: str, key: str, work: Path) -> tuple[str, str]:
    """A real job, finished by the worker, so the download routes have results to serve; and a batch."""
    t = np.arange(32_000) / 16_000
    sf.write(work / "vocal.wav", (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16_000)
    headers = {"Authorization": f"Bearer {key}"}
    with (work / "vocal.wav").open("rb") as fh:
        job = httpx.post(base + "/v1/jobs", headers=headers, files={"audio": ("vocal.wav", fh)}, timeout=60).json()
    url = f"{base}/v1/jobs/{job['id']}"
    wait_until(lambda: httpx.get(url, headers=headers).json()["status"] == "succeeded", "the first job")
    with (work / "vocal.wav").open("rb") as fh:
        batch = httpx.post(base + "/v1/batches", headers=headers, files={"files": ("vocal.wav", fh)}, timeout=60)
    assert batch.status_code == 202, batch.text
    assert httpx.get(f"{base}/v1/batches/{batch.json()['id']}", headers=headers).status_code == 200
    return job["id"], batch.json()["id"]


if __name__ == "__main__":
    sys.exit(main())
