"""`singsong batch`: local (engine in-process) and remote (through the service), both resumable."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from core import cli
from service.auth import create_key
from service.keys import Keys
from service.testing import TinyEngine
from tests.service.conftest import LiveServer, write_speech, write_vocal


def run_batch(*argv: str) -> int:
    return cli.main(["batch", *argv])


def make_inputs(root):
    write_vocal(root / "a.wav", seconds=1.0, seed=1)
    write_vocal(root / "set" / "b.flac", seconds=1.3, seed=2, sample_rate=22_050, channels=2)
    write_vocal(root / "c.wav", seconds=0.8, seed=3)
    (root / "notes.txt").write_text("not a vocal")
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")


def test_local_batch_is_batched_and_resumable(tmp_path, monkeypatch, capsys):
    in_dir, out_dir, model_dir = tmp_path / "in", tmp_path / "out", tmp_path / "model"
    make_inputs(in_dir)
    model_dir.mkdir()
    (model_dir / "tiny_engine.json").write_text(json.dumps({"dim": 16, "layers": 1}))
    engine_args = ["--engine", "service.testing:build_tiny_engine", "--model-dir", str(model_dir), "--quiet"]
    batch_sizes: list[int] = []
    original = TinyEngine.accompany_batch

    def recording(self, vocals, options, progress=None):
        batch_sizes.append(len(vocals))
        return original(self, vocals, options, progress)

    monkeypatch.setattr(TinyEngine, "accompany_batch", recording)

    status = run_batch(str(in_dir), str(out_dir), *engine_args, "--takes", "2", "--seed", "3")
    assert status == 1  # broken.wav failed; the others were done
    assert batch_sizes == [3]  # one engine call for the three vocals
    out = capsys.readouterr()
    assert "3 accompanied, 0 already done, 1 failed" in out.out and "broken.wav" in out.err
    produced = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file())
    assert produced == sorted(
        f"{stem}.take{t}.{kind}.{ext}"
        for stem, ext in (("a", "wav"), ("c", "wav"), ("set/b", "wav"))
        for t in (0, 1)
        for kind in ("mix", "accompaniment")
    )
    mix, rate = sf.read(out_dir / "set" / "b.take1.mix.wav")
    assert rate == 22_050 and mix.shape == (int(1.3 * 22_050), 2)

    before = {p: p.stat().st_mtime_ns for p in out_dir.rglob("*.wav")}
    (out_dir / "a.take1.mix.wav").unlink()  # an interrupted run: one output missing
    run_batch(str(in_dir), str(out_dir), *engine_args, "--takes", "2", "--seed", "3")
    assert "1 accompanied, 2 already done, 1 failed" in capsys.readouterr().out
    after = {p: p.stat().st_mtime_ns for p in out_dir.rglob("*.wav")}
    assert all(after[p] == t for p, t in before.items() if not p.name.startswith("a."))  # others untouched
    assert (out_dir / "a.take1.mix.wav").exists()


def test_remote_batch_through_the_service(settings, rclient, workers, engine, tmp_path, capsys):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    make_inputs(in_dir)
    key, _owner = create_key(rclient, Keys(settings.redis_prefix), "batch-cli")
    workers.start(settings, engine)
    with LiveServer(settings) as live:
        args = [str(in_dir), str(out_dir), "--server", live.url, "--api-key", key, "--quiet", "--format", "flac"]
        status = run_batch(*args)
        out = capsys.readouterr()
        assert status == 1 and "3 accompanied, 0 already done, 1 failed" in out.out
        assert "broken.wav: HTTP 422" in out.err
        vocal, _ = sf.read(in_dir / "a.wav", dtype="float32")
        mix, rate = sf.read(out_dir / "a.mix.flac", dtype="float32")
        accompaniment, _ = sf.read(out_dir / "a.accompaniment.flac", dtype="float32")
        assert rate == 16_000 and mix.shape == vocal.shape
        np.testing.assert_allclose(mix, vocal + accompaniment, atol=1e-3)
        # downloaded jobs were deleted on the server
        assert list((settings.storage_dir / "jobs").iterdir()) == []
        assert run_batch(*args) == 1  # broken.wav is retried (it has no outputs); the rest skipped
        assert "0 accompanied, 3 already done, 1 failed" in capsys.readouterr().out


def test_batch_summary_lists_the_vocals_without_a_melody(settings, rclient, workers, engine, tmp_path, capsys):
    in_dir = tmp_path / "in"
    write_vocal(in_dir / "sung.wav", seconds=1.5, seed=4)
    write_speech(in_dir / "talk.wav")
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "tiny_engine.json").write_text(json.dumps({"dim": 16, "layers": 1}))
    local = ["--engine", "service.testing:build_tiny_engine", "--model-dir", str(model_dir), "--quiet"]
    key, _owner = create_key(rclient, Keys(settings.redis_prefix), "batch-cli")
    workers.start(settings, engine)
    with LiveServer(settings) as live:
        remote = ["--server", live.url, "--api-key", key, "--quiet"]
        for mode, extra in (("local", local), ("remote", remote)):
            assert run_batch(str(in_dir), str(tmp_path / mode), *extra) == 0
            out = capsys.readouterr()
            assert "2 accompanied, 0 already done, 0 failed, 1 with little or no sung melody" in out.out, mode
            assert f"warning: {in_dir / 'talk.wav'}: melody coverage 0.00: little or no sung melody: " in out.err
            assert "sung.wav" not in out.err
