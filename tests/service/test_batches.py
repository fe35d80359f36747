"""POST /v1/batches: many files or one zip; hostile archives are refused without writing anything."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from tests.service.conftest import vocal_bytes, wait_for


def make_zip(entries: dict[str, bytes], symlinks: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)  # ZipInfo keeps the name as given (writestr would normalise some)
            info.compress_type = zipfile.ZIP_DEFLATED
            if name in symlinks:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_batch_of_files_accepts_good_ones_and_lists_rejected(api, api_key, settings, workers, engine, tmp_path):
    files = [
        ("files", ("one.wav", vocal_bytes(tmp_path, seed=1))),
        ("files", ("two.wav", vocal_bytes(tmp_path, seed=2, seconds=1.2))),
        ("files", ("quiet.wav", vocal_bytes(tmp_path, silent=True))),
        ("files", ("notes.txt", b"not audio at all" * 20)),
    ]
    r = api.post("/v1/batches", headers=api_key, files=files, data={"seed": "5", "format": "flac"})
    assert r.status_code == 202, r.text
    batch = r.json()
    assert [j["name"] for j in batch["jobs"]] == ["one.wav", "two.wav"]
    assert [(x["name"], x["status"]) for x in batch["rejected"]] == [("quiet.wav", 422), ("notes.txt", 415)]
    assert "the vocal is silent" in batch["rejected"][0]["error"]
    assert batch["counts"]["queued"] == 2

    calls_before = len(engine.calls)
    workers.start(settings, engine)
    done = wait_for(
        lambda: (b := api.get(f"/v1/batches/{batch['id']}", headers=api_key).json())["counts"]["succeeded"] == 2 and b
    )
    assert all(j["status"] == "succeeded" and j["progress"] == 1.0 for j in done["jobs"])
    assert [c.batch_size for c in engine.calls[calls_before:]] == [2]  # similar lengths: one engine call
    job = api.get(f"/v1/jobs/{batch['jobs'][0]['id']}", headers=api_key).json()
    assert job["batch_id"] == batch["id"] and job["options"]["format"] == "flac"


def test_batch_with_nothing_usable_is_422(api, api_key, tmp_path):
    r = api.post("/v1/batches", headers=api_key, files=[("files", ("q.wav", vocal_bytes(tmp_path, silent=True)))])
    assert r.status_code == 422 and "q.wav: the vocal is silent" in r.json()["detail"]


def test_zip_batch(api, api_key, settings, tmp_path):
    archive = make_zip(
        {
            "songs/": b"",
            "songs/verse.wav": vocal_bytes(tmp_path, seed=1),
            "songs/chorus.wav": vocal_bytes(tmp_path, seed=2),
            "__MACOSX/songs/._verse.wav": b"\0" * 100,
            "songs/.DS_Store": b"\0" * 10,
        }
    )
    r = api.post("/v1/batches", headers=api_key, files={"archive": ("takes.zip", archive, "application/zip")})
    assert r.status_code == 202, r.text
    batch = r.json()
    assert sorted(j["name"] for j in batch["jobs"]) == ["chorus.wav", "verse.wav"] and batch["rejected"] == []
    # extracted under generated names only; the temporary zip and extraction files are gone
    assert files_under(settings.storage_dir) == {f"jobs/{j['id']}/input" for j in batch["jobs"]}


@pytest.mark.parametrize(
    "entry",
    ["../evil.wav", "/tmp/evil.wav", "songs/../../evil.wav", "C:/evil.wav", "..\\evil.wav", "link.wav"],
)
def test_zip_with_unsafe_entries_is_refused_without_writing(api, api_key, settings, tmp_path, entry):
    good = vocal_bytes(tmp_path / "src", seed=1)
    archive = make_zip({"ok.wav": good, entry: good}, symlinks=("link.wav",))
    before = files_under(tmp_path)
    r = api.post("/v1/batches", headers=api_key, files={"archive": ("x.zip", archive)})
    assert r.status_code == 422, r.text
    assert "unsafe path" in r.json()["detail"] or "symbolic link" in r.json()["detail"]
    assert files_under(tmp_path) == before  # nothing new anywhere: not outside, not in storage
    assert not Path("/tmp/evil.wav").exists()


def test_zip_bomb_by_size_is_413(api, api_key, settings, tmp_path):
    # Four entries of 1.9 MB zeros: each under the 2 MiB upload limit, together over the 6 MiB expansion
    # limit, while the archive itself is a few kilobytes.
    archive = make_zip({f"{i}.wav": b"\0" * 1_900_000 for i in range(4)})
    assert len(archive) < 100_000
    r = api.post("/v1/batches", headers=api_key, files={"archive": ("bomb.zip", archive)})
    assert r.status_code == 413 and "expands to more than" in r.json()["detail"]
    assert files_under(settings.storage_dir) == set()


def test_zip_entry_over_the_upload_limit_is_413(api, api_key, settings):
    archive = make_zip({"huge.wav": b"\0" * (settings.max_upload_bytes + 1)})
    r = api.post("/v1/batches", headers=api_key, files={"archive": ("big.zip", archive)})
    assert r.status_code == 413 and "huge.wav" in r.json()["detail"]


def test_zip_with_too_many_entries_is_413(api, api_key, settings):
    archive = make_zip({f"{i}.wav": b"x" for i in range(settings.zip_max_entries + 1)})
    r = api.post("/v1/batches", headers=api_key, files={"archive": ("many.zip", archive)})
    assert r.status_code == 413 and f"the limit is {settings.zip_max_entries}" in r.json()["detail"]
    assert files_under(settings.storage_dir) == set()


def test_not_a_zip_is_422(api, api_key, settings):
    r = api.post("/v1/batches", headers=api_key, files={"archive": ("fake.zip", b"PK\x03\x04 garbage" * 10)})
    assert r.status_code == 422 and "not a valid zip" in r.json()["detail"]


def test_too_many_files_in_a_batch(api, api_key, settings, tmp_path):
    data = vocal_bytes(tmp_path)
    files = [("files", (f"{i}.wav", data)) for i in range(settings.batch_max_files + 1)]
    r = api.post("/v1/batches", headers=api_key, files=files)
    assert r.status_code == 422 and "too many files" in r.json()["detail"]
    assert files_under(settings.storage_dir) == set()
