"""Separation fixtures: fake separators, a tiny demucs model, corrupt files, a redis-server (the tiny demucs
repository and the tiny synthetic corpus are `tests/pipelines/conftest.py`'s, shared with training and evaluation)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from core.audio import save_audio

TINY_RATE = 8000


class FakeSeparator(torch.nn.Module):
    """A 'model' whose sources are fixed gains of the input: overlap-add must rebuild them exactly."""

    def __init__(
        self, sources: tuple[str, ...], gains: tuple[float, ...], segment: float = 1.0, samplerate: int = TINY_RATE
    ) -> None:
        super().__init__()
        self.sources = list(sources)
        self.gains = torch.tensor(gains, dtype=torch.float32)
        self.samplerate = samplerate
        self.audio_channels = 2
        self.segment = segment
        self.calls: list[tuple[int, ...]] = []
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # so .to()/.parameters() work

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(mix.shape))
        return self.gains[None, :, None, None] * mix[:, None]


def fake_info(model: FakeSeparator):
    from pipelines.separation.repo import ModelInfo

    return ModelInfo(
        name="fake",
        repo=None,
        sources=tuple(model.sources),
        sample_rate=model.samplerate,
        channels=2,
        segment=model.segment,
        max_segment=None,
        parameters=1,
        bag_size=1,
    )


def build_tiny(seed: int = 0, sources: tuple[str, ...] = ("vocals", "instrumental")) -> torch.nn.Module:
    from pipelines.separation.repo import build_model

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_model("hdemucs", sources=sources, channels=4, depth=3, sample_rate=TINY_RATE, segment=2.0)


@pytest.fixture
def mixtures(tmp_path: Path, tiny_corpus: Path) -> Path:
    """A plain folder of four mixtures (copies, so tests may add or damage files)."""
    folder = tmp_path / "mixtures"
    folder.mkdir()
    for i, path in enumerate(sorted(tiny_corpus.glob("*/song_*/mixture.flac"))):
        shutil.copy(path, folder / f"track{i}.flac")
    return folder


def write_corrupt(path: Path) -> Path:
    """A FLAC whose header is valid and whose frames are garbage (a damaged download)."""
    rng = np.random.default_rng(0)
    save_audio(path, rng.uniform(-0.5, 0.5, (2, 16000)).astype(np.float32), 16000)
    data = bytearray(path.read_bytes())
    data[200:] = rng.integers(0, 256, len(data) - 200, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A throwaway redis-server (Debian's) on a free port; skipped when it is not installed."""
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if binary is None:
        pytest.skip("redis-server is not installed")
    import redis

    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("redis-server did not start")
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def redis_queue_name(redis_url: str, request: pytest.FixtureRequest) -> str:
    """A queue name unique to the test, so tests never see each other's messages."""
    return f"test:{request.node.name}:{time.monotonic_ns()}"
