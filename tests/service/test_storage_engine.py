"""Storage path safety and atomicity; the engine loader; the tiny engine's contract."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.audio import Audio
from pipelines.inference.engine import GenerationOptions
from pipelines.inference.engine_loader import EngineConfigError, load_engine
from service.api.uploads import display_name
from service.config import Settings
from service.storage import Storage, UploadTooLarge
from service.testing import TinyConfig, TinyEngine
from tests.service.conftest import vocal_samples


def test_storage_refuses_anything_but_generated_ids(tmp_path):
    storage = Storage(tmp_path / "s")
    for bad in ("../../etc", "/etc/passwd", "a" * 32 + "/..", "ABCDEF" + "0" * 26, ""):
        with pytest.raises(ValueError):
            storage.input_path(bad)
    job_id = "0123456789abcdef" * 2
    with pytest.raises(ValueError):
        storage.result_path(job_id, 1, "../mix", 0, "wav")
    with pytest.raises(ValueError):
        storage.result_path(job_id, 1, "mix", 0, "exe")
    assert storage.result_path(job_id, 2, "mix", 1, "flac") == storage.jobs_dir / job_id / "a2" / "mix-1.flac"


def test_incoming_upload_enforces_its_limit_and_adopts_atomically(tmp_path):
    storage = Storage(tmp_path / "s")
    upload = storage.incoming(limit=10)
    upload.write(b"12345")
    with pytest.raises(UploadTooLarge):
        upload.write(b"678901")
    upload.discard()
    assert list(storage.incoming_dir.iterdir()) == []
    upload = storage.incoming(limit=10)
    upload.write(b"vocal")
    upload.close()
    job_id = "f" * 32
    target = storage.adopt_input(job_id, upload.path)
    assert target.read_bytes() == b"vocal" and not upload.path.exists()


def test_results_are_written_atomically(tmp_path):
    storage = Storage(tmp_path / "s")
    job_id = "a" * 32
    path = storage.write_result(job_id, 1, "mix", 0, "wav", np.zeros((1, 1600), np.float32) + 0.1, 16_000)
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["mix-0.wav"]  # no temporary file left behind


def test_display_name_is_only_a_label():
    assert display_name("../../x/evil.wav") == "evil.wav"
    assert display_name("C:\\Users\\me\\take 1.wav") == "take 1.wav"
    assert display_name("bell\x07\x00.wav") == "bell.wav"
    assert display_name("") == "upload" and display_name("../") == "upload"


def test_settings_reject_a_heartbeat_slower_than_the_takeover():
    with pytest.raises(ValueError, match="claim_min_idle_ms"):
        Settings(heartbeat_s=5, claim_min_idle_ms=5000)


def test_engine_loader(tmp_path):
    with pytest.raises(EngineConfigError, match="no engine configured"):
        load_engine("")
    with pytest.raises(EngineConfigError, match=r"package\.module:factory"):
        load_engine("service.testing")
    with pytest.raises(EngineConfigError, match="cannot import"):
        load_engine("service.no_such_module:build")
    with pytest.raises(EngineConfigError, match="must accept the keyword arguments"):
        load_engine("service.storage:new_id")  # callable, but not an engine factory (it takes no model_dir)
    with pytest.raises(EngineConfigError, match="not an AccompanimentEngine"):
        load_engine("service.config:Settings")  # accepts the keywords (extra="ignore") but is no engine
    with pytest.raises(EngineConfigError, match="does not exist"):
        load_engine("service.testing:build_tiny_engine", tmp_path / "missing")
    (tmp_path / "tiny_engine.json").write_text(json.dumps({"dim": 8, "layers": 1, "max_batch_size": 3}))
    engine = load_engine("service.testing:build_tiny_engine", tmp_path, device="cpu")
    assert isinstance(engine, TinyEngine) and engine.max_batch_size == 3 and engine.config.dim == 8


def test_tiny_engine_contract():
    engine = TinyEngine(TinyConfig(dim=16, layers=1))
    stereo = Audio(np.stack([vocal_samples(1.0, 44_100, seed=1)] * 2), 44_100)
    mono = Audio(vocal_samples(0.7, 16_000, seed=2)[None], 16_000)
    takes = engine.accompany_batch([stereo, mono], [GenerationOptions(seed=5, takes=2), GenerationOptions(seed=9)])
    assert [len(t) for t in takes] == [2, 1]
    for vocal, vocal_takes in zip((stereo, mono), takes, strict=True):
        for take in vocal_takes:
            assert take.mix.shape == vocal.samples.shape and take.accompaniment.shape == vocal.samples.shape
            assert take.sample_rate == vocal.sample_rate and take.mix.dtype == np.float32
            assert np.abs(take.mix).max() <= 0.98 + 1e-6
    assert [t.seed for t in takes[0]] == [5, 6]
    assert np.abs(takes[0][0].accompaniment - takes[0][1].accompaniment).max() > 1e-3  # takes differ
    # Same vocal + seed alone gives the same take as inside a padded batch.
    alone = engine.accompany_batch([mono], [GenerationOptions(seed=9)])[0][0]
    np.testing.assert_allclose(alone.accompaniment, takes[1][0].accompaniment, atol=1e-5)
    # Temperature changes the sampling noise's weight, hence the output.
    hot = engine.accompany_batch([mono], [GenerationOptions(seed=9, temperature=3.0)])[0][0]
    assert np.abs(hot.accompaniment - alone.accompaniment).max() > 1e-3
    with pytest.raises(ValueError):
        engine.accompany_batch([mono], [GenerationOptions(temperature=0)])
