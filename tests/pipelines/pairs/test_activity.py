"""Vocal activity: singing is active, noise/silence/bleed are not, windows report the sung fraction."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.pairs.activity import ActivitySettings, analyse
from tests.pipelines.pairs.conftest import noise, sung

RATE = 22050


def test_singing_is_active_noise_and_silence_are_not() -> None:
    frames = analyse(sung(2.0, RATE), RATE)
    assert frames.active.mean() > 0.95
    assert np.median(frames.f0[frames.active]) == pytest.approx(220.0, rel=0.03)
    assert analyse(noise(2.0, RATE), RATE).active.mean() < 0.05  # loud, but not periodic
    assert not analyse(np.zeros((2, 2 * RATE), np.float32), RATE).active.any()


def test_thresholds_are_relative_to_the_track_with_an_absolute_floor() -> None:
    # singing for 3 s, then faint bleed of the same voice 40 dB down: only the singing counts
    track = np.concatenate([sung(3.0, RATE), sung(3.0, RATE, level_db=-60.0)], axis=1)
    frames = analyse(track, RATE)
    fraction, f0 = frames.window(0.0, 3.0)
    assert fraction > 0.95 and f0 == pytest.approx(220.0, rel=0.03)
    assert frames.window(3.0, 3.0)[0] < 0.05
    # a whole track of very quiet singing is below the absolute floor
    assert not analyse(sung(2.0, RATE, level_db=-65.0), RATE).active.any()
    # ...unless the floor is lowered
    assert analyse(sung(2.0, RATE, level_db=-65.0), RATE, ActivitySettings(floor_db=-80.0)).active.mean() > 0.9


def test_window_fraction_of_a_half_sung_window() -> None:
    track = np.concatenate([sung(2.0, RATE), np.zeros((2, 2 * RATE), np.float32)], axis=1)
    fraction, _ = analyse(track, RATE).window(0.0, 4.0)
    assert fraction == pytest.approx(0.5, abs=0.05)
