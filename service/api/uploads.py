"""Receiving uploads: a streaming multipart reader, vocal validation, and safe zip extraction.

* **Streaming, bounded.** FastAPI's `UploadFile` would only hand us the file after Starlette had spooled
  all of it to a temporary file, so the size limit could only be checked afterwards. Instead the request
  body is fed chunk by chunk into python-multipart's push parser, and each file part is written straight to
  `storage/incoming/` while its bytes are counted: the request is answered 413 as soon as a limit is
  crossed, with nothing held in memory beyond one network chunk. A declared Content-Length over the limit
  is refused before reading anything.
* **Slow clients** (slowloris bodies): each wait for the next chunk is bounded (`body_timeout_s`), and after a
  grace period the average rate must stay above `min_upload_bytes_per_s`, like nginx's
  `client_body_timeout`; a slower client gets 408, its connection is closed and its partial file deleted.
  (Slow *headers* are the server protocol's business: see server.py.)
* **Validation in bounded memory**: `check_vocal` uses `core.audio_scan.scan_audio`, which decodes block by
  block, so admitting (or refusing) a 100 MB upload costs megabytes, not the gigabyte its decoded samples
  would.
* **Names are labels.** A part's file name (or a zip entry's) is kept only as a display label, reduced to
  its last path component without control characters; files are stored under generated names.
* **Zip archives** are opened from disk and checked before anything is extracted: entry count, the sum of
  declared sizes (the zip-bomb defence - and extraction counts real bytes too, since headers can lie),
  unsafe entry names (absolute, drive letters, `..`, NUL, symlinks) reject the whole archive, because an
  archive built to escape the extraction directory is hostile, not a user's mistake. Entries are extracted
  into `incoming/` under random names, never under their own.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import stat
import time
import unicodedata
import zipfile
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from fastapi import HTTPException, Request
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from core.audio import AudioError, AudioTooLongError
from core.audio_scan import scan_audio
from service.config import Settings
from service.storage import IncomingFile, Storage, UploadTooLarge

MAX_FIELDS = 32
MAX_FIELD_BYTES = 8192
ZIP_COPY_CHUNK = 1024 * 1024
#: Free space an archive must leave on the storage volume after extraction (results need room too).
DISK_RESERVE_BYTES = 256 * 1024 * 1024


def reject(status: int, message: str, retry_after: int | None = None, close: bool = False) -> HTTPException:
    """An answer with `detail`; `close` ends the connection after it (the client's body is not read)."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if close:
        headers["Connection"] = "close"
    return HTTPException(status_code=status, detail=message, headers=headers or None)


def display_name(raw: str | None, fallback: str = "upload") -> str:
    """A client-supplied file name reduced to a harmless label (never used as a path)."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    return name[:200] or fallback


@dataclass
class ReceivedFile:
    field: str
    name: str
    incoming: IncomingFile


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[ReceivedFile] = field(default_factory=list)

    def discard(self) -> None:
        for f in self.files:
            f.incoming.discard()


class _Reject(Exception):
    def __init__(self, error: HTTPException) -> None:
        self.error = error


@dataclass(frozen=True)
class BodyTimeouts:
    """How slowly a client may send a body (nginx's client_body_timeout plus a minimum average rate).

    `read_s`: longest wait for the next chunk. `min_bytes_per_s`: once `grace_s` have passed, the average
    rate since the body started must stay above this (0: no minimum). A client trickling a byte every few
    seconds would otherwise hold a connection and a partial file forever.
    """

    read_s: float | None = None
    min_bytes_per_s: int = 0
    grace_s: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> BodyTimeouts:
        return cls(settings.body_timeout_s, settings.min_upload_bytes_per_s, settings.min_rate_grace_s)


async def _timed_body(request: Request, timeouts: BodyTimeouts) -> AsyncIterator[bytes]:
    """`request.stream()` with the read timeout and the minimum rate applied (408, connection closed)."""
    chunks = request.stream().__aiter__()
    start, received = time.monotonic(), 0
    while True:
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), timeouts.read_s)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise _Reject(reject(408, f"no upload data received for {timeouts.read_s:g} s", close=True)) from None
        received += len(chunk)
        elapsed = time.monotonic() - start
        if timeouts.min_bytes_per_s and elapsed > timeouts.grace_s and received < timeouts.min_bytes_per_s * elapsed:
            rate = received / elapsed
            message = f"the upload is too slow ({rate:.0f} bytes/s, the minimum is {timeouts.min_bytes_per_s})"
            raise _Reject(reject(408, message, close=True))
        yield chunk


async def receive_multipart(
    request: Request,
    storage: Storage,
    *,
    max_body_bytes: int,
    max_files: int,
    file_limit: Callable[[str], int],
    timeouts: BodyTimeouts | None = None,
) -> ReceivedForm:
    """Stream a multipart/form-data body to disk. `file_limit(name)` gives the byte limit of a file part.

    400 for a malformed body or boundary, 408 for a client slower than `timeouts`, 413 over a limit; on
    any error every file received so far is deleted.
    """
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise reject(415, "send multipart/form-data with the audio in a file field")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        raise reject(413, f"the request is {declared} bytes, the limit is {max_body_bytes}")

    form = ReceivedForm()
    part: dict = {}

    def on_part_begin() -> None:
        part.clear()
        part.update(headers={}, field=b"", value=b"", file=None, data=bytearray())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        part["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        part["value"] += data[start:end]

    def on_header_end() -> None:
        part["headers"][part["field"].lower()] = part["value"]
        part["field"], part["value"] = b"", b""

    def on_headers_finished() -> None:
        _disposition, options = parse_options_header(part["headers"].get(b"content-disposition", b""))
        part["name"] = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is not None:
            if len(form.files) >= max_files:
                raise _Reject(reject(422, f"too many files in one request (the limit is {max_files})"))
            name = display_name(filename.decode("utf-8", "replace"))
            received = ReceivedFile(part["name"], name, storage.incoming(file_limit(name)))
            form.files.append(received)
            part["file"] = received
        elif len(form.fields) >= MAX_FIELDS:
            raise _Reject(reject(422, "too many form fields"))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        received: ReceivedFile | None = part["file"]
        if received is not None:
            try:
                received.incoming.write(data[start:end])
            except UploadTooLarge as error:
                raise _Reject(reject(413, f"{received.name}: the file is larger than {error.limit} bytes")) from None
        else:
            part["data"] += data[start:end]
            if len(part["data"]) > MAX_FIELD_BYTES:
                raise _Reject(reject(422, f"form field {part['name']!r} is too long"))

    def on_part_end() -> None:
        if part.get("file") is None and part.get("name"):
            form.fields[part["name"]] = part["data"].decode("utf-8", "replace")

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    try:
        parser = MultipartParser(boundary, callbacks)
    except Exception as error:  # python-multipart refuses boundaries over 256 bytes (FormParserError)
        raise reject(400, f"invalid multipart boundary ({error})") from None
    total = 0
    try:
        async for chunk in _timed_body(request, timeouts or BodyTimeouts()):
            total += len(chunk)
            if total > max_body_bytes:
                raise _Reject(reject(413, f"the request is larger than {max_body_bytes} bytes"))
            parser.write(chunk)
        parser.finalize()
        for f in form.files:  # fsync off the event loop
            await run_in_threadpool(f.incoming.close)
    except _Reject as error:
        form.discard()
        raise error.error from None
    except Exception as error:  # a malformed body (python-multipart raises its own errors) or a disconnect
        form.discard()
        if isinstance(error, HTTPException):
            raise
        raise reject(400, f"malformed multipart body ({type(error).__name__})") from None
    return form


# --------------------------------------------------------------------------------------------- vocals
@dataclass(frozen=True)
class VocalInfo:
    duration: float
    sample_rate: int


def check_vocal(path: Path, name: str, settings: Settings) -> VocalInfo:
    """Answer every problem of an upload now rather than as a failed job later, in bounded memory.

    Blocking (decodes audio): call it through `run_in_threadpool`. `scan_audio` validates the header and
    decodes block by block, keeping only running sums, so a 100 MB upload costs a few MB of memory, not
    the ~1 GB its decoded float samples and their squares would. The duration limit answers 422 here
    although `AudioTooLongError.http_status` is 413: the service contract reserves 413 for the byte size,
    which a client can check before sending, and uses 422 for audio it cannot use.
    """
    try:
        stats = scan_audio(path, max_bytes=settings.max_upload_bytes, max_seconds=settings.max_seconds)
    except AudioError as error:
        status = 422 if isinstance(error, AudioTooLongError) else error.http_status
        raise reject(status, f"{name}: {error.problem}") from None
    if stats.duration < settings.min_seconds:
        raise reject(
            422, f"{name}: the vocal is too short ({stats.duration:.3g} s, the minimum is {settings.min_seconds:g} s)"
        )
    if stats.peak > settings.max_sample_magnitude:
        raise reject(
            422,
            f"{name}: absurd sample values (peak magnitude {stats.peak:.3g}; audio must stay within "
            f"±{settings.max_sample_magnitude:g}, where ±1 is full scale)",
        )
    level = stats.rms_dbfs
    if level < settings.silence_dbfs:
        shown = "digital silence" if stats.rms == 0 else f"{level:.0f} dBFS"
        raise reject(422, f"{name}: the vocal is silent ({shown}, below {settings.silence_dbfs:g} dBFS)")
    return VocalInfo(duration=stats.duration, sample_rate=stats.sample_rate)


# --------------------------------------------------------------------------------------------- zips
def _unsafe_entry(name: str) -> bool:
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return True
    return any(part == ".." for part in PurePosixPath(name).parts)


def _ignored_entry(name: str) -> bool:
    """Archive tool clutter: macOS resource forks, hidden files."""
    return name.startswith("__MACOSX/") or PurePosixPath(name).name.startswith(".")


def extract_zip(path: Path, storage: Storage, settings: Settings) -> list[tuple[str, IncomingFile]]:
    """Check a zip archive, then extract its files into `incoming/` (blocking: use a thread).

    Returns (display name, file) pairs. Raises HTTPException: 413 for entry-count/size limits (zip bombs),
    422 for unsafe names, encryption, or a damaged archive.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise reject(422, "the archive is not a valid zip file") from None
    extracted: list[tuple[str, IncomingFile]] = []
    with archive:
        infos = archive.infolist()
        if len(infos) > settings.zip_max_entries:
            raise reject(413, f"the archive has {len(infos)} entries, the limit is {settings.zip_max_entries}")
        members, total = [], 0
        for info in infos:
            if _unsafe_entry(info.filename):
                raise reject(422, f"unsafe path in the archive: {info.filename[:200]!r}")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise reject(422, f"the archive contains a symbolic link: {info.filename[:200]!r}")
            if info.is_dir() or _ignored_entry(info.filename):
                continue
            if info.flag_bits & 0x1:
                raise reject(422, f"{display_name(info.filename)}: encrypted archive entries are not supported")
            if info.file_size > settings.max_upload_bytes:
                raise reject(
                    413,
                    f"{display_name(info.filename)}: {info.file_size} bytes uncompressed, "
                    f"the limit is {settings.max_upload_bytes}",
                )
            total += info.file_size
            if total > settings.zip_max_uncompressed_bytes:
                raise reject(413, f"the archive expands to more than {settings.zip_max_uncompressed_bytes} bytes")
            members.append(info)
        if not members:
            raise reject(422, "the archive contains no files")
        if len(members) > settings.batch_max_files:
            raise reject(422, f"the archive has {len(members)} files, the limit is {settings.batch_max_files}")
        # The budget is checked before the first byte is written: the declared total against the free space
        # (a full volume would fail every job, not just this batch), then the bytes really written.
        free = shutil.disk_usage(storage.incoming_dir).free
        if total + DISK_RESERVE_BYTES > free:
            raise reject(503, "not enough storage space to extract the archive now", retry_after=60)
        written = 0
        try:
            for info in members:
                # The declared size is the limit: an entry that inflates beyond what its header says is forged.
                target = storage.incoming(info.file_size)
                extracted.append((display_name(info.filename), target))
                with archive.open(info) as source:
                    while chunk := source.read(ZIP_COPY_CHUNK):
                        written += len(chunk)
                        if written > total:
                            raise UploadTooLarge(total)
                        target.write(chunk)
                target.close()
        except UploadTooLarge:
            _discard(extracted)
            raise reject(413, "an archive entry inflates beyond its declared size") from None
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, ValueError) as error:
            _discard(extracted)
            if isinstance(error, OSError) and not isinstance(error, zipfile.BadZipFile) and error.errno:
                raise  # a real disk problem on our side: a 500, not the client's fault
            raise reject(422, f"the archive is damaged ({type(error).__name__})") from None
        except BaseException:
            _discard(extracted)
            raise
    return extracted


def _discard(files: list[tuple[str, IncomingFile]]) -> None:
    for _name, f in files:
        f.discard()
