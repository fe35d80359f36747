"""Fixtures for the service tests: a real redis-server, settings isolated per test, the app, workers.

One redis-server (AOF on, `appendfsync always` so a SIGKILL loses nothing the test wrote) serves the whole
session on a free port with a temporary directory; every test gets its own key prefix and storage
directory, so tests cannot see each other's jobs. Tests that restart Redis start their own server.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
import soundfile as sf
import uvicorn
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.server import uvicorn_options
from service.auth import create_key
from service.config import Settings
from service.keys import Keys
from service.testing import TinyConfig, TinyEngine
from service.worker import Worker

REDIS_SERVER = shutil.which("redis-server")


REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server child process that can be killed (SIGKILL) and restarted on the same port and data."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--daemonize",
                "no",
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    break
            except redis.exceptions.BusyLoadingError:
                pass
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.directory / "redis.log").read_text()
                    raise RuntimeError(f"redis-server did not start: {log}") from None
            time.sleep(0.02)
        client.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run installs it)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()


def make_settings(redis_url: str, storage: Path, **overrides: object) -> Settings:
    """Fast timings and small limits for tests; every test gets a fresh key prefix."""
    values: dict[str, object] = dict(
        redis_url=redis_url,
        redis_prefix=f"t{uuid.uuid4().hex[:12]}:",
        storage_dir=storage,
        auth="keys",
        rate_limit_per_s=1000.0,
        rate_limit_burst=1000,
        max_upload_bytes=2 * 1024 * 1024,
        max_seconds=8.0,
        min_seconds=0.5,
        batch_max_bytes=8 * 1024 * 1024,
        zip_max_entries=16,
        zip_max_uncompressed_bytes=6 * 1024 * 1024,
        batch_max_files=8,
        heartbeat_s=0.1,
        heartbeat_ttl_s=2.0,
        claim_min_idle_ms=800,
        read_block_ms=50,
        janitor_interval_s=0.2,
        result_ttl_s=3600,
        max_attempts=3,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings_factory(redis_server: RedisServer, tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: object) -> Settings:
        return make_settings(redis_server.url, tmp_path / "storage", **overrides)

    return build


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


@pytest.fixture
def rclient(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def keys(settings: Settings) -> Keys:
    return Keys(settings.redis_prefix)


@pytest.fixture
def client_factory() -> Iterator[Callable[[Settings], TestClient]]:
    clients: list[TestClient] = []

    def build(settings: Settings) -> TestClient:
        client = TestClient(create_app(settings))
        client.__enter__()  # runs the lifespan (Redis pool)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(client_factory: Callable[[Settings], TestClient], settings: Settings) -> TestClient:
    return client_factory(settings)


@pytest.fixture
def api_key(rclient: redis.Redis, keys: Keys) -> dict[str, str]:
    key, _owner = create_key(rclient, keys, "alice")
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="session")
def engine() -> TinyEngine:
    """Shared across tests (building is cheap, but one instance keeps the call log simple to reason about:
    tests look at the calls made after they start)."""
    return TinyEngine(TinyConfig(dim=32, layers=1))


class WorkerThreads:
    def __init__(self) -> None:
        self.running: list[tuple[Worker, threading.Thread]] = []

    def start(self, settings: Settings, engine: TinyEngine, name: str | None = None) -> Worker:
        worker = Worker(settings, engine=engine, name=name or f"w-{uuid.uuid4().hex[:6]}")
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        self.running.append((worker, thread))
        return worker

    def stop_all(self) -> None:
        for worker, _ in self.running:
            worker.stop()
        for _, thread in self.running:
            thread.join(15)
        self.running.clear()


@pytest.fixture
def workers() -> Iterator[WorkerThreads]:
    threads = WorkerThreads()
    yield threads
    threads.stop_all()


# ------------------------------------------------------------------------------------------- audio
def vocal_samples(seconds: float = 1.0, sample_rate: int = 16_000, seed: int = 0, level: float = 0.1) -> np.ndarray:
    """A sung-ish tone: a vibrato sine with a few harmonics and a little breath noise, [T] float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 220 * 2 ** (rng.integers(0, 12) / 12) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    tone = sum(np.sin(k * phase) / k for k in (1, 2, 3)) + 0.05 * rng.standard_normal(len(t))
    return (level * tone / np.max(np.abs(tone))).astype(np.float32)


def write_vocal(
    path: Path, seconds: float = 1.0, sample_rate: int = 16_000, seed: int = 0, silent: bool = False, channels: int = 1
) -> Path:
    samples = np.zeros(int(seconds * sample_rate), np.float32) if silent else vocal_samples(seconds, sample_rate, seed)
    data = samples if channels == 1 else np.stack([samples] * channels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sample_rate, subtype="PCM_16")
    return path


def vocal_bytes(tmp_path: Path, seconds: float = 1.0, seed: int = 0, **kwargs: object) -> bytes:
    path = write_vocal(tmp_path / f"v{uuid.uuid4().hex[:8]}.wav", seconds, seed=seed, **kwargs)
    return path.read_bytes()


def write_speech(path: Path, seconds: float = 3.0) -> Path:
    """The start of a committed espeak-ng speech clip (tests/fixtures/speech) as 16-bit WAV: voiced, not sung."""
    speech, rate = sf.read(REPO / "tests" / "fixtures" / "speech" / "espeak-en-us.opus", dtype="float32")
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, speech[: int(seconds * rate)], rate, subtype="PCM_16")
    return path


def wait_for(predicate: Callable[[], object], timeout: float = 15.0, interval: float = 0.02) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def wait_status(api: TestClient, job_id: str, headers: dict[str, str], statuses: set[str], timeout: float = 20) -> dict:
    def check() -> dict | None:
        body = api.get(f"/v1/jobs/{job_id}", headers=headers).json()
        return body if body["status"] in statuses else None

    return wait_for(check, timeout)  # type: ignore[return-value]


def submit(api: TestClient, headers: dict[str, str], data: bytes, name: str = "vocal.wav", **fields: object):
    return api.post(
        "/v1/jobs",
        headers=headers,
        files={"audio": (name, data, "audio/wav")},
        data={k: str(v) for k, v in fields.items()},
    )


# ------------------------------------------------------------------------------------------- live server
class LiveServer:
    """uvicorn serving the app on a loopback port, in a thread (real HTTP: chunked uploads, streaming)."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning", **uvicorn_options(settings)
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def worker_subprocess(settings: Settings, model_dir: Path | None, name: str) -> subprocess.Popen:
    """`python -m service.worker` with the tiny engine, configured through the environment like production."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SINGSONG_")}
    env.update(
        {
            "SINGSONG_REDIS_URL": settings.redis_url,
            "SINGSONG_REDIS_PREFIX": settings.redis_prefix,
            "SINGSONG_STORAGE_DIR": str(settings.storage_dir),
            "SINGSONG_ENGINE": "service.testing:build_tiny_engine",
            "SINGSONG_DEVICE": "cpu",
            "SINGSONG_WORKER_NAME": name,
            "SINGSONG_HEARTBEAT_S": str(settings.heartbeat_s),
            "SINGSONG_CLAIM_MIN_IDLE_MS": str(settings.claim_min_idle_ms),
            "SINGSONG_READ_BLOCK_MS": "50",
            "SINGSONG_MAX_UPLOAD_BYTES": str(settings.max_upload_bytes),
            "SINGSONG_MAX_SECONDS": str(settings.max_seconds),
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO),
        }
    )
    if model_dir is not None:
        env["SINGSONG_MODEL_DIR"] = str(model_dir)
    return subprocess.Popen(
        [sys.executable, "-m", "service.worker"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
