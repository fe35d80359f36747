"""Tests of the singing-voice synthesiser: contract, pitch, vibrato, vowels, breaths, band-limitation."""

import librosa
import numpy as np
import pytest

from pipelines.corpus import voice
from pipelines.corpus.song import VocalNote
from pipelines.corpus.voice import VOWELS, VoiceTimbre, render_vocal

SR = 44100
# Two phrases with a rest between them (1.4 s), a legato run, a leap and a low note.
MELODY = [
    VocalNote(57, 0.30, 1.00, 96, 0),
    VocalNote(60, 1.00, 1.60, 90, 0),
    VocalNote(64, 1.60, 2.60, 100, 0),
    VocalNote(62, 2.65, 3.10, 85, 0),
    VocalNote(67, 4.50, 5.20, 105, 1),
    VocalNote(72, 5.20, 5.80, 110, 1),
    VocalNote(69, 5.90, 6.80, 95, 1),
    VocalNote(48, 6.80, 7.60, 90, 1),
]
DURATION = 8.6  # one second of silence after the last note
BREATH_GAP = slice(int(3.35 * SR), int(4.35 * SR))  # in the rest before phrase 1, clear of the notes
# A steady, plain singer for measurements that vibrato, consonants or scoops would only blur.
PLAIN = VoiceTimbre(vibrato_depth_cents=0.0, consonant_prob=0.0, scoop_prob=0.0, breathiness=0.2)


def _midi_to_hz(m: float) -> float:
    return 440.0 * 2.0 ** ((m - 69.0) / 12.0)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


def _pyin(y: np.ndarray, sr: int = SR, resolution: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """f0 (Hz), voiced flags and frame times of a 16 kHz resample, as a pitch tracker would hear it."""
    y16 = librosa.resample(np.asarray(y, dtype=np.float32), orig_sr=sr, target_sr=16000)
    f0, voiced, _ = librosa.pyin(
        y16, fmin=65.0, fmax=1000.0, sr=16000, frame_length=1024, hop_length=320, resolution=resolution
    )
    return f0, voiced, librosa.times_like(f0, sr=16000, hop_length=320)


def _lpc_formants(y: np.ndarray, sr: int = SR) -> np.ndarray:
    """Formant frequencies (Hz, ascending) of the middle of `y` by LPC root-finding at 10 kHz."""
    y10 = librosa.resample(np.asarray(y, dtype=np.float64), orig_sr=sr, target_sr=10000)
    seg = y10[len(y10) // 2 - 2000 : len(y10) // 2 + 2000]
    seg = np.append(seg[0], seg[1:] - 0.9 * seg[:-1]) * np.hamming(len(seg))  # pre-emphasis
    roots = np.roots(librosa.lpc(seg, order=12))
    roots = roots[np.imag(roots) > 0]
    freqs = np.angle(roots) * 10000 / (2 * np.pi)
    bws = -np.log(np.abs(roots)) * 10000 / np.pi
    return np.sort(freqs[(freqs > 150) & (bws < 600)])


@pytest.fixture(scope="module")
def melody_renders() -> dict[int, np.ndarray]:
    return {seed: render_vocal(MELODY, DURATION, seed=seed) for seed in (0, 3)}


def test_output_contract(melody_renders):
    y = melody_renders[0]
    assert y.dtype == np.float32 and y.shape == (round(DURATION * SR),)
    assert np.all(np.isfinite(y))
    assert 0.5 < np.max(np.abs(y)) <= 1.0
    short = render_vocal(MELODY[:2], 1.234, sample_rate=16000, seed=1)
    assert short.dtype == np.float32 and short.shape == (round(1.234 * 16000),)
    assert np.all(np.isfinite(short)) and np.max(np.abs(short)) <= 1.0


def test_deterministic_per_seed_and_timbre(melody_renders):
    np.testing.assert_array_equal(render_vocal(MELODY, DURATION, seed=0), melody_renders[0])
    assert not np.allclose(melody_renders[0], melody_renders[3])
    timbre = VoiceTimbre.random(np.random.default_rng(11))
    a = render_vocal(MELODY[:3], 3.0, seed=5, timbre=timbre)
    np.testing.assert_array_equal(a, render_vocal(MELODY[:3], 3.0, seed=5, timbre=timbre))
    assert not np.allclose(a, render_vocal(MELODY[:3], 3.0, seed=5, timbre=PLAIN))
    # timbre=None is the documented random singer of the seed
    np.testing.assert_array_equal(
        render_vocal(MELODY[:3], 3.0, seed=5),
        render_vocal(MELODY[:3], 3.0, seed=5, timbre=VoiceTimbre.random(np.random.default_rng(5))),
    )


def test_no_notes_is_silence():
    y = render_vocal([], 1.0, seed=0)
    assert y.shape == (SR,) and not y.any()


def test_silence_after_the_last_note_and_breath_before_a_phrase(melody_renders):
    for y in melody_renders.values():
        singing = _rms(y[int(1.7 * SR) : int(2.5 * SR)])
        # Nothing after the last note has died away (note end 7.6 s + release).
        assert _rms(y[int(8.0 * SR) :]) < 1e-4 * singing
        # The rest 3.1-4.5 s: the previous note's release is over by 3.35 s, a consonant may start at
        # 4.35 s; in between the singer inhales.
        gap_db = 20 * np.log10(_rms(y[BREATH_GAP]) / singing)
        assert -45.0 < gap_db < -12.0


def test_breath_level_follows_the_timbre():
    notes = MELODY[3:5]  # the last note of phrase 0 and the first of phrase 1
    loud = render_vocal(notes, 5.3, seed=2, timbre=VoiceTimbre(breath_level_db=-15.0))
    quiet = render_vocal(notes, 5.3, seed=2, timbre=VoiceTimbre(breath_level_db=-35.0))
    ratio_db = 20 * np.log10(_rms(loud[BREATH_GAP]) / _rms(quiet[BREATH_GAP]))
    assert 15.0 < ratio_db < 25.0


def test_pitch_follows_the_notes(melody_renders):
    for y in melody_renders.values():
        f0, voiced, times = _pyin(y, resolution=0.2)  # 20-cent bins: plenty for a +/-50 cent check
        cents, inside = [], 0
        for note in MELODY:  # away from glides, scoops and releases
            frames = (times > note.start + 0.2) & (times < note.end - 0.1)
            inside += frames.sum()
            frames &= voiced
            cents.append(1200 * np.log2(f0[frames] / _midi_to_hz(note.pitch)))
        cents = np.concatenate(cents)
        assert len(cents) > 0.8 * inside  # the tracker hears a voice where the notes are
        assert np.mean(np.abs(cents) < 50.0) >= 0.8


def _vibrato_spectrum(timbre: VoiceTimbre) -> tuple[np.ndarray, np.ndarray]:
    y = render_vocal([VocalNote(62, 0.2, 3.4, 100, 0)], 3.6, seed=4, timbre=timbre)
    f0, voiced, times = _pyin(y)
    frames = (times > 1.0) & (times < 3.2)
    assert voiced[frames].mean() > 0.9
    cents = 1200 * np.log2(f0[frames] / _midi_to_hz(62))
    cents = cents - np.polyval(np.polyfit(times[frames], cents, 1), times[frames])  # remove drift
    spectrum = np.abs(np.fft.rfft(cents * np.hanning(len(cents)), n=1024))
    return np.fft.rfftfreq(1024, d=times[1] - times[0]), spectrum


def test_long_notes_have_vibrato_at_the_timbre_rate():
    base = dict(consonant_prob=0.0, scoop_prob=0.0, vibrato_delay_s=0.3)
    freqs, with_vib = _vibrato_spectrum(VoiceTimbre(vibrato_rate_hz=5.5, vibrato_depth_cents=40.0, **base))
    band = (freqs > 1.0) & (freqs < 12.0)
    peak = freqs[band][np.argmax(with_vib[band])]
    assert 4.0 <= peak <= 7.0 and abs(peak - 5.5) < 0.6
    _, without = _vibrato_spectrum(VoiceTimbre(vibrato_depth_cents=0.0, **base))
    assert with_vib[band].max() > 5 * without[band].max()


def test_vowels_have_their_formants():
    def formants(vowel: str, scale: float = 1.0, pitch: int = 48) -> np.ndarray:
        timbre = VoiceTimbre(formant_scale=scale, vibrato_depth_cents=0.0, consonant_prob=0.0, breathiness=0.2)
        return _lpc_formants(
            render_vocal([VocalNote(pitch, 0.1, 1.4, 100, 0)], 1.5, seed=0, timbre=timbre, vowels=[vowel])
        )

    a, i, u = formants("a"), formants("i"), formants("u")
    assert a[0] > i[0] + 250 and a[0] > u[0] + 250  # /a/ is open: high F1
    assert i[1] > u[1] + 800  # /i/ is front: high F2; /u/ back: low F2
    for measured, vowel in ((a, "a"), (i, "i"), (u, "u")):  # and near the table values
        table = np.array(VOWELS[vowel][0][:2])
        assert np.all(np.abs(measured[:2] / table - 1.0) < 0.15), (vowel, measured[:2], table)
    # A shorter (female) vocal tract raises the formants of the same vowel.
    assert formants("a", scale=1.18, pitch=57)[1] > 1.1 * a[1]


def test_vowel_sequence_is_followed_within_one_render():
    notes = [VocalNote(50, 0.1, 1.1, 100, 0), VocalNote(50, 1.3, 2.3, 100, 0)]
    y = render_vocal(notes, 2.5, seed=1, timbre=PLAIN, vowels=["i", "a"])
    first = _lpc_formants(y[int(0.3 * SR) : int(1.0 * SR)])
    second = _lpc_formants(y[int(1.5 * SR) : int(2.2 * SR)])
    assert second[0] > first[0] + 250 and first[1] > second[1] + 700


def test_source_is_band_limited():
    """The glottal pulse train has energy only at harmonics: nothing folds back from above Nyquist."""
    sr, f0, count = 16000, 784.0, 1600  # MIDI 79 at 16 kHz: harmonics up to the 10th; aliases between them
    frames = voice._Frames.make(sr, 1.0)
    pos = 1000.0 + np.arange(count) * sr / f0
    ones = np.ones(count)
    freqs, bws = VOWELS["a"]
    cycles = voice._Cycles(
        pos=pos,
        length=ones * sr / f0,
        f0=ones * f0,
        amp=ones,
        oq=ones * 0.5,
        fg=ones * 1.4 * f0,
        fa=ones * 6000.0,
        noise_energy=ones * 0.0,
        formants=np.tile(freqs, (count, 1)),
        bandwidths=np.tile(bws, (count, 1)),
    )
    y = voice._render_cycles(cycles, np.zeros(int(pos[-1]) + 2000), frames, sr)
    seg = y[int(pos[100]) : int(pos[-100])]
    spectrum = np.abs(np.fft.rfft(seg * np.blackman(len(seg))))
    hz = np.fft.rfftfreq(len(seg), 1 / sr)
    level = 20 * np.log10(spectrum / spectrum.max() + 1e-300)
    harmonic = np.abs(hz / f0 - np.round(hz / f0)) * f0 < 20.0
    assert level[hz > 6000][harmonic[hz > 6000]].max() > -80.0  # high harmonics are there...
    # ...and nothing else is (a naively sampled Rosenberg pulse aliases at about -47 dB here)
    assert level[~harmonic].max() < -65.0


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="vowels"):
        render_vocal(MELODY, DURATION, vowels=["a"])
    with pytest.raises(ValueError, match="unknown vowels"):
        render_vocal(MELODY[:1], 1.0, vowels=["x"])
    with pytest.raises(ValueError, match="breathiness"):
        VoiceTimbre(breathiness=1.5)


def test_random_singers_are_varied_and_valid():
    singers = [VoiceTimbre.random(np.random.default_rng(s)) for s in range(40)]
    scales = np.array([s.formant_scale for s in singers])
    assert (scales < 1.05).any() and (scales > 1.1).any()  # both tract sizes occur
    rates = np.array([s.vibrato_rate_hz for s in singers])
    assert np.all((rates >= 4.5) & (rates <= 6.5)) and rates.std() > 0.2
