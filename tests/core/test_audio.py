"""Tests of the audio I/O layer.

Every fixture is generated in tmp_path: sine tones written with soundfile, browser/phone formats made by
running ffmpeg on a WAV, and damaged files made by cutting or hand-crafting bytes. Nothing binary is kept
in the repository.
"""

from __future__ import annotations

import os
import shutil
import stat
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core import audio
from core.audio import (
    Audio,
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
    load_audio,
    probe_audio,
    resample,
    safe_path,
    save_audio,
    to_channels,
    to_mono,
)
from core.errors import SingsongError

needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None, reason="ffmpeg is not installed"
)


# ------------------------------------------------------------------------------------------- helpers
def tone(freqs: tuple[float, ...] = (440.0,), sr: int = 16000, seconds: float = 1.0) -> np.ndarray:
    """[C, T] float32 sines at amplitude 0.5, one frequency per channel (so swapped channels show)."""
    t = np.arange(round(sr * seconds)) / sr
    return np.stack([0.5 * np.sin(2 * np.pi * f * t) for f in freqs]).astype(np.float32)


def peak_hz(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * sr / len(x))


def corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


def ffmpeg(src: Path, dst: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *args, str(dst)], check=True)
    return dst


def write_tone(path: Path, freqs: tuple[float, ...] = (440.0,), sr: int = 16000, seconds: float = 1.0) -> Path:
    sf.write(path, tone(freqs, sr, seconds).T, sr, subtype="PCM_16")
    return path


def truncate(path: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def wav_bytes(sample_rate: int, channels: int, frames: int = 100, format_tag: int = 1) -> bytes:
    """A hand-made 16-bit WAV, so headers libsndfile would refuse to write can be tested."""
    block = max(channels, 1) * 2
    data = b"\x00" * frames * block
    fmt = struct.pack("<HHIIHH", format_tag, channels, sample_rate, sample_rate * block, block, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def raises_for(error: type[AudioError], path: Path, call: Callable[[], object]) -> AudioError:
    """Assert `call` raises `error` about `path`, with the file name in the message."""
    with pytest.raises(error) as caught:
        call()
    assert caught.value.path.name == path.name
    assert path.name in str(caught.value)
    return caught.value


# -------------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize(
    ("suffix", "subtype", "tolerance"),
    [
        ("wav", None, 2e-4),
        ("wav", "PCM_24", 1e-6),
        ("wav", "FLOAT", 0.0),
        ("flac", None, 2e-4),
        ("flac", "PCM_24", 1e-6),
    ],
)
def test_lossless_round_trip(tmp_path: Path, suffix: str, subtype: str | None, tolerance: float) -> None:
    samples = tone((440.0, 660.0), sr=22050, seconds=0.5)
    path = save_audio(tmp_path / f"x.{suffix}", samples, 22050, subtype=subtype)
    assert sf.info(path).subtype == (subtype or "PCM_16")
    loaded = load_audio(path)
    assert loaded.samples.dtype == np.float32 and loaded.samples.shape == samples.shape
    assert loaded.sample_rate == 22050 and loaded.channels == 2 and loaded.duration == pytest.approx(0.5)
    assert np.abs(loaded.samples - samples).max() <= tolerance


@pytest.mark.parametrize("suffix", ["mp3", "ogg"])
def test_lossy_round_trip_keeps_rate_channels_length_and_content(tmp_path: Path, suffix: str) -> None:
    samples = tone((440.0, 660.0), sr=44100, seconds=1.0)
    path = save_audio(tmp_path / f"x.{suffix}", samples, 44100)
    assert probe_audio(path).format == suffix
    loaded = load_audio(path)
    assert (loaded.sample_rate, loaded.channels) == (44100, 2)
    assert abs(loaded.num_frames - samples.shape[1]) <= 1152  # at most one MP3 frame of padding
    for ch in (0, 1):
        assert corr(loaded.samples[ch], samples[ch]) > 0.95
    assert abs(corr(loaded.samples[0], samples[1])) < 0.2  # channels were not swapped or mixed


@needs_ffmpeg
def test_mp3_is_encoded_with_ffmpeg_when_libsndfile_cannot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio, "_libsndfile_can_write", lambda major, subtype: False)
    monkeypatch.setattr(audio.sf, "write", lambda *a, **k: pytest.fail("libsndfile should not be used"))
    samples = tone((440.0,), sr=44100, seconds=1.0)
    path = save_audio(tmp_path / "x.mp3", samples, 44100)
    assert probe_audio(path).format == "mp3"
    loaded = load_audio(path)
    assert loaded.sample_rate == 44100 and loaded.channels == 1
    assert peak_hz(loaded.samples[0], 44100) == pytest.approx(440.0, abs=2.0)


@needs_ffmpeg
@pytest.mark.parametrize(
    ("suffix", "codec", "format_part"),
    [("webm", "libopus", "webm"), ("m4a", "aac", "m4a"), ("mp4", "aac", "mp4"), ("aac", "aac", "aac")],
)
def test_browser_and_phone_formats_load_via_ffmpeg(tmp_path: Path, suffix: str, codec: str, format_part: str) -> None:
    src = write_tone(tmp_path / "src.wav", (440.0, 880.0), sr=48000)
    path = ffmpeg(src, tmp_path / f"x.{suffix}", "-c:a", codec)
    with pytest.raises(sf.LibsndfileError):
        sf.info(path)  # really the fallback's job
    info = probe_audio(path)
    assert format_part in info.format and info.channels == 2 and info.duration == pytest.approx(1.0, abs=0.05)
    loaded = load_audio(path, sample_rate=16000, channels=1)
    assert loaded.sample_rate == 16000 and loaded.channels == 1
    assert loaded.duration == pytest.approx(1.0, abs=0.05)
    spectrum = np.abs(np.fft.rfft(loaded.samples[0]))
    freqs = np.fft.rfftfreq(loaded.num_frames, 1 / 16000)
    top_two = sorted(freqs[np.argsort(spectrum)[-2:]])  # both channels survive the downmix
    assert top_two == pytest.approx([440.0, 880.0], abs=3.0)
    if suffix in ("m4a", "mp4"):  # header says 1.0 s, AAC padding decodes a little more: still accepted
        assert load_audio(path, max_seconds=1.0).duration > 1.0


# ---------------------------------------------------------------------------------- transformations
@pytest.mark.parametrize(("orig", "target"), [(44100, 16000), (16000, 48000), (22050, 44100)])
def test_resample_keeps_frequency_and_gives_the_right_length(orig: int, target: int) -> None:
    stereo = tone((1000.0, 3000.0), sr=orig, seconds=0.5)
    out = resample(stereo, orig, target)
    assert out.shape == (2, round(stereo.shape[1] * target / orig)) and out.dtype == np.float32
    assert peak_hz(out[0], target) == pytest.approx(1000.0, abs=target / out.shape[1] + 1)
    assert peak_hz(out[1], target) == pytest.approx(3000.0, abs=target / out.shape[1] + 1)
    mono = resample(stereo[0], orig, target)
    assert mono.ndim == 1 and np.allclose(mono, out[0], atol=1e-5)


def test_resample_same_rate_is_identity_and_rejects_bad_rates() -> None:
    x = tone()
    assert np.array_equal(resample(x, 16000, 16000), x)
    with pytest.raises(ValueError):
        resample(x, 0, 16000)


def test_channel_conversions() -> None:
    left, right = np.array([1.0, 0.5, 0.0], np.float32), np.array([0.0, 0.5, 1.0], np.float32)
    stereo = np.stack([left, right])
    assert np.array_equal(to_mono(stereo), [[0.5, 0.5, 0.5]])
    assert np.array_equal(to_channels(left, 2), [left, left])  # [T] is mono, duplicated
    assert to_channels(stereo, 2) is stereo
    six = np.stack([left] * 3 + [right] * 3)
    assert np.array_equal(to_channels(six, 2), [[0.5, 0.5, 0.5]] * 2)
    with pytest.raises(ValueError):
        to_channels(stereo, 0)


def test_load_converts_rate_and_channels(tmp_path: Path) -> None:
    stereo = write_tone(tmp_path / "stereo.wav", (500.0, 500.0), sr=44100, seconds=0.5)
    loaded = load_audio(stereo, sample_rate=16000, channels=1)
    assert loaded.samples.shape == (1, 8000) and loaded.sample_rate == 16000
    assert peak_hz(loaded.samples[0], 16000) == pytest.approx(500.0, abs=3.0)
    mono = write_tone(tmp_path / "mono.wav", sr=16000)
    up = load_audio(mono, channels=2)
    assert up.samples.shape == (2, 16000) and np.array_equal(up.samples[0], up.samples[1])
    with pytest.raises(ValueError):
        load_audio(mono, channels=3)


# -------------------------------------------------------------------------------------- bad inputs
def test_missing_and_empty_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.wav"
    error = raises_for(AudioFileNotFoundError, missing, lambda: load_audio(missing))
    assert isinstance(error, FileNotFoundError)
    empty = tmp_path / "empty.wav"
    empty.touch()
    raises_for(EmptyFileError, empty, lambda: load_audio(empty))
    raises_for(NotAudioError, tmp_path, lambda: probe_audio(tmp_path))  # a directory


@needs_ffmpeg
def test_things_that_are_not_audio(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("These are the lyrics, not a recording.\n" * 20)
    noise = tmp_path / "noise.wav"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    image = tmp_path / "cover.wav"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=red:s=16x16",
            "-frames:v",
            "1",
            "-f",
            "image2",
            "-c:v",
            "png",
            str(image),
        ],
        check=True,
    )
    video = tmp_path / "silent.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=32x32:rate=5",
            "-t",
            "0.4",
            "-c:v",
            "mpeg4",
            str(video),
        ],
        check=True,
    )
    for path in (text, noise, image, video):
        error = raises_for(NotAudioError, path, lambda p=path: load_audio(p))
        assert error.http_status == 415
    assert "no audio stream" in str(raises_for(NotAudioError, video, lambda: probe_audio(video)))


def test_truncated_wav_is_corrupt_although_libsndfile_reads_it(tmp_path: Path) -> None:
    path = truncate(write_tone(tmp_path / "cut.wav"))
    assert len(sf.read(path)[0]) > 0  # libsndfile alone would not notice
    raises_for(CorruptAudioError, path, lambda: probe_audio(path))
    raises_for(CorruptAudioError, path, lambda: load_audio(path))


def test_wav_with_unset_streaming_size_is_not_truncated(tmp_path: Path) -> None:
    data = bytearray(wav_bytes(16000, 1, frames=1600))
    data[40:44] = struct.pack("<I", 0xFFFFFFFF)  # data chunk size as left by a writer that cannot seek
    path = tmp_path / "streamed.wav"
    path.write_bytes(bytes(data))
    assert load_audio(path).num_frames == 1600


@pytest.mark.parametrize("suffix", ["flac", "mp3"])
def test_truncated_flac_and_mp3_are_corrupt(tmp_path: Path, suffix: str) -> None:
    path = save_audio(tmp_path / f"cut.{suffix}", tone(sr=16000, seconds=2.0), 16000)
    assert load_audio(path).num_frames == 32000
    truncate(path)
    raises_for(CorruptAudioError, path, lambda: load_audio(path))


@needs_ffmpeg
@pytest.mark.parametrize(("suffix", "codec"), [("webm", "libopus"), ("m4a", "aac")])
def test_truncated_ffmpeg_formats_are_corrupt(tmp_path: Path, suffix: str, codec: str) -> None:
    path = ffmpeg(write_tone(tmp_path / "src.wav", sr=48000, seconds=2.0), tmp_path / f"cut.{suffix}", "-c:a", codec)
    truncate(path)
    raises_for(CorruptAudioError, path, lambda: load_audio(path))


def test_zero_frames_and_non_finite_samples(tmp_path: Path) -> None:
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros((0, 1), np.float32), 16000)
    raises_for(ZeroLengthAudioError, zero, lambda: probe_audio(zero))
    raises_for(ZeroLengthAudioError, zero, lambda: load_audio(zero))
    for bad in (np.nan, np.inf):
        x = tone()[0]
        x[100] = bad
        path = tmp_path / f"float_{bad}.wav"
        sf.write(path, x, 16000, subtype="FLOAT")
        raises_for(NonFiniteAudioError, path, lambda p=path: load_audio(p))


@pytest.mark.parametrize(
    ("name", "sample_rate", "channels", "error"),
    [
        ("one_hz", 1, 1, InvalidSampleRateError),
        ("ten_mhz", 10_000_000, 1, InvalidSampleRateError),
        ("zero_hz", 0, 1, InvalidSampleRateError),
        ("no_channels", 16000, 0, InvalidChannelCountError),
        ("many_channels", 16000, 64, InvalidChannelCountError),
    ],
)
def test_absurd_headers(tmp_path: Path, name: str, sample_rate: int, channels: int, error: type[AudioError]) -> None:
    path = tmp_path / f"{name}.wav"
    path.write_bytes(wav_bytes(sample_rate, channels))
    raises_for(error, path, lambda: probe_audio(path))
    raises_for(error, path, lambda: load_audio(path))


@needs_ffmpeg
def test_unknown_codec_in_a_known_container(tmp_path: Path) -> None:
    path = tmp_path / "odd_codec.wav"
    path.write_bytes(wav_bytes(16000, 1, format_tag=0x1234))
    error = raises_for(UnsupportedCodecError, path, lambda: load_audio(path))
    assert error.http_status == 415


# ------------------------------------------------------------------------------------------ limits
def _forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sf.SoundFile, "read", lambda *a, **k: pytest.fail("samples were decoded"))
    monkeypatch.setattr(audio, "_decode_ffmpeg", lambda *a, **k: pytest.fail("ffmpeg decoded"))


def test_file_size_is_checked_before_opening(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_tone(tmp_path / "big.wav")
    monkeypatch.setattr(audio.sf, "info", lambda *a, **k: pytest.fail("the file was opened"))
    monkeypatch.setattr(audio, "_run", lambda *a, **k: pytest.fail("ffprobe was run"))
    error = raises_for(FileTooLargeError, path, lambda: load_audio(path, max_bytes=1000))
    assert error.http_status == 413


def test_duration_is_checked_before_decoding_wav(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_tone(tmp_path / "long.wav", seconds=2.0)
    assert load_audio(path, max_seconds=2.0).duration == 2.0  # the limit is inclusive
    _forbid_decoding(monkeypatch)
    error = raises_for(AudioTooLongError, path, lambda: load_audio(path, max_seconds=1.5))
    assert error.http_status == 413


@needs_ffmpeg
def test_duration_is_checked_before_decoding_webm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ffmpeg(write_tone(tmp_path / "src.wav", sr=48000, seconds=2.0), tmp_path / "long.webm", "-c:a", "libopus")
    _forbid_decoding(monkeypatch)
    raises_for(AudioTooLongError, path, lambda: load_audio(path, max_seconds=1.0))


@needs_ffmpeg
def test_stream_without_duration_is_decoded_with_a_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Written to a pipe, like a browser's MediaRecorder: no duration and no cues in the header.
    path = tmp_path / "live.webm"
    with path.open("wb") as out:
        source = "sine=frequency=440:duration=4:sample_rate=48000"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", source, "-c:a", "libopus", "-f", "webm", "pipe:1"],
            stdout=out,
            check=True,
        )
    assert probe_audio(path).duration is None
    commands: list[list[str]] = []
    real_run = audio._run
    monkeypatch.setattr(audio, "_run", lambda cmd, *a, **k: commands.append(cmd) or real_run(cmd, *a, **k))
    raises_for(AudioTooLongError, path, lambda: load_audio(path, max_seconds=1.0))
    decode = next(cmd for cmd in commands if Path(cmd[0]).name == "ffmpeg")
    assert decode[decode.index("-t") + 1] == "2.000"  # stopped at the limit + 1 s, not at 4 s
    assert load_audio(path, max_seconds=None).duration == pytest.approx(4.0, abs=0.05)


def test_missing_ffmpeg_is_reported_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wav = write_tone(tmp_path / "x.wav")
    other = tmp_path / "x.webm"
    other.write_bytes(b"\x1a\x45\xdf\xa3" + b"\x00" * 100)  # EBML magic: needs the fallback
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert load_audio(wav).num_frames == 16000  # libsndfile formats do not need it
    error = raises_for(FFmpegNotFoundError, other, lambda: load_audio(other))
    assert "install ffmpeg" in str(error) and error.http_status == 500


# ------------------------------------------------------------------------------------------- paths
def test_safe_path(tmp_path: Path) -> None:
    root = tmp_path / "uploads"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "secret.wav").write_bytes(b"x")
    (root / "link.wav").symlink_to(tmp_path / "secret.wav")
    assert safe_path(root, "sub/take.wav") == root.resolve() / "sub" / "take.wav"
    assert safe_path(root, "sub/../take.wav") == root.resolve() / "take.wav"
    for name in (
        "../secret.wav",
        "sub/../../secret.wav",
        str(tmp_path / "secret.wav"),
        "link.wav",
        "",
        ".",
        "a\0b",
    ):
        with pytest.raises(UnsafePathError):
            safe_path(root, name)


def test_load_audio_stays_under_root(tmp_path: Path) -> None:
    root = tmp_path / "uploads"
    root.mkdir()
    inside = write_tone(root / "take.wav")
    outside = write_tone(tmp_path / "x.wav")
    (root / "escape.wav").symlink_to(outside)
    assert load_audio("take.wav", root=root).num_frames == 16000
    assert load_audio(inside, root=root).num_frames == 16000  # absolute, but inside
    for name in ("../x.wav", outside, "escape.wav"):
        with pytest.raises(UnsafePathError) as caught:
            load_audio(name, root=root)
        assert Path(name).name in str(caught.value) and str(tmp_path) not in caught.value.problem


# ------------------------------------------------------------------------------------------ saving
def test_save_is_atomic_and_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "new" / "dir" / "out.wav"
    assert save_audio(target, tone()[0], 16000) == target  # [T] accepted, parents created
    assert os.listdir(target.parent) == ["out.wav"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # not mkstemp's 0600
    before = target.read_bytes()
    bad = tone()
    bad[0, 10] = np.nan
    raises_for(NonFiniteAudioError, target, lambda: save_audio(target, bad, 16000))
    assert target.read_bytes() == before and os.listdir(target.parent) == ["out.wav"]


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = save_audio(tmp_path / "out.flac", tone(), 16000)
    before = target.read_bytes()

    def dies_half_way(file: str, *args: object, **kwargs: object) -> None:
        Path(file).write_bytes(b"fLaC half of a file")
        assert Path(file).parent == target.parent and target.read_bytes() == before  # readers see the old
        raise OSError("No space left on device")

    monkeypatch.setattr(audio.sf, "write", dies_half_way)
    with pytest.raises(OSError, match="No space"):
        save_audio(target, tone((880.0,)), 16000)
    assert target.read_bytes() == before and os.listdir(tmp_path) == ["out.flac"]


def test_save_clips_integer_subtypes_only(tmp_path: Path) -> None:
    loud = np.array([[1.5, -1.5, 0.25] * 100], np.float32)
    pcm = load_audio(save_audio(tmp_path / "pcm.wav", loud, 16000)).samples[0, :3]
    assert pcm == pytest.approx([1.0, -1.0, 0.25], abs=1e-4)  # clipped, not wrapped around
    flt = load_audio(save_audio(tmp_path / "float.wav", loud, 16000, subtype="FLOAT")).samples[0, :3]
    assert np.array_equal(flt, [1.5, -1.5, 0.25])


def test_save_rejects_what_it_cannot_write(tmp_path: Path) -> None:
    x = tone()
    raises_for(UnsupportedFormatError, tmp_path / "x.m4a", lambda: save_audio(tmp_path / "x.m4a", x, 16000))
    raises_for(
        UnsupportedFormatError, tmp_path / "x.flac", lambda: save_audio(tmp_path / "x.flac", x, 16000, subtype="FLOAT")
    )
    raises_for(InvalidChannelCountError, tmp_path / "x.wav", lambda: save_audio(tmp_path / "x.wav", x.T, 16000))
    raises_for(InvalidSampleRateError, tmp_path / "x.wav", lambda: save_audio(tmp_path / "x.wav", x, 100))
    with pytest.raises(TypeError):
        save_audio(tmp_path / "x.wav", (x * 32767).astype(np.int16), 16000)
    assert save_audio(tmp_path / "explicit", x, 16000, format="flac").read_bytes()[:4] == b"fLaC"
    assert sorted(os.listdir(tmp_path)) == ["explicit"]


# ------------------------------------------------------------------------------------- error types
def test_error_hierarchy_and_http_statuses() -> None:
    statuses = {
        FileTooLargeError: 413,
        AudioTooLongError: 413,
        NotAudioError: 415,
        UnsupportedCodecError: 415,
        EmptyFileError: 422,
        CorruptAudioError: 422,
        ZeroLengthAudioError: 422,
        NonFiniteAudioError: 422,
        InvalidSampleRateError: 422,
        InvalidChannelCountError: 422,
        UnsafePathError: 422,
        AudioFileNotFoundError: 422,
        FFmpegNotFoundError: 500,
    }
    for cls, status in statuses.items():
        error = cls("dir/take.webm", "something is wrong")
        assert isinstance(error, SingsongError) and isinstance(error, AudioError)
        assert error.http_status == status and error.path == Path("dir/take.webm")
        assert str(error) == "dir/take.webm: something is wrong"


def test_audio_dataclass() -> None:
    a = Audio(np.zeros((2, 8000), np.float64), 16000)
    assert a.samples.dtype == np.float32 and (a.channels, a.num_frames, a.duration) == (2, 8000, 0.5)
    with pytest.raises(ValueError):
        Audio(np.zeros(8000, np.float32), 16000)
