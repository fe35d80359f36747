"""Every way an upload can be refused, with the status code and a message that names the problem."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.service.conftest import LiveServer, submit, vocal_bytes, write_vocal


def incoming_files(settings) -> list[Path]:
    return list((settings.storage_dir / "incoming").iterdir())


def job_dirs(settings) -> list[Path]:
    return list((settings.storage_dir / "jobs").iterdir())


def test_too_large_is_413_and_leaves_nothing(api, api_key, settings):
    big = b"RIFF" + b"\0" * (settings.max_upload_bytes + 10)
    r = submit(api, api_key, big)
    assert r.status_code == 413 and "larger than" in r.json()["detail"]
    assert incoming_files(settings) == [] and job_dirs(settings) == []


def _raw_request(port: int, head: bytes, body_chunks: int = 0) -> bytes:
    """Send a request by hand, without finishing the body, and return what the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(head)
        if body_chunks:
            part = (
                b'--xyz\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n'
                b"Content-Type: audio/wav\r\n\r\n"
            )
            s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            chunk = b"\0" * 65536
            for _ in range(body_chunks):
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        # The body is never finished: an answer can only come from a server that checks while receiving.
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _content_length(answer):
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer


def _content_length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def test_size_limit_is_enforced_while_streaming(settings_factory):
    settings = settings_factory(auth="open", max_upload_bytes=256 * 1024)
    with LiveServer(settings) as live:
        head = (
            b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=xyz\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        answer = _raw_request(live.port, head, body_chunks=16)  # 1 MiB of an endless upload
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        # A declared Content-Length over the limit is refused before any body byte is read.
        head = (
            b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=xyz\r\n"
            b"Content-Length: 52428800\r\n\r\n"
        )
        answer = _raw_request(live.port, head)
        assert answer.startswith(b"HTTP/1.1 413") and b"52428800 bytes" in answer
    assert incoming_files(settings) == []


def test_not_audio_is_415(api, api_key):
    r = submit(api, api_key, b"hello, this is a text file, not a song\n" * 50, name="notes.wav")
    assert r.status_code == 415
    assert r.json()["detail"].startswith("notes.wav: not")


def test_image_is_415(api, api_key):
    png = b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + b"\0" * 2000
    r = submit(api, api_key, png, name="cover.png")
    assert r.status_code == 415


def test_truncated_wav_is_422(api, api_key, tmp_path):
    data = vocal_bytes(tmp_path, seconds=1.0)
    r = submit(api, api_key, data[: len(data) // 2], name="cut.wav")
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail.startswith("cut.wav: truncated") and str(tmp_path) not in detail  # no server paths


def test_too_long_is_422(api, api_key, settings, tmp_path):
    data = vocal_bytes(tmp_path, seconds=settings.max_seconds + 1)
    r = submit(api, api_key, data)
    assert r.status_code == 422 and "the limit is 8 s" in r.json()["detail"]


def test_silent_vocal_is_422(api, api_key, tmp_path):
    r = submit(api, api_key, vocal_bytes(tmp_path, silent=True), name="quiet.wav")
    assert r.status_code == 422
    assert r.json()["detail"] == "quiet.wav: the vocal is silent (digital silence, below -60 dBFS)"


def test_empty_file_is_422(api, api_key):
    r = submit(api, api_key, b"", name="empty.wav")
    assert r.status_code == 422 and "empty" in r.json()["detail"]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"temperature": "0"}, "temperature"),
        ({"takes": "99"}, "takes"),
        ({"plan_candidates": "9"}, "plan_candidates"),
        ({"key_strength": "51"}, "key_strength"),
        ({"key_strength": "-1"}, "key_strength"),
        ({"format": "ogg"}, "format"),
        ({"seed": "-1"}, "seed"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_options_are_422(api, api_key, tmp_path, fields, problem):
    r = submit(api, api_key, vocal_bytes(tmp_path), **fields)
    assert r.status_code == 422 and problem in r.json()["detail"]


def test_takes_above_the_service_limit_are_422(api, api_key, settings, tmp_path):
    r = submit(api, api_key, vocal_bytes(tmp_path), takes=settings.max_takes + 1)
    assert r.status_code == 422 and f"at most {settings.max_takes} takes" in r.json()["detail"]


def test_missing_file_and_wrong_content_type(api, api_key):
    r = api.post("/v1/jobs", headers=api_key, data={"seed": "1"}, files={"x": ("", b"")})
    assert r.status_code in (400, 422)
    r = api.post("/v1/jobs", headers=api_key, data={"seed": "1"})
    assert r.status_code in (415, 422)
    r = api.post("/v1/jobs", headers=api_key, json={"audio": "base64..."})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["detail"]


def test_malformed_multipart_is_400(api, api_key):
    headers = {**api_key, "content-type": "multipart/form-data; boundary=xyz"}
    r = api.post("/v1/jobs", headers=headers, content=b"--xyz\r\nthis is not a part header\r\n\r\n\0\0")
    assert r.status_code in (400, 422)
    assert r.status_code != 500


def test_client_file_name_never_becomes_a_path(api, api_key, settings, tmp_path):
    r = submit(api, api_key, vocal_bytes(tmp_path), name="../../../../tmp/evil.wav")
    assert r.status_code == 202
    job = r.json()
    assert job["filename"] == "evil.wav"  # a label: the last component only
    stored = sorted(p.relative_to(settings.storage_dir).as_posix() for p in settings.storage_dir.rglob("*"))
    assert stored == ["incoming", "jobs", f"jobs/{job['id']}", f"jobs/{job['id']}/input"]
    assert not (tmp_path / "evil.wav").exists() and not Path("/tmp/evil.wav").exists()


def test_other_containers_are_accepted(api, api_key, tmp_path):
    """FLAC and stereo 44.1 kHz go through the same path as mono WAV."""
    path = write_vocal(tmp_path / "v.flac", seconds=1.0, sample_rate=44_100, channels=2)
    r = submit(api, api_key, path.read_bytes(), name="v.flac")
    assert r.status_code == 202 and r.json()["duration_s"] == 1.0
