import numpy as np
import pytest

from pipelines.inference.mixing import MixSettings, limit, loudness, mix

SR = 16000


def _tone(freq, seconds=2.0, amplitude=0.5, channels=2):
    t = np.arange(int(seconds * SR)) / SR
    return np.tile(amplitude * np.sin(2 * np.pi * freq * t), (channels, 1)).astype(np.float32)


def test_limiter_never_exceeds_the_ceiling_and_leaves_quiet_audio_alone():
    rng = np.random.default_rng(0)
    loud = (rng.standard_normal((2, SR)) * 0.8).astype(np.float32)
    loud[:, 5000] = 4.0  # a spike far above the ceiling
    out = limit(loud, SR, ceiling_db=-1.0)
    assert np.abs(out).max() <= 10 ** (-1 / 20) + 1e-7
    quiet = _tone(440, amplitude=0.3)
    assert np.array_equal(limit(quiet, SR), quiet)


def test_limiter_changes_gain_smoothly_instead_of_clipping():
    signal = _tone(220, amplitude=2.0, channels=1)
    out = limit(signal, SR, ceiling_db=-1.0)
    # A clipper would flatten the waves' tops; the limiter scales them: the output stays sinusoidal.
    correlation = np.corrcoef(out[0], signal[0])[0, 1]
    assert correlation > 0.999
    flat_tops = np.mean(np.abs(np.abs(out[0]) - 10 ** (-1 / 20)) < 1e-6)
    assert flat_tops < 0.01


def test_mix_balances_loudness_and_reaches_the_target():
    vocal = _tone(440, amplitude=0.05)
    accompaniment = _tone(110, amplitude=0.9)
    settings = MixSettings(balance_db=3.0, target_lufs=-16.0)
    mixed, stem = mix(vocal, accompaniment, SR, settings)
    assert mixed.shape == vocal.shape and stem.shape == vocal.shape
    assert loudness(mixed, SR) == pytest.approx(-16.0, abs=1.0)
    vocal_in_mix = mixed - stem  # before limiting, the mix is vocal + stem with one common gain
    assert loudness(vocal_in_mix, SR) - loudness(stem, SR) == pytest.approx(3.0, abs=0.5)
    assert np.abs(mixed).max() <= 10 ** (-1 / 20) + 1e-7


def test_silent_accompaniment_and_shape_mismatch():
    vocal = _tone(440, amplitude=0.2)
    mixed, stem = mix(vocal, np.zeros_like(vocal), SR)
    assert np.abs(stem).max() == 0 and np.isfinite(mixed).all()
    with pytest.raises(ValueError, match="differ in shape"):
        mix(vocal, vocal[:1], SR)
