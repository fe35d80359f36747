"""API memory under large uploads (issue 12, item 3): admission must not hold decoded audio.

Scaled-down version of the issue's reproduction (benchmarks/service_hardening.py runs the full one: a zip
of twenty 100 MB 8-channel 384 kHz WAVs and three concurrent 100 MiB uploads). The API runs in this
process (LiveServer), so the figure is this process's peak resident set (VmHWM, reset through
/proc/self/clear_refs) above its resident set before the uploads. Uploads are streamed from disk, so the
client side adds little. Decoding the 20 MB files whole, as admission used to, costs ~130 MB each
(float32 samples plus their float64 squares).
"""

from __future__ import annotations

import threading
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.service.conftest import LiveServer

MiB = 1024 * 1024
RATE, CHANNELS = 384_000, 8
FILE_BYTES = 20 * MiB


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)


def _wav(path: Path, silent: bool) -> Path:
    frames = (FILE_BYTES - 1024) // (2 * CHANNELS)
    with sf.SoundFile(path, "w", RATE, CHANNELS, subtype="PCM_16") as out:
        rng = np.random.default_rng(0)
        for start in range(0, frames, RATE):  # written in blocks: the test itself must not hold it all
            n = min(RATE, frames - start)
            block = np.zeros((n, CHANNELS), np.float32) if silent else 0.1 * rng.standard_normal((n, CHANNELS))
            out.write(block.astype(np.float32))
    return path


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_api_memory_stays_flat_through_big_uploads(settings_factory, tmp_path):
    settings = settings_factory(
        auth="open",
        max_upload_bytes=24 * MiB,
        batch_max_bytes=64 * MiB,
        zip_max_uncompressed_bytes=128 * MiB,
        max_active_jobs=16,
    )
    silent = _wav(tmp_path / "silent.wav", silent=True)
    archive = tmp_path / "silent.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(4):
            zf.write(silent, f"take{i}.wav")
    loud = _wav(tmp_path / "loud.wav", silent=False)

    with LiveServer(settings) as live, httpx.Client(base_url=live.url, timeout=120) as client:
        _reset_peak()
        before = _status_kib("VmRSS")
        with archive.open("rb") as fh:
            r = client.post("/v1/batches", files={"files": ("silent.zip", fh, "application/zip")})
        assert r.status_code == 422 and r.json()["detail"].count("the vocal is silent") == 4, r.text
        answers: list[int] = []

        def upload() -> None:
            with loud.open("rb") as fh:
                answers.append(client.post("/v1/jobs", files={"audio": ("loud.wav", fh, "audio/wav")}).status_code)

        threads = [threading.Thread(target=upload) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert answers == [202, 202, 202]
        growth_mib = (_status_kib("VmHWM") - before) / 1024
    # One file decoded whole would already be ~130 MB; bounded admission stays within a few blocks.
    assert growth_mib < 60, f"peak RSS grew by {growth_mib:.0f} MiB"
