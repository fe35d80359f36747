"""Audio I/O for the whole project: probe, load, save, resample and channel conversion.

Everything returns float32 samples shaped [C, T] (channels first, always 2-D), so callers never guess
the layout. Conventions that the rest of the project relies on:

* **Two decoders.** libsndfile (via soundfile) reads WAV/FLAC/OGG/MP3 in-process, exactly and fast. Whatever
  it does not recognise - what browsers and phones upload: WebM/Opus, MP4/M4A/AAC, 3GP/AMR, CAF - goes to
  `ffmpeg` in a subprocess. The decoder is chosen by content, not by file name: soundfile's header read is
  tried first, `ffprobe` second.
* **ffmpeg is fenced in.** Uploads are untrusted, and ffmpeg demuxers such as HLS or `concat` follow
  references to other files and URLs. Both ffprobe and ffmpeg therefore run with a demuxer allow-list of
  audio containers and the `file` protocol only, and get the path as `file:<absolute path>` so a name like
  `-i` or `http:x` cannot be read as an option or URL.
* **Limits before work.** File size is checked with stat before the file is opened; duration from the
  header before samples are decoded; streams without a duration in their header (live-recorded WebM) are
  decoded with `-t max_seconds + 1` and rejected afterwards, so a hostile file cannot make us decode hours.
* **Strict about damage.** A truncated WAV reads "fine" in libsndfile (it silently shortens the data
  chunk), so the declared data-chunk size is compared with the bytes on disk; for other formats frames
  read are compared with frames declared, and any error ffmpeg prints fails the load. A singer's upload
  cut off mid-phrase should be re-sent, not silently accompanied up to the cut.
* **Atomic writes.** `save_audio` writes a hidden temporary file next to the target, fsyncs it and
  `os.replace`s it over the target, so a concurrent reader sees the old file or the new one, never half.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import stat
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import soxr

from core.audio_errors import (
    AudioError,
    AudioFileNotFoundError,
    AudioTooLongError,
    CorruptAudioError,
    EmptyFileError,
    FFmpegNotFoundError,
    FileTooLargeError,
    InvalidChannelCountError,
    InvalidSampleRateError,
    NonFiniteAudioError,
    NotAudioError,
    UnsafePathError,
    UnsupportedCodecError,
    UnsupportedFormatError,
    ZeroLengthAudioError,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_SECONDS",
    "MAX_CHANNELS",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "Audio",
    "AudioError",
    "AudioFileNotFoundError",
    "AudioInfo",
    "AudioTooLongError",
    "CorruptAudioError",
    "EmptyFileError",
    "FFmpegNotFoundError",
    "FileTooLargeError",
    "InvalidChannelCountError",
    "InvalidSampleRateError",
    "NonFiniteAudioError",
    "NotAudioError",
    "UnsafePathError",
    "UnsupportedCodecError",
    "UnsupportedFormatError",
    "ZeroLengthAudioError",
    "load_audio",
    "probe_audio",
    "resample",
    "safe_path",
    "save_audio",
    "to_channels",
    "to_mono",
]

PathLike = str | os.PathLike[str]

DEFAULT_MAX_BYTES: int = 200 * 1024 * 1024
DEFAULT_MAX_SECONDS: float = 20 * 60.0
#: Plausible sample rates: 4 kHz is below any telephone codec, 384 kHz the top of pro converters.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 4000, 384_000
MAX_CHANNELS = 8  # 7.1; anything above is a multitrack session or a corrupt header, not a vocal take

#: Demuxers ffmpeg may use (matched against names like "matroska,webm" and "mov,mp4,m4a,3gp,3g2,mj2").
FFMPEG_DEMUXERS = "wav,w64,aiff,caf,flac,ogg,mp3,aac,mov,matroska,amr,amrnb,amrwb,au,wv"
_FFMPEG_INPUT = ["-protocol_whitelist", "file", "-format_whitelist", FFMPEG_DEMUXERS]
FFMPEG_TIMEOUT_S = 300.0  # a bounded decode of 20 minutes takes seconds; beyond this ffmpeg is stuck
#: libsndfile error codes (sf_error_number) that mean "bad channel count" - no point asking ffprobe.
_SNDFILE_CHANNEL_ERRORS = {19, 32, 33, 34}
_SNDFILE_UNRECOGNISED = 1
_PADDING_SLACK_S = 0.5


@dataclass(eq=False)  # eq would compare arrays element-wise and fail on `==`; compare samples explicitly
class Audio:
    """Decoded audio. `samples`: float32 [C, T]; coerced to float32 on construction."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        self.samples = np.asarray(self.samples, dtype=np.float32)
        if self.samples.ndim != 2:
            raise ValueError(f"Audio.samples must be [C, T], got shape {self.samples.shape}")

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        return self.num_frames / self.sample_rate


@dataclass(frozen=True)
class AudioInfo:
    """What the header says, without decoding.

    `format`/`codec` use the decoder's own names: libsndfile's ("wav", "pcm_16"; "ogg", "vorbis") or
    ffmpeg's ("matroska,webm", "opus"). For ffmpeg-decoded files `num_frames` is derived from the header
    duration and may be approximate; both are None when the header has no duration (live-recorded WebM).
    """

    sample_rate: int
    channels: int
    num_frames: int | None
    duration: float | None
    format: str
    codec: str | None


# --------------------------------------------------------------------------------------------- probing
def probe_audio(path: PathLike) -> AudioInfo:
    """Read a file's header (no decoding) and validate it: rate, channels, non-empty, not truncated."""
    path = Path(path)
    return _inspect(path, _stat_size(path))[0]


def _stat_size(path: Path) -> int:
    """Size in bytes of a regular, non-empty file; typed errors otherwise. Opens nothing."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AudioFileNotFoundError(path, "no such file") from None
    if not stat.S_ISREG(st.st_mode):  # a FIFO or /dev/zero would block or never end
        raise NotAudioError(path, "not a regular file")
    if st.st_size == 0:
        raise EmptyFileError(path, "file is empty (0 bytes)")
    return st.st_size


def _inspect(path: Path, size: int) -> tuple[AudioInfo, Literal["soundfile", "ffmpeg"]]:
    try:
        sfinfo = sf.info(str(path))
    except sf.LibsndfileError as error:
        if error.code in _SNDFILE_CHANNEL_ERRORS:
            raise InvalidChannelCountError(path, f"invalid channel count ({error.error_string})") from None
        info, backend = _probe_ffmpeg(path, error), "ffmpeg"
    else:
        info = AudioInfo(
            sample_rate=sfinfo.samplerate,
            channels=sfinfo.channels,
            num_frames=sfinfo.frames,
            duration=sfinfo.frames / sfinfo.samplerate if sfinfo.samplerate > 0 else None,
            format=sfinfo.format.lower(),
            codec=sfinfo.subtype.lower(),
        )
        backend = "soundfile"
        if sfinfo.format in ("WAV", "WAVEX"):
            _check_wav_not_truncated(path, size)
    _validate_info(path, info)
    return info, backend


def _validate_info(path: Path, info: AudioInfo) -> None:
    _check_rate_and_channels(path, info.sample_rate, info.channels)
    if info.num_frames == 0:
        raise ZeroLengthAudioError(path, "the file contains no audio frames")


def _check_rate_and_channels(path: Path, sample_rate: int, channels: int, hint: str = "") -> None:
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        limits = f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE}"
        raise InvalidSampleRateError(path, f"sample rate {sample_rate} Hz is outside {limits} Hz")
    if not 1 <= channels <= MAX_CHANNELS:
        raise InvalidChannelCountError(path, f"{channels} channels (supported: 1..{MAX_CHANNELS}){hint}")


def _check_wav_not_truncated(path: Path, size: int) -> None:
    """Raise if the RIFF `data` chunk declares more bytes than the file holds.

    libsndfile clamps the frame count to what is on disk (it only logs "should be ..."), so a WAV cut off
    by an interrupted upload would otherwise load as a shorter, valid file. Sizes 0 and 0xFFFFFFFF are what
    streaming writers leave when they cannot seek back; those are not evidence of truncation.
    """
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return
        endian = "<" if head[:4] == b"RIFF" else ">"
        offset = 12
        while offset + 8 <= size:
            fh.seek(offset)
            chunk_id, chunk_size = struct.unpack(endian + "4sI", fh.read(8))
            if chunk_id == b"data":
                present = size - offset - 8
                if chunk_size not in (0, 0xFFFFFFFF) and present < chunk_size:
                    raise CorruptAudioError(
                        path, f"truncated: the data chunk declares {chunk_size} bytes, {present} are present"
                    )
                return
            offset += 8 + chunk_size + (chunk_size & 1)  # RIFF chunks are padded to even sizes


def _probe_ffmpeg(path: Path, sf_error: sf.LibsndfileError) -> AudioInfo:
    cmd = [_ffmpeg_binary("ffprobe", path), "-v", "error", "-hide_banner", *_FFMPEG_INPUT]
    cmd += ["-show_entries", "stream=codec_type,codec_name,sample_rate,channels,duration"]
    cmd += ["-show_entries", "format=format_name,duration", "-of", "json", _ffmpeg_url(path)]
    result = _run(cmd, path)
    try:
        report = json.loads(result.stdout or b"{}")
    except json.JSONDecodeError:
        report = {}
    if result.returncode != 0 or "format" not in report:
        raise _classify_probe_failure(path, result.stderr.decode(errors="replace"), sf_error)
    streams = report.get("streams", [])
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not audio:
        kinds = ", ".join(sorted({str(s.get("codec_type")) for s in streams})) or "none"
        raise NotAudioError(path, f"no audio stream (streams found: {kinds})")
    stream, fmt = audio[0], report["format"]
    codec = stream.get("codec_name")
    if codec in (None, "unknown", "none"):
        raise UnsupportedCodecError(path, f"unknown audio codec in a {fmt.get('format_name')} container")
    duration = _float_or_none(stream.get("duration")) or _float_or_none(fmt.get("duration"))
    sample_rate = int(stream.get("sample_rate") or 0)
    return AudioInfo(
        sample_rate=sample_rate,
        channels=int(stream.get("channels") or 0),
        num_frames=round(duration * sample_rate) if duration is not None else None,
        duration=duration,
        format=str(fmt.get("format_name")),
        codec=codec,
    )


def _classify_probe_failure(path: Path, stderr: str, sf_error: sf.LibsndfileError) -> AudioError:
    """Neither libsndfile nor ffprobe could open the file: say as precisely as possible why."""
    detail = _ffmpeg_message(stderr, path) or sf_error.error_string
    lowered = stderr.lower()
    if "not on whitelist" in lowered:  # ffmpeg recognised it, as something that is not an audio container
        found = re.search(r"\[(\S+) @", stderr)
        return NotAudioError(path, f"not an audio file (detected: {found[1] if found else 'other'})")
    if "sample rate" in lowered:
        return InvalidSampleRateError(path, f"invalid sample rate ({detail})")
    if "channel" in lowered:
        return InvalidChannelCountError(path, f"invalid channel count ({detail})")
    # "[demuxer @ 0x...]" means ffmpeg recognised the container and then failed inside it, as does any
    # libsndfile error other than "format not recognised": damaged audio rather than something else.
    if sf_error.code != _SNDFILE_UNRECOGNISED or re.search(r"\[\S+ @ 0x", stderr):
        return CorruptAudioError(path, f"damaged or truncated audio ({detail})")
    return NotAudioError(path, "not a recognised audio format")


# --------------------------------------------------------------------------------------------- loading
def load_audio(
    path: PathLike,
    *,
    sample_rate: int | None = None,
    channels: int | None = None,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    root: PathLike | None = None,
) -> Audio:
    """Decode a file to float32 [C, T], optionally resampled (soxr HQ) and converted to 1 or 2 channels.

    `root`: when given, `path` must resolve (symlinks included) inside it; a relative `path` is taken
    relative to `root` (as in `safe_path`), an absolute one must point inside it.
    Order of checks: path, size (stat), header (rate, channels, duration), decode, decoded length, NaN/inf.
    """
    if channels is not None and channels not in (1, 2):
        raise ValueError(f"channels must be 1 or 2, got {channels}")
    if sample_rate is not None and not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise ValueError(f"sample_rate must be in {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE}, got {sample_rate}")
    path = _resolve_under(root, path) if root is not None else Path(path)
    size = _stat_size(path)
    if max_bytes is not None and size > max_bytes:
        raise FileTooLargeError(path, f"file is {size} bytes, the limit is {max_bytes}")
    info, backend = _inspect(path, size)
    if max_seconds is not None and info.duration is not None and info.duration > max_seconds:
        raise AudioTooLongError(path, f"audio lasts {info.duration:.1f} s, the limit is {max_seconds:g} s")
    if backend == "soundfile":
        samples = _read_soundfile(path, info, max_seconds)
    else:
        samples = _decode_ffmpeg(path, info, max_seconds)
    # Codec padding (AAC adds up to 2048 samples) may take a file whose header is within the limit just
    # past it; the slack only matters if a header lied, and then by at most the 1 s the decode is bounded by.
    slack = 0.0 if info.duration is None else _PADDING_SLACK_S
    if max_seconds is not None and samples.shape[1] > (max_seconds + slack) * info.sample_rate:
        raise AudioTooLongError(path, f"audio lasts more than the limit of {max_seconds:g} s")
    if samples.shape[1] == 0:
        raise ZeroLengthAudioError(path, "the file contains no audio frames")
    if not np.isfinite(samples).all():
        raise NonFiniteAudioError(path, "the audio contains NaN or infinite sample values")
    # Downmix before resampling and duplicate after it, so soxr processes as few channels as possible.
    if channels is not None and channels < samples.shape[0]:
        samples = to_channels(samples, channels)
    if sample_rate is not None and sample_rate != info.sample_rate:
        samples = resample(samples, info.sample_rate, sample_rate)
    if channels is not None and channels != samples.shape[0]:
        samples = to_channels(samples, channels)
    return Audio(samples, sample_rate or info.sample_rate)


def _read_soundfile(path: Path, info: AudioInfo, max_seconds: float | None) -> np.ndarray:
    declared = info.num_frames or 0
    frames = declared
    if max_seconds is not None:
        frames = min(declared, math.floor(max_seconds * info.sample_rate) + 1)
    try:
        with sf.SoundFile(str(path)) as fh:
            data = fh.read(frames, dtype="float32", always_2d=True)  # [T, C]
    except sf.SoundFileError as error:
        raise CorruptAudioError(path, f"decoding failed: {error}") from None
    # MP3 frame counts are estimates when there is no Xing/LAME header (off by a few hundred samples);
    # every other libsndfile format declares its length exactly.
    tolerance = max(4 * 1152, frames // 50) if info.format == "mp3" else 0
    if frames - data.shape[0] > tolerance:
        raise CorruptAudioError(path, f"truncated: {data.shape[0]} of {frames} declared frames could be read")
    return np.ascontiguousarray(data.T)


def _decode_ffmpeg(path: Path, info: AudioInfo, max_seconds: float | None) -> np.ndarray:
    """ffmpeg to interleaved float32 on a pipe, at the stream's own rate and channel count (soxr does
    resampling, for the same quality on every path). Any message ffmpeg prints at level "error" fails."""
    cmd = [_ffmpeg_binary("ffmpeg", path), "-nostdin", "-hide_banner", "-v", "error"]
    cmd += [*_FFMPEG_INPUT, "-i", _ffmpeg_url(path), "-map", "0:a:0", "-vn", "-sn", "-dn"]
    if max_seconds is not None:  # bounds the work even when the header has no duration
        cmd += ["-t", f"{max_seconds + 1:.3f}"]
    cmd += ["-ac", str(info.channels), "-ar", str(info.sample_rate), "-c:a", "pcm_f32le", "-f", "f32le", "-"]
    result = _run(cmd, path)
    stderr = result.stderr.decode(errors="replace").strip()
    if result.returncode != 0 or stderr:
        first = _ffmpeg_message(stderr, path) or f"ffmpeg exited with status {result.returncode}"
        if re.search(r"decoder .*not found|unsupported codec", stderr, re.IGNORECASE):
            raise UnsupportedCodecError(path, f"cannot decode {info.codec} audio ({first})")
        raise CorruptAudioError(path, f"damaged or truncated audio ({first})")
    data = np.frombuffer(result.stdout, dtype="<f4")
    data = data[: data.size - data.size % info.channels].reshape(-1, info.channels)
    return np.ascontiguousarray(data.T, dtype=np.float32)  # copies: the bytes buffer is read-only


def _ffmpeg_binary(name: str, path: Path) -> str:
    found = shutil.which(name)
    if found is None:
        raise FFmpegNotFoundError(
            path, f"reading/writing this format needs `{name}`, which is not installed: install ffmpeg"
        )
    return found


def _ffmpeg_url(path: Path) -> str:
    return "file:" + str(path.absolute())


def _ffmpeg_message(stderr: str, path: Path) -> str:
    """First line of ffmpeg's stderr, without the absolute path or memory addresses (messages may reach
    a client of the service)."""
    lines = stderr.strip().splitlines()
    first = lines[0].replace(_ffmpeg_url(path), path.name) if lines else ""
    return re.sub(r" @ 0x[0-9a-f]+", "", first)


def _run(cmd: list[str], path: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(cmd, input=stdin, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        tool = Path(cmd[0]).name
        raise CorruptAudioError(path, f"{tool} did not finish in {FFMPEG_TIMEOUT_S:g} s") from None


def _float_or_none(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # ffprobe writes "N/A" or omits the field
        return None
    return number if math.isfinite(number) and number > 0 else None


# --------------------------------------------------------------------------------------------- writing
#: format -> (libsndfile major format, default subtype, allowed subtypes, ffmpeg encoder options).
_WRITE_FORMATS: dict[str, tuple[str, str, frozenset[str], list[str]]] = {
    "wav": ("WAV", "PCM_16", frozenset({"PCM_16", "PCM_24", "PCM_32", "FLOAT"}), []),
    "flac": ("FLAC", "PCM_16", frozenset({"PCM_16", "PCM_24"}), []),
    "ogg": ("OGG", "VORBIS", frozenset({"VORBIS", "OPUS"}), ["-c:a", "libvorbis", "-q:a", "6"]),
    "mp3": ("MP3", "MPEG_LAYER_III", frozenset({"MPEG_LAYER_III"}), ["-c:a", "libmp3lame", "-q:a", "2"]),
}


def save_audio(
    path: PathLike,
    samples: np.ndarray,
    sample_rate: int,
    *,
    format: str | None = None,
    subtype: str | None = None,
) -> Path:
    """Write float samples ([C, T] or [T]) atomically; returns the path written.

    `format` defaults to the suffix (wav, flac, ogg, mp3); `subtype` to PCM_16 for wav/flac. Integer
    subtypes clip to [-1, 1] first (libsndfile's own handling of out-of-range floats depends on its version
    and SFC_SET_CLIPPING - old versions wrapped 1.1 around to -0.9); float and lossy ones keep the values.
    MP3/OGG go through ffmpeg when the bundled libsndfile cannot write them. Parent directories are created.
    Refuses NaN/inf (NonFiniteAudioError) before touching the disk.
    """
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt not in _WRITE_FORMATS:
        supported = ", ".join(_WRITE_FORMATS)
        raise UnsupportedFormatError(path, f"cannot write {fmt!r} audio (supported: {supported})")
    major, default_subtype, allowed, ffmpeg_codec = _WRITE_FORMATS[fmt]
    subtype = (subtype or default_subtype).upper()
    if subtype not in allowed:
        raise UnsupportedFormatError(path, f"{fmt} cannot be written as {subtype} (use {sorted(allowed)})")
    data = np.asarray(samples)
    if not np.issubdtype(data.dtype, np.floating):
        raise TypeError(f"save_audio expects float samples in [-1, 1], got dtype {data.dtype}")
    data = np.atleast_2d(data).astype(np.float32, copy=False)
    if data.ndim != 2:
        raise ValueError(f"save_audio expects [C, T] or [T] samples, got shape {data.shape}")
    # [T, C] passed for [C, T] lands here too, hence the shape in the message.
    _check_rate_and_channels(path, sample_rate, data.shape[0], f"; samples must be [C, T], got {data.shape}")
    if not np.isfinite(data).all():
        raise NonFiniteAudioError(path, "refusing to write NaN or infinite sample values")
    if subtype.startswith("PCM"):
        data = np.clip(data, -1.0, 1.0)

    path.parent.mkdir(parents=True, exist_ok=True)
    # Hidden name in the same directory: os.replace is atomic only within one filesystem, and globbing
    # writers/readers ("*.wav") do not pick up the half-written file.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if _libsndfile_can_write(major, subtype):
            try:
                sf.write(str(tmp), data.T, sample_rate, format=major, subtype=subtype)
            except sf.LibsndfileError as error:  # e.g. Opus or MP3 at a rate the codec does not support
                problem = f"cannot write {fmt}/{subtype} at {sample_rate} Hz: {error}"
                raise UnsupportedFormatError(path, problem) from None
        else:
            _encode_ffmpeg(path, tmp, data, sample_rate, fmt, ffmpeg_codec)
        # mkstemp creates 0600; keep an existing file's mode, else the usual 0644.
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync(path.parent)  # make the rename itself durable
    return path


def _libsndfile_can_write(major: str, subtype: str) -> bool:
    return sf.check_format(major, subtype)


def _encode_ffmpeg(path: Path, tmp: Path, data: np.ndarray, rate: int, fmt: str, codec: list[str]) -> None:
    """[C, T] float32 -> `tmp` in `fmt`, piping interleaved float32 into ffmpeg."""
    if not codec:
        raise UnsupportedFormatError(path, f"this libsndfile cannot write {fmt}")
    cmd = [_ffmpeg_binary("ffmpeg", path), "-hide_banner", "-v", "error", "-f", "f32le", "-ar", str(rate)]
    cmd += ["-ac", str(data.shape[0]), "-i", "pipe:0", *codec, "-f", fmt, "-y", _ffmpeg_url(tmp)]
    result = _run(cmd, path, stdin=np.ascontiguousarray(data.T, dtype="<f4").tobytes())
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace").strip()
        raise UnsupportedFormatError(path, f"ffmpeg could not encode {fmt}: {stderr}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------ transformations
def resample(samples: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample [C, T] or [T] float audio with soxr (HQ). Output length is round(T * target_sr / orig_sr).

    Returns the input (as float32, not copied) when the rates are equal.
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim not in (1, 2):
        raise ValueError(f"expected [C, T] or [T] samples, got shape {x.shape}")
    if orig_sr == target_sr:
        return x
    if x.ndim == 1:
        return soxr.resample(x, orig_sr, target_sr, quality="HQ")
    # soxr wants frames first ([T, C]); transposing there and back keeps channels independent.
    out = soxr.resample(np.ascontiguousarray(x.T), orig_sr, target_sr, quality="HQ")
    return np.ascontiguousarray(out.T)


def to_channels(samples: np.ndarray, channels: int) -> np.ndarray:
    """[C, T] (or [T], taken as mono) -> [channels, T].

    To mono: the mean of all channels (not the sum, which could clip). From mono: the channel repeated.
    Between two multichannel layouts (e.g. 6 -> 2) there is no one right mapping, so this downmixes to
    mono and repeats; for a sung vocal, keeping the centre channel matters more than the stereo image.
    """
    if not 1 <= channels <= MAX_CHANNELS:
        raise ValueError(f"channels must be in 1..{MAX_CHANNELS}, got {channels}")
    x = np.asarray(samples)
    x = x[np.newaxis, :] if x.ndim == 1 else x
    if x.ndim != 2:
        raise ValueError(f"expected [C, T] or [T] samples, got shape {x.shape}")
    if x.shape[0] == channels:
        return x
    mono = x if x.shape[0] == 1 else x.mean(axis=0, keepdims=True)
    return mono if channels == 1 else np.repeat(mono, channels, axis=0)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """[C, T] or [T] -> [1, T], the mean of the channels."""
    return to_channels(samples, 1)


# --------------------------------------------------------------------------------------------- paths
def safe_path(root: PathLike, name: PathLike) -> Path:
    """Join an untrusted relative `name` under `root`; return the resolved path, or raise UnsafePathError.

    Absolute names, `..` that climbs out, and symlinks (already on disk) that point outside are refused;
    `..` that stays inside is allowed. The check resolves symlinks now: a link swapped in later is not
    caught, so never let untrusted users create links inside `root`.
    """
    text = os.fspath(name)
    if not text or "\x00" in text or Path(text).is_absolute():
        raise UnsafePathError(text or "<empty>", "only a non-empty relative file name is accepted")
    return _resolve_under(root, text)


def _resolve_under(root: PathLike, path: PathLike) -> Path:
    base = Path(root).resolve()
    candidate = (base / path).resolve()  # an absolute `path` replaces `base` in the join
    if candidate == base or not candidate.is_relative_to(base):
        raise UnsafePathError(path, "resolves outside the directory it must stay in")
    return candidate
