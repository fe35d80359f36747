"""The cross-track batched engine: exact overlap-add, batch invariance, agreement with demucs' apply_model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.audio import save_audio
from pipelines.separation.engine import BatchedSeparator, TrackJob
from tests.pipelines.separation.conftest import TINY_RATE, FakeSeparator, build_tiny, fake_info, write_corrupt


def _tracks(tmp_path, lengths):
    rng = np.random.default_rng(1)
    jobs, signals = [], {}
    for i, length in enumerate(lengths):
        x = (0.3 * rng.standard_normal((2, length))).astype(np.float32) + 0.01
        path = save_audio(tmp_path / f"t{i}.wav", x, TINY_RATE, subtype="FLOAT")
        jobs.append(TrackJob(key=f"t{i}", path=path))
        signals[f"t{i}"] = x
    return jobs, signals


def _source(x: np.ndarray, gain: float, means: int = 1) -> np.ndarray:
    """What a source of gain `gain` on the normalised mixture comes back as: demucs adds the mixture's mean
    back to every source it un-normalises (so a sum of n sources carries n means)."""
    mean = x.mean(0).mean()
    return gain * (x - mean) + means * mean


@pytest.mark.parametrize(("overlap", "shifts", "batch_size"), [(0.25, 0, 3), (0.5, 2, 4), (0.0, 1, 1)])
def test_overlap_add_rebuilds_a_linear_model_exactly(tmp_path, overlap, shifts, batch_size) -> None:
    model = FakeSeparator(("vocals", "instrumental"), (0.25, 0.75), segment=1.0)
    # one track shorter than a segment, one exactly one, one with a partial last segment
    jobs, signals = _tracks(tmp_path, [3000, 8000, 21_123])
    engine = BatchedSeparator(model, fake_info(model), overlap=overlap, shifts=shifts, batch_size=batch_size)
    results = {r.job.key: r for r in engine.separate(jobs)}
    assert set(results) == set(signals)
    for key, x in signals.items():
        assert results[key].error is None
        np.testing.assert_allclose(results[key].vocals, _source(x, 0.25), atol=2e-5)
        np.testing.assert_allclose(results[key].instrumental, _source(x, 0.75), atol=2e-5)
    assert all(shape[0] <= batch_size and shape[-1] == TINY_RATE for shape in model.calls)


def test_segments_of_several_tracks_share_a_forward(tmp_path) -> None:
    model = FakeSeparator(("vocals", "instrumental"), (0.5, 0.5), segment=1.0)
    jobs, _ = _tracks(tmp_path, [4000, 4000, 4000, 4000])  # one segment each with shifts=0
    engine = BatchedSeparator(model, fake_info(model), shifts=0, batch_size=4)
    assert len(list(engine.separate(jobs))) == 4
    assert [shape[0] for shape in model.calls] == [4]  # one forward for four tracks
    assert engine.stats.batches == 1


def test_four_source_model_folds_everything_but_vocals_into_the_instrumental(tmp_path) -> None:
    model = FakeSeparator(("drums", "bass", "other", "vocals"), (0.1, 0.2, 0.3, 0.4), segment=1.0)
    jobs, signals = _tracks(tmp_path, [12_000])
    x = signals["t0"]
    for mode, expected in (("add", _source(x, 0.6, means=3)), ("minus", _source(x, 0.6, means=0))):
        engine = BatchedSeparator(model, fake_info(model), shifts=0, instrumental=mode)
        (result,) = engine.separate(jobs)
        np.testing.assert_allclose(result.vocals, _source(x, 0.4), atol=2e-5)
        np.testing.assert_allclose(result.instrumental, expected, atol=2e-5)


def test_bag_of_models_is_a_weighted_average_per_source(tmp_path) -> None:
    from demucs.apply import BagOfModels

    a = FakeSeparator(("vocals", "instrumental"), (0.2, 0.8), segment=1.0)
    b = FakeSeparator(("vocals", "instrumental"), (0.6, 0.4), segment=1.0)
    bag = BagOfModels([a, b], weights=[[1.0, 1.0], [3.0, 1.0]])
    jobs, signals = _tracks(tmp_path, [9000])
    (result,) = BatchedSeparator(bag, fake_info(a), shifts=0).separate(jobs)
    np.testing.assert_allclose(result.vocals, _source(signals["t0"], 0.5), atol=2e-5)  # (0.2 + 3 * 0.6) / 4
    np.testing.assert_allclose(result.instrumental, _source(signals["t0"], 0.6), atol=2e-5)  # (0.8 + 0.4) / 2


def test_real_model_output_does_not_depend_on_batching(tmp_path) -> None:
    from pipelines.separation.repo import ModelInfo

    model = build_tiny().eval()
    info = ModelInfo("tiny", None, ("vocals", "instrumental"), TINY_RATE, 2, 2.0, None, 1, 1)
    jobs, _ = _tracks(tmp_path, [9000, 20_000])
    one = {r.job.key: r for r in BatchedSeparator(model, info, shifts=1, batch_size=1).separate(jobs)}
    many = {r.job.key: r for r in BatchedSeparator(model, info, shifts=1, batch_size=5).separate(jobs)}
    for key in one:
        np.testing.assert_allclose(one[key].vocals, many[key].vocals, atol=1e-5)
        assert np.abs(one[key].vocals).max() > 0


def test_matches_demucs_apply_model_away_from_the_last_chunk(tmp_path) -> None:
    """Same normalisation, chunking and transition window as demucs: only the final, shorter chunk differs."""
    from demucs.apply import apply_model

    from pipelines.separation.repo import ModelInfo

    model = build_tiny().eval()
    info = ModelInfo("tiny", None, ("vocals", "instrumental"), TINY_RATE, 2, 2.0, None, 1, 1)
    jobs, signals = _tracks(tmp_path, [40_000])
    (ours,) = BatchedSeparator(model, info, shifts=0, overlap=0.25, batch_size=3).separate(jobs)
    x = torch.from_numpy(signals["t0"])
    ref = x.mean(0)
    mean, std = ref.mean(), ref.std() + 1e-8
    with torch.no_grad():
        theirs = apply_model(model, ((x - mean) / std)[None], shifts=0, split=True, overlap=0.25, segment=2.0)
    theirs = (theirs[0] * std + mean).numpy()
    segment, stride = 2 * TINY_RATE, int(0.75 * 2 * TINY_RATE)
    first_short = min(o for o in range(0, 40_000, stride) if o + segment > 40_000)
    np.testing.assert_allclose(ours.vocals[:, :first_short], theirs[0][:, :first_short], atol=1e-4)
    assert not np.allclose(ours.vocals[:, -100:], 0)


def test_an_unreadable_track_is_reported_and_the_others_finish(tmp_path) -> None:
    model = FakeSeparator(("vocals", "instrumental"), (0.5, 0.5), segment=1.0)
    jobs, _ = _tracks(tmp_path, [5000, 5000])
    bad = TrackJob(key="bad", path=write_corrupt(tmp_path / "bad.flac"))
    missing = TrackJob(key="missing", path=tmp_path / "nope.wav")
    results = {
        r.job.key: r for r in BatchedSeparator(model, fake_info(model)).separate([jobs[0], bad, missing, jobs[1]])
    }
    assert results["bad"].error and "Corrupt" in results["bad"].error
    assert results["missing"].error and "NotFound" in results["missing"].error
    assert results["t0"].error is None and results["t1"].error is None


def test_none_in_the_job_stream_flushes_a_partial_batch(tmp_path) -> None:
    model = FakeSeparator(("vocals", "instrumental"), (0.5, 0.5), segment=1.0)
    jobs, _ = _tracks(tmp_path, [4000])
    seen = []

    def stream():
        yield jobs[0]
        yield None  # "queue momentarily empty": the waiting segment must run now
        seen.append(len(model.calls))

    results = list(BatchedSeparator(model, fake_info(model), shifts=0, batch_size=8).separate(stream()))
    assert len(results) == 1 and seen == [1]


def test_htdemucs_segment_longer_than_training_is_refused() -> None:
    from pipelines.separation.repo import ModelInfo

    model = FakeSeparator(("vocals", "instrumental"), (0.5, 0.5), segment=1.0)
    info = ModelInfo("ht", None, ("vocals", "instrumental"), TINY_RATE, 2, 1.0, 1.0, 1, 1)
    with pytest.raises(ValueError, match="longer than the transformer"):
        BatchedSeparator(model, info, segment=2.0)
