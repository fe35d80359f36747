"""Random-crop dataset used by the codec trainer."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from core.datasets import DatasetError
from pipelines.training.audio_crops import RandomCropDataset


def test_crops_are_resampled_downmixed_and_skip_silence(tmp_path) -> None:
    sr = 44_100
    t = np.arange(sr) / sr
    signal = 0.4 * np.sin(2 * np.pi * 330 * t)
    signal[: sr * 3 // 4] = 0.0  # three quarters of the file are silent
    sf.write(tmp_path / "a.wav", np.stack([signal, -signal * 0.5], axis=1), sr)
    dataset = RandomCropDataset(
        [tmp_path / "a.wav"], sample_rate=8000, channels=1, segment_samples=400, max_tries=60, progress=False
    )
    assert dataset.clips[0].shape == (1, 8000) and dataset.clips[0].dtype == np.int16
    assert dataset.total_seconds == pytest.approx(1.0)
    batch = dataset.batch(32, np.random.default_rng(0))
    assert batch.shape == (32, 1, 400)
    rms = batch.pow(2).mean(-1).sqrt().squeeze(1)
    assert (rms > 10 ** (-45 / 20)).all()
    # without the silence filter most crops of this file are silent
    permissive = RandomCropDataset(
        [tmp_path / "a.wav"], sample_rate=8000, channels=1, segment_samples=400, max_tries=1, progress=False
    )
    silent = (permissive.batch(32, np.random.default_rng(0)).abs().amax(-1) == 0).sum()
    assert silent > 10


def test_short_files_are_padded_and_unreadable_files_skipped(tmp_path) -> None:
    sf.write(tmp_path / "short.wav", 0.5 * np.ones((100, 1)), 8000)
    (tmp_path / "broken.wav").write_bytes(b"not audio at all")
    dataset = RandomCropDataset(
        [tmp_path / "broken.wav", tmp_path / "short.wav"],
        sample_rate=8000,
        channels=1,
        segment_samples=300,
        progress=False,
    )
    assert len(dataset) == 1
    crop = dataset.crop(np.random.default_rng(0))
    assert crop.shape == (1, 300)
    assert np.all(crop[:, 100:] == 0) and np.allclose(crop[:, :100], 0.5, atol=1e-4)
    with pytest.raises(DatasetError):
        RandomCropDataset([tmp_path / "broken.wav"], sample_rate=8000, channels=1, segment_samples=10, progress=False)
