"""Admission checks in bounded memory: validate and measure an audio file without holding it decoded.

`load_audio` returns the whole file as float32 [C, T]; that is what generation needs, but it is the wrong
tool for deciding whether to accept an upload. A 100 MB 8-channel 384 kHz WAV decodes to 200 MB of float32,
and squaring it in float64 for a level doubles that again; a service checking a few such uploads at once
(or a zip of twenty) needs gigabytes for a yes/no answer. `scan_audio` makes the same checks as
`load_audio` (size by stat, header, declared duration, truncation, decoded length, NaN/inf) but decodes
**block by block** and keeps only running sums, so its memory is one block (`block_frames` x channels x 4
bytes, 2 MiB at 8 channels) whatever the file's length:

* libsndfile formats are read with `SoundFile.blocks`;
* everything else streams out of the same fenced-in ffmpeg command as `load_audio` uses, read from its pipe
  in blocks (`subprocess.run` would collect all of stdout first), with the same time limit.

It returns `AudioStats` (duration, RMS level, peak magnitude) so that a caller applies its own policy
(minimum duration, silence, absurd magnitudes) without a second decode.
"""

from __future__ import annotations

import contextlib
import math
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from core.audio import (
    _FFMPEG_INPUT,
    _PADDING_SLACK_S,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_SECONDS,
    FFMPEG_TIMEOUT_S,
    AudioInfo,
    _ffmpeg_binary,
    _ffmpeg_message,
    _ffmpeg_url,
    _inspect,
    _stat_size,
)
from core.audio_errors import (
    AudioTooLongError,
    CorruptAudioError,
    FileTooLargeError,
    NonFiniteAudioError,
    UnsupportedCodecError,
    ZeroLengthAudioError,
)

__all__ = ["SCAN_BLOCK_FRAMES", "AudioStats", "scan_audio"]

#: Frames per decoded block: 64 Ki frames is 2 MiB of float32 at 8 channels, ~1.5 s at 44.1 kHz.
SCAN_BLOCK_FRAMES = 65_536


@dataclass(frozen=True)
class AudioStats:
    """What a full, streamed decode measured. Levels are over all channels and frames of the file."""

    info: AudioInfo
    num_frames: int
    rms: float
    peak: float

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    @property
    def channels(self) -> int:
        return self.info.channels

    @property
    def duration(self) -> float:
        return self.num_frames / self.info.sample_rate

    @property
    def rms_dbfs(self) -> float:
        return 20 * math.log10(self.rms) if self.rms > 0 else -math.inf


def scan_audio(
    path: str | Path,
    *,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    block_frames: int = SCAN_BLOCK_FRAMES,
) -> AudioStats:
    """Decode `path` block by block and return its measurements; raise the `load_audio` errors.

    Same order of checks as `load_audio`: size (stat), header (rate, channels, declared duration, WAV
    truncation), then the decode: decoded length against the limit and the header, NaN/inf. Memory is
    O(block_frames x channels), independent of the file.
    """
    path = Path(path)
    size = _stat_size(path)
    if max_bytes is not None and size > max_bytes:
        raise FileTooLargeError(path, f"file is {size} bytes, the limit is {max_bytes}")
    info, backend = _inspect(path, size)
    if max_seconds is not None and info.duration is not None and info.duration > max_seconds:
        raise AudioTooLongError(path, f"audio lasts {info.duration:.1f} s, the limit is {max_seconds:g} s")
    # Same slack as load_audio: codec padding may take a file within the limit just past it.
    slack = 0.0 if info.duration is None else _PADDING_SLACK_S
    frame_limit = None if max_seconds is None else (max_seconds + slack) * info.sample_rate
    decode = _ffmpeg_blocks if backend == "ffmpeg" else _soundfile_blocks
    frames, square_sum, peak = 0, 0.0, 0.0
    # closing(): stopping early (a limit crossed) must end the decoder now, not when the generator is collected
    with contextlib.closing(decode(path, info, max_seconds, block_frames)) as blocks:
        for block in blocks:  # [C, n] float32
            if not np.isfinite(block).all():
                raise NonFiniteAudioError(path, "the audio contains NaN or infinite sample values")
            frames += block.shape[1]
            if frame_limit is not None and frames > frame_limit:
                raise AudioTooLongError(path, f"audio lasts more than the limit of {max_seconds:g} s")
            square_sum += float(np.einsum("ij,ij->", block, block, dtype=np.float64))
            peak = max(peak, float(np.abs(block).max(initial=0.0)))
    if frames == 0:
        raise ZeroLengthAudioError(path, "the file contains no audio frames")
    rms = math.sqrt(square_sum / (frames * info.channels))
    return AudioStats(info=info, num_frames=frames, rms=rms, peak=peak)


def _soundfile_blocks(
    path: Path, info: AudioInfo, max_seconds: float | None, block_frames: int
) -> Iterator[np.ndarray]:
    """libsndfile decode in blocks; checks frames read against frames declared, like `_read_soundfile`."""
    frames = info.num_frames or 0
    if max_seconds is not None:
        frames = min(frames, math.floor(max_seconds * info.sample_rate) + 1)
    read = 0
    try:
        with sf.SoundFile(str(path)) as fh:
            while read < frames:
                data = fh.read(min(block_frames, frames - read), dtype="float32", always_2d=True)  # [n, C]
                if data.shape[0] == 0:
                    break
                read += data.shape[0]
                yield data.T
    except sf.SoundFileError as error:
        raise CorruptAudioError(path, f"decoding failed: {error}") from None
    # MP3 frame counts are estimates without a Xing/LAME header; every other format declares its length.
    tolerance = max(4 * 1152, frames // 50) if info.format == "mp3" else 0
    if frames - read > tolerance:
        raise CorruptAudioError(path, f"truncated: {read} of {frames} declared frames could be read")


def _ffmpeg_blocks(path: Path, info: AudioInfo, max_seconds: float | None, block_frames: int) -> Iterator[np.ndarray]:
    """The `_decode_ffmpeg` command, read from its pipe one block at a time.

    stderr goes to a temporary file rather than a pipe: a pipe nobody reads while we drain stdout could
    fill up and stall ffmpeg. A timer kills ffmpeg after FFMPEG_TIMEOUT_S, which ends the read loop.
    """
    cmd = [_ffmpeg_binary("ffmpeg", path), "-nostdin", "-hide_banner", "-v", "error"]
    cmd += [*_FFMPEG_INPUT, "-i", _ffmpeg_url(path), "-map", "0:a:0", "-vn", "-sn", "-dn"]
    if max_seconds is not None:
        cmd += ["-t", f"{max_seconds + 1:.3f}"]
    cmd += ["-ac", str(info.channels), "-ar", str(info.sample_rate), "-c:a", "pcm_f32le", "-f", "f32le", "-"]
    frame_bytes = 4 * info.channels
    with tempfile.TemporaryFile() as stderr_file:
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr_file)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            process.kill()

        timer = threading.Timer(FFMPEG_TIMEOUT_S, kill)
        timer.start()
        try:
            assert process.stdout is not None
            block_bytes = block_frames * frame_bytes
            buffer = bytearray(block_bytes)  # reused: a block is valid until the next one is read
            view, filled = memoryview(buffer), 0
            while count := process.stdout.readinto(view[filled:]):
                filled += count
                if filled == block_bytes:
                    yield np.frombuffer(buffer, dtype="<f4").reshape(-1, info.channels).T
                    filled = 0
            usable = filled - filled % frame_bytes
            if usable:
                yield np.frombuffer(buffer, dtype="<f4", count=usable // 4).reshape(-1, info.channels).T
            del view  # a live memoryview would pin the buffer
            returncode = process.wait()
        finally:  # also when the caller stops early (a limit was crossed): never leave ffmpeg running
            timer.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if timed_out.is_set():
            raise CorruptAudioError(path, f"ffmpeg did not finish in {FFMPEG_TIMEOUT_S:g} s")
        stderr_file.seek(0)
        stderr = stderr_file.read().decode(errors="replace").strip()
    if returncode != 0 or stderr:
        first = _ffmpeg_message(stderr, path) or f"ffmpeg exited with status {returncode}"
        if re.search(r"decoder .*not found|unsupported codec", stderr, re.IGNORECASE):
            raise UnsupportedCodecError(path, f"cannot decode {info.codec} audio ({first})")
        raise CorruptAudioError(path, f"damaged or truncated audio ({first})")
