"""Loudness normalisation modes and fixed windows."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.pairs.loudness import LoudnessSettings, integrated_loudness, normalise_pair
from pipelines.pairs.windows import window_starts
from tests.pipelines.pairs.conftest import noise, sung

RATE = 16000


def test_separate_mode_brings_each_stem_to_the_target() -> None:
    v, i = sung(3.0, RATE, level_db=-35.0), noise(3.0, RATE, level_db=-30.0)
    nv, ni, stats = normalise_pair(v, i, RATE, LoudnessSettings(mode="separate", target_lufs=-20.0))
    assert integrated_loudness(nv, RATE) == pytest.approx(-20.0, abs=0.1)
    assert integrated_loudness(ni, RATE) == pytest.approx(-20.0, abs=0.1)
    assert stats["vocals_lufs"] == pytest.approx(integrated_loudness(v, RATE))
    assert stats["vocal_to_instrumental_db"] == pytest.approx(stats["vocals_lufs"] - stats["instrumental_lufs"])
    assert stats["peak_limited"] is False


def test_joint_mode_keeps_the_balance() -> None:
    v, i = sung(3.0, RATE, level_db=-35.0), noise(3.0, RATE, level_db=-30.0)
    nv, ni, stats = normalise_pair(v, i, RATE, LoudnessSettings(mode="joint", target_lufs=-20.0))
    assert stats["vocals_gain_db"] == stats["instrumental_gain_db"] != 0.0
    scale = 10 ** (stats["vocals_gain_db"] / 20)
    np.testing.assert_allclose(nv, v * scale, rtol=1e-5)
    np.testing.assert_allclose(ni, i * scale, rtol=1e-5)
    assert integrated_loudness(nv + ni, RATE) == pytest.approx(-20.0, abs=0.1)


def test_peak_limit_silence_and_none() -> None:
    spiky = np.zeros((2, 3 * RATE), np.float32)
    spiky[:, ::RATE] = 0.5  # very quiet overall, large peaks: the gain must stop at the ceiling
    quiet = sung(3.0, RATE, level_db=-40.0)
    _, ni, stats = normalise_pair(quiet, spiky, RATE, LoudnessSettings(target_lufs=-10.0, peak=0.9))
    assert stats["peak_limited"] is True and np.abs(ni).max() == pytest.approx(0.9, rel=1e-4)
    silent = np.zeros((2, 3 * RATE), np.float32)
    _, ns, stats = normalise_pair(quiet, silent, RATE, LoudnessSettings())
    assert stats["instrumental_lufs"] is None and stats["instrumental_gain_db"] == 0.0 and not ns.any()
    same_v, same_i, stats = normalise_pair(quiet, spiky, RATE, LoudnessSettings(mode="none"))
    assert np.array_equal(same_v, quiet) and np.array_equal(same_i, spiky)
    with pytest.raises(ValueError):
        LoudnessSettings(mode="loud").validate()


def test_window_starts() -> None:
    assert window_starts(25 * 100, 100, window=10, hop=10) == [0, 1000]  # the partial tail is dropped
    assert window_starts(25 * 100, 100, window=10, hop=5) == [0, 500, 1000, 1500]
    assert window_starts(9 * 100, 100, window=10, hop=10) == []
    assert window_starts(30 * 100, 100, window=10, hop=10) == [0, 1000, 2000]
    with pytest.raises(ValueError):
        window_starts(100, 100, window=0, hop=1)
