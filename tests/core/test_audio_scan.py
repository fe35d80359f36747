"""`scan_audio`: the same verdicts and measurements as a full `load_audio`, in memory bounded by a block."""

from __future__ import annotations

import math
import shutil
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.audio import (
    AudioTooLongError,
    CorruptAudioError,
    FileTooLargeError,
    NonFiniteAudioError,
    ZeroLengthAudioError,
    load_audio,
)
from core.audio_scan import scan_audio

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def _write(path: Path, seconds: float = 2.0, sr: int = 22_050, channels: int = 2, subtype: str = "PCM_16") -> Path:
    t = np.arange(int(seconds * sr)) / sr
    x = np.stack([0.4 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)], axis=1)
    sf.write(path, x.astype(np.float32), sr, subtype=subtype)
    return path


def _reference(path: Path) -> tuple[int, float, float]:
    audio = load_audio(path, max_seconds=None)
    rms = float(np.sqrt(np.mean(np.square(audio.samples, dtype=np.float64))))
    return audio.num_frames, rms, float(np.abs(audio.samples).max())


@pytest.mark.parametrize("suffix", ["wav", "flac", pytest.param("webm", marks=needs_ffmpeg)])
def test_measurements_equal_a_full_decode(tmp_path: Path, suffix: str) -> None:
    wav = _write(tmp_path / "src.wav")
    path = wav
    if suffix == "flac":
        path = _write(tmp_path / "a.flac")
    elif suffix == "webm":  # decoded by ffmpeg, streamed off its pipe in blocks
        path = tmp_path / "a.webm"
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "libopus", str(path)], check=True)
    frames, rms, peak = _reference(path)
    stats = scan_audio(path, block_frames=4096)  # many blocks, and a last partial one
    assert stats.num_frames == frames
    assert stats.rms == pytest.approx(rms, rel=1e-6) and stats.peak == pytest.approx(peak, rel=1e-6)
    assert stats.duration == pytest.approx(frames / stats.sample_rate)
    assert stats.rms_dbfs == pytest.approx(20 * math.log10(rms))


def test_memory_is_one_block_not_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "long.wav", seconds=60.0, sr=48_000, channels=2)  # 23 MB of float32 decoded
    tracemalloc.start()
    try:
        scan_audio(path)
        _, scan_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        load_audio(path)
        _, load_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert load_peak > 20e6  # the whole file, decoded
    assert scan_peak < 4e6, scan_peak  # a block (65536 frames x 2 channels x 4 bytes) and its float64 cast


def test_same_errors_as_load_audio(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.wav", seconds=2.0)
    with pytest.raises(FileTooLargeError):
        scan_audio(path, max_bytes=1000)
    with pytest.raises(AudioTooLongError):
        scan_audio(path, max_seconds=1.0)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(path.read_bytes()[:-5000])
    with pytest.raises(CorruptAudioError, match="truncated"):
        scan_audio(cut)
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros((0, 1), np.float32), 16_000)
    with pytest.raises(ZeroLengthAudioError):
        scan_audio(zero)
    bad = np.full(20_000, 0.1, np.float32)
    bad[15_000] = np.nan  # in the second block: every block is checked, not just the first
    sf.write(tmp_path / "nan.wav", bad, 16_000, subtype="FLOAT")
    with pytest.raises(NonFiniteAudioError):
        scan_audio(tmp_path / "nan.wav", block_frames=8192)


def test_absurd_magnitudes_are_measured(tmp_path: Path) -> None:
    x = np.full(16_000, 0.1, np.float32)
    x[8000] = -1e30  # finite, so only the peak tells
    sf.write(tmp_path / "huge.wav", x, 16_000, subtype="FLOAT")
    assert scan_audio(tmp_path / "huge.wav").peak == pytest.approx(1e30, rel=1e-6)


@needs_ffmpeg
def test_stream_without_duration_stops_at_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "live.webm"
    with path.open("wb") as out:
        source = "sine=frequency=440:duration=4:sample_rate=48000"
        cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", source, "-c:a", "libopus", "-f", "webm", "pipe:1"]
        subprocess.run(cmd, stdout=out, check=True)
    with pytest.raises(AudioTooLongError):
        scan_audio(path, max_seconds=1.0)
    assert scan_audio(path, max_seconds=None).duration == pytest.approx(4.0, abs=0.05)
