"""`pipeline separate`: outputs, resume/idempotence, corrupt-file skipping, sharding, manifest."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.audio import load_audio
from core.datasets import read_manifest
from pipelines.separation.separate import FAILED_MARKER, MARKER, SeparateOptions, run_separation
from tests.pipelines.separation.conftest import TINY_RATE, write_corrupt


def _options(source: Path, out: Path, repo: tuple[Path, str], **overrides) -> SeparateOptions:
    path, name = repo
    return SeparateOptions(
        input=source, out=out, model=name, repo=path, device="cpu", shifts=0, batch_size=4, progress=False, **overrides
    )


def test_separates_every_track_into_aligned_vocals_and_instrumental(
    tmp_path: Path, tiny_corpus: Path, tiny_repo
) -> None:
    out = tmp_path / "sep"
    summary = run_separation(_options(tiny_corpus, out, tiny_repo, instrumental="minus", format="wav"))
    assert (summary.total, summary.separated, summary.skipped, summary.failed) == (4, 4, 0, [])
    entries = list(read_manifest(out / "manifest.jsonl"))
    assert len(entries) == 4 and all(e["model"].startswith("tiny-") for e in entries)
    for entry in entries:
        vocals = load_audio(out / entry["stems"]["vocals"])
        instrumental = load_audio(out / entry["stems"]["instrumental"])
        mixture = load_audio(entry["source"], sample_rate=TINY_RATE)
        assert vocals.sample_rate == TINY_RATE and vocals.samples.shape == mixture.samples.shape
        # "minus": the pair adds up to the mixture (16-bit files: within quantisation)
        np.testing.assert_allclose(vocals.samples + instrumental.samples, mixture.samples, atol=2e-4)
        assert entry["id"] == f"{entry['split']}/{Path(entry['source']).parent.name}"


def test_rerun_does_no_work_and_changed_settings_redo(tmp_path: Path, tiny_corpus: Path, tiny_repo) -> None:
    out = tmp_path / "sep"
    first = run_separation(_options(tiny_corpus, out, tiny_repo))
    assert first.separated == 4 and first.model_loaded
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.flac")}
    again = run_separation(_options(tiny_corpus, out, tiny_repo))
    assert (again.separated, again.skipped, again.model_loaded) == (0, 4, False)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.flac")} == stamps
    # an interrupted track (no marker) is redone, alone
    victim = sorted(out.rglob(MARKER))[0]
    victim.unlink()
    assert run_separation(_options(tiny_corpus, out, tiny_repo)).separated == 1
    # other settings: every track is redone
    assert run_separation(_options(tiny_corpus, out, tiny_repo, overlap=0.5)).separated == 4
    assert json.loads(victim.read_text())["settings"]["overlap"] == 0.5


def test_a_corrupt_file_is_logged_and_skipped(
    tmp_path: Path, mixtures: Path, tiny_repo, caplog: pytest.LogCaptureFixture
) -> None:
    write_corrupt(mixtures / "broken.flac")
    (mixtures / "notes.wav").write_text("not audio at all")
    out = tmp_path / "sep"
    with caplog.at_level(logging.ERROR, logger="pipelines.separation.separate"):
        summary = run_separation(_options(mixtures, out, tiny_repo))
    assert summary.separated == 4
    assert sorted(key for key, _ in summary.failed) == ["broken", "notes"]
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert "skipping broken" in messages and "broken.flac" in messages and "CorruptAudioError" in messages
    assert not (out / "broken" / MARKER).exists()
    assert len(list(read_manifest(out / "manifest.jsonl"))) == 4
    assert "failed broken" in summary.format()
    # a rerun remembers the unreadable sources: no work, no model
    again = run_separation(_options(mixtures, out, tiny_repo))
    assert (again.separated, again.failed, again.model_loaded) == (0, [], False)
    assert sorted(key for key, _ in again.failed_before) == ["broken", "notes"]
    assert "2 unreadable in an earlier run" in again.format()
    # ...until the file changes (repaired) or --retry-failed
    shutil.copy(mixtures / "track0.flac", mixtures / "broken.flac")
    repaired = run_separation(_options(mixtures, out, tiny_repo))
    assert repaired.separated == 1 and [k for k, _ in repaired.failed_before] == ["notes"]
    assert not (out / "broken" / FAILED_MARKER).exists()
    retried = run_separation(_options(mixtures, out, tiny_repo, retry_failed=True))
    assert [k for k, _ in retried.failed] == ["notes"] and retried.separated == 0


def test_shards_split_the_work_without_overlap(tmp_path: Path, tiny_corpus: Path, tiny_repo) -> None:
    out = tmp_path / "sep"
    a = run_separation(_options(tiny_corpus, out, tiny_repo, shard="0/2"))
    b = run_separation(_options(tiny_corpus, out, tiny_repo, shard="1/2"))
    assert a.separated + b.separated == 4 and a.skipped == b.skipped == 0
    assert len(list(read_manifest(out / "manifest.jsonl"))) == 4  # the last shard sees every marker
    assert run_separation(_options(tiny_corpus, out, tiny_repo)).separated == 0
