"""Typed errors of the audio I/O layer (`core.audio`).

Every error names the file it is about (`.path`) and what is wrong with it (`.problem`); `str(error)` is
"<path>: <problem>", which is what the CLI prints. A network service should not echo server-side paths
to clients: it can build its own message from `.problem` and the name the client uploaded.

`http_status` is the status code the REST service answers with (413 content too large, 415 not audio or
an unsupported codec, 422 a well-formed request whose audio we cannot use, 500 a server-side problem).
Keeping the mapping on the class means the service needs one `except AudioError` clause, and a new error
type cannot be forgotten in a lookup table.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from core.errors import SingsongError


class AudioError(SingsongError):
    """Base class: something is wrong with an audio file, or with where it was asked to be read from."""

    http_status: ClassVar[int] = 422

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class AudioFileNotFoundError(AudioError, FileNotFoundError):
    """The file does not exist. Also a `FileNotFoundError`, so generic `except OSError` code still works."""


class EmptyFileError(AudioError):
    """The file has 0 bytes (typically an upload that was interrupted before any data arrived)."""


class NotAudioError(AudioError):
    """Not audio at all: text, an image, random bytes, a video without an audio stream, a directory."""

    http_status: ClassVar[int] = 415


class UnsupportedCodecError(AudioError):
    """The container was recognised but its audio codec cannot be decoded here."""

    http_status: ClassVar[int] = 415


class UnsupportedFormatError(AudioError):
    """`save_audio` was asked for an output format/subtype it does not write (e.g. `.m4a`, FLAC as FLOAT)."""

    http_status: ClassVar[int] = 415


class CorruptAudioError(AudioError):
    """The file is recognised as audio but is truncated or garbled."""


class ZeroLengthAudioError(AudioError):
    """The header is valid but the file contains no audio frames."""


class NonFiniteAudioError(AudioError):
    """The samples contain NaN or ±inf (possible in float WAV/FLOAT subtypes, never in integer PCM)."""


class InvalidSampleRateError(AudioError):
    """The sample rate is outside the plausible range (`MIN_SAMPLE_RATE`..`MAX_SAMPLE_RATE`)."""


class InvalidChannelCountError(AudioError):
    """The channel count is 0 or above `MAX_CHANNELS`."""


class FileTooLargeError(AudioError):
    """The file is larger than the caller's `max_bytes` (checked with stat, before opening it)."""

    http_status: ClassVar[int] = 413


class AudioTooLongError(AudioError):
    """The audio lasts longer than the caller's `max_seconds`.

    413 like `FileTooLargeError`: both mean "this upload is bigger than we accept", and a small but very
    long file (a FLAC of silence compresses ~1000:1) is exactly the case the duration limit exists for.
    """

    http_status: ClassVar[int] = 413


class UnsafePathError(AudioError):
    """A user-given name would resolve outside the directory it must stay in (`..`, absolute, symlink)."""


class FFmpegNotFoundError(AudioError):
    """The file needs the ffmpeg fallback but `ffmpeg`/`ffprobe` is not installed: a server problem."""

    http_status: ClassVar[int] = 500
