"""Singing-voice synthesiser for the vocal stem of the synthetic corpus.

The accompaniment models trained on this corpus will later hear real singers, so the synthetic vocal has to
carry the cues of a voice rather than of a keyboard: a continuous, expressive pitch contour, a glottal source
with breath noise, vowel formants that move, consonants and breaths. The design is the classic source-filter
model (Fant 1960): vocal-tract output = glottal source * tract resonances * lip radiation.

Pitch contour (per sample). Exact note pitches plus small per-note intonation errors; raised-cosine
portamento of tens of ms between legato notes; scoops from below into some onsets and falls off some
phrase ends; vibrato (4.5-6.5 Hz) that starts 0.2-0.4 s into long notes and ramps up, with slowly wandering
rate and depth (Sundberg 1987; Prame 1994); slow drift of a few cents and a little fast flutter.

Source and filter, pitch-synchronously. The contour is integrated into glottal closure instants (GCIs); each
glottal cycle is synthesised in the frequency domain on one short FFT frame (~46 ms) and overlap-added, much
like the synthesis stage of WORLD (Morise et al. 2016) or pitch-synchronous FOF/PSOLA synthesis:
  * the glottal flow derivative follows the "causal-anticausal" view of the LF model (Fant, Liljencrants &
    Lin 1985; Doval, d'Alessandro & Henrich 2003): an anticausal second-order "glottal formant" at ~f0/Oq
    (open quotient Oq: higher for breathy voice, lower for loud, pressed voice) times a causal first-order
    spectral tilt (the LF return phase; brighter for brighter or louder singing) times the lip-radiation
    differentiator. Because it is defined by its spectrum up to Nyquist and placed with a (1/256-sample)
    fractional delay, the source is band-limited by construction: no aliasing at any pitch.
  * aspiration noise, gated by the glottal cycle (strongest in the open phase), added per cycle at a
    harmonics-to-noise ratio set by breathiness and loudness (Klatt & Klatt 1990);
  * jitter (random GCI displacement) and shimmer (random cycle amplitude);
  * the vocal tract is a cascade of Klatt (1980) two-pole resonators, F1-F5 from vowel tables plus the
    higher poles of a neutral tube. Per cycle, all denominators (glottal, tilt, tract) are multiplied into
    one order-13 polynomial, evaluated on the frame's frequency grid by a matrix product. Formant tracks
    are smoothed across notes (coarticulation), F1 is raised to stay above f0 for high notes (formant tuning
    of sopranos, Sundberg), and "trained" timbres cluster F3-F5 into the singer's formant near 3 kHz
    (Sundberg 1974).
  * a loudness control plays the singer's effort: it predicts each cycle's output power from the model's
    response at the harmonics and sets the excitation so that level follows the score's dynamics (rising
    ~3 dB/octave with pitch) instead of jumping whenever a harmonic meets a formant.
Because amplitude, source shape and formants are updated once per glottal cycle, vibrato automatically
produces the amplitude/timbre modulation real vibrato has as harmonics sweep through the formants.

Articulation. Notes are sung as syllables: an optional onset consonant from a small inventory (nasals and
liquids as dips in the voicing level with their own formant loci; voiced stops; fricatives and voiceless
stops as band-pass noise events that interrupt voicing, placed before the beat so the vowel lands on it),
attack/release envelopes, legato joins within a phrase, melismas, velocity and phrase-level dynamics.
In rests before a phrase the singer inhales: formant-filtered noise well below the singing level.
The stem is dry (no reverb) and peak-normalised to -1 dBFS.

Everything is vectorised over samples or over batches of glottal cycles: 20 s of vocal take well under a
second on one CPU core. `write_example` renders a short demo melody to a WAV file for listening.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft
from scipy import signal
from scipy.ndimage import gaussian_filter1d

from pipelines.corpus.formants import (
    CONSONANTS,
    VOWELS,
    resonator_coeffs,
    resonator_sos,
    tube_formants,
)
from pipelines.corpus.song import VocalNote
from pipelines.corpus.voice_control import (
    CTL_RATE,
    Syllable,
    VoiceTimbre,
    amplitude_envelope,
    formant_tracks,
    pitch_track,
    plan_syllables,
    raised_cosine,
    sample_span,
)

__all__ = ["VOWELS", "VoiceTimbre", "render_vocal", "write_example"]

_CONTOUR_RATE = 2000.0  # Hz; pitch and amplitude contours (10 ms glides and attacks still have 20 points)
_PEAK = 10 ** (-1.0 / 20.0)  # output is peak-normalised to -1 dBFS
_FRAC_STEPS = 256  # GCIs are placed to 1/256 sample (spurious sidebands < -70 dB, far below jitter)
_CHUNK = 384  # glottal cycles per vectorised batch (bounds memory at ~10 MB per array)
_POLY_LEN = 14  # glottal (3) + tilt (1) + five formants (10) poles, plus the constant term


def render_vocal(
    notes: Sequence[VocalNote],
    duration: float,
    sample_rate: int = 44100,
    seed: int = 0,
    timbre: VoiceTimbre | None = None,
    vowels: Sequence[str] | None = None,
) -> np.ndarray:
    """Sing `notes`; mono float32 of round(duration * sample_rate) samples, peak <= 1 (-1 dBFS if not silent).

    Deterministic for (notes, seed, timbre, vowels). `timbre=None` draws a singer with
    `VoiceTimbre.random(np.random.default_rng(seed))`. `vowels` forces one vowel per note (keys of `VOWELS`,
    in the order of `notes`), e.g. for tests; by default vowels, consonants and melismas are random.
    """
    sr = int(sample_rate)
    n = round(duration * sr)
    if vowels is not None:
        if len(vowels) != len(notes):
            raise ValueError(f"got {len(vowels)} vowels for {len(notes)} notes")
        unknown = sorted(set(vowels) - set(VOWELS))
        if unknown:
            raise ValueError(f"unknown vowels {unknown}; choose from {sorted(VOWELS)}")
    if timbre is None:
        timbre = VoiceTimbre.random(np.random.default_rng(seed))
    # Independent streams, so that e.g. a change in consonant logic does not reshuffle the pitch contour.
    plan_rng, pitch_rng, tract_rng, source_rng, event_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, 0x70CA1]).spawn(5)
    )

    sylls = plan_syllables(notes, vowels, n / sr, timbre, plan_rng)
    if n == 0 or not sylls:
        return np.zeros(n, dtype=np.float32)

    # Contours at a control rate: they are smooth, and only their values at glottal cycles are needed.
    contour_len = math.ceil(n / sr * _CONTOUR_RATE) + 2
    midi = pitch_track(sylls, contour_len, _CONTOUR_RATE, timbre, pitch_rng)
    f0 = np.clip(440.0 * 2.0 ** ((midi - 69.0) / 12.0), 50.0, 0.4 * sr)
    env, level_db = amplitude_envelope(sylls, contour_len, _CONTOUR_RATE, pitch_rng)
    tracks = formant_tracks(sylls, n / sr, timbre, tract_rng)
    frames = _Frames.make(sr, timbre.formant_scale)
    cycles = _glottal_cycles(f0, env, level_db, tracks, timbre, sr, n, frames, source_rng)
    # Breath noise for the aspiration: band-limited white noise, gated per glottal cycle when rendering.
    aspiration = signal.sosfilt(
        signal.butter(2, [400.0, min(9000.0, 0.45 * sr)], "bandpass", fs=sr, output="sos"),
        source_rng.standard_normal(n),
    )
    voiced = _render_cycles(cycles, aspiration, frames, sr) if cycles is not None else np.zeros(n)

    # Noise events are levelled against the sustained singing level, not against the (arbitrary) raw scale.
    sustained = np.interp(np.arange(n) / sr, np.arange(contour_len) / _CONTOUR_RATE, env) > 0.3 * env.max()
    ref_rms = float(np.sqrt(np.mean(voiced[sustained] ** 2))) if sustained.any() else 0.0
    y = voiced + _noise_events(sylls, n, sr, timbre, ref_rms, event_rng)
    peak = float(np.max(np.abs(y)))
    if peak > 0.0:
        y *= _PEAK / peak
    return y.astype(np.float32)


# ------------------------------------------------------------------------------------- voiced synthesis
def _soft_floor(x: np.ndarray, floor: np.ndarray, softness: float) -> np.ndarray:
    """max(x, floor) with a rounded corner, so formants pushed by the constraint still move smoothly."""
    return floor + softness * np.logaddexp(0.0, (x - floor) / softness)


def _harmonic_power_db(
    f0: np.ndarray,
    fg: np.ndarray,
    fa: np.ndarray,
    formants: np.ndarray,
    bandw: np.ndarray,
    sr: int,
    higher_poles_power: np.ndarray,
    fmax: float = 6000.0,
) -> np.ndarray:
    """Power (dB) of a unit-amplitude pulse train per cycle, from its harmonics below fmax.

    Uses the same source and tract model as the synthesis below, evaluated at the harmonic frequencies only;
    `higher_poles_power` is the static upper-tube response |H|^2 on an rfft grid from 0 to sr/2.
    """
    if len(f0) > 4 * _CHUNK:  # in batches: [cycles, harmonics] arrays would grow with the song's length
        return np.concatenate(
            [
                _harmonic_power_db(
                    f0[i : i + 4 * _CHUNK],
                    fg[i : i + 4 * _CHUNK],
                    fa[i : i + 4 * _CHUNK],
                    formants[i : i + 4 * _CHUNK],
                    bandw[i : i + 4 * _CHUNK],
                    sr,
                    higher_poles_power,
                    fmax,
                )
                for i in range(0, len(f0), 4 * _CHUNK)
            ]
        )
    h = np.arange(1, min(math.ceil(fmax / f0.min()), 200) + 1)
    freqs = f0[:, None] * h
    z = np.exp(-2j * np.pi * freqs / sr)
    ga1, ga2 = resonator_coeffs(fg, 1.2 * fg, sr)
    pole = np.exp(-2.0 * np.pi * fa / sr)[:, None]
    spec = (1.0 - z) * ((1.0 + ga1 + ga2)[:, None] / (1.0 + ga1[:, None] * z + ga2[:, None] * z * z))
    spec *= (1.0 - pole) / (1.0 - pole * z)
    a1, a2 = resonator_coeffs(formants, bandw, sr)
    for j in range(formants.shape[1]):
        spec *= (1.0 + a1[:, j] + a2[:, j])[:, None] / (1.0 + a1[:, j : j + 1] * z + a2[:, j : j + 1] * z * z)
    hp = np.interp(freqs, np.linspace(0.0, sr / 2, len(higher_poles_power)), higher_poles_power)
    power = np.sum(np.where(freqs < min(fmax, 0.45 * sr), np.abs(spec) ** 2 * hp, 0.0), axis=1) * f0**2
    return 10.0 * np.log10(power + 1e-30)


@dataclass
class _Frames:
    """The FFT frame on which each glottal cycle is synthesised, and everything static on it."""

    nfft: int
    pre: int  # index of the GCI in the frame: room before it for the anticausal glottal pulse
    cos: np.ndarray  # [_POLY_LEN, bins] Re e^{-jwk}: with `sin`, evaluates polynomials by real matmuls
    sin: np.ndarray  # [_POLY_LEN, bins] Im e^{-jwk}
    shift: np.ndarray  # [_FRAC_STEPS + 1, bins] lip radiation * delay to pre + 2 + fractional offset
    higher_poles: np.ndarray  # [bins] response of the neutral tube's poles above F5
    taper: np.ndarray  # [nfft] fades the frame ends so ringing truncated there cannot click

    @classmethod
    def make(cls, sr: int, formant_scale: float) -> _Frames:
        nfft = sfft.next_fast_len(round(0.046 * sr), real=True)  # ~46 ms: F1 ringing decays by > 45 dB
        pre = (3 * nfft) // 8
        w = 2.0 * np.pi * np.arange(nfft // 2 + 1) / nfft
        powers = np.exp(-1j * np.outer(np.arange(_POLY_LEN), w))
        z1 = powers[1]
        # The 2 extra samples of delay belong to the anticausal glottal formant (see _render_cycles).
        shift = (1.0 - z1) * np.exp(-1j * np.outer(pre + 2 + np.arange(_FRAC_STEPS + 1) / _FRAC_STEPS, w))
        tube_f, tube_b = tube_formants(formant_scale, 6, 0.85 * (sr / 2))
        ta1, ta2 = resonator_coeffs(tube_f, tube_b, sr)
        higher_poles = np.prod((1.0 + ta1 + ta2)[:, None] / (1.0 + ta1[:, None] * z1 + ta2[:, None] * z1 * z1), axis=0)
        taper = np.ones(nfft)
        fade_in, fade_out = nfft // 16, nfft // 8
        taper[:fade_in] = raised_cosine(np.arange(fade_in) / fade_in)
        taper[-fade_out:] = raised_cosine(np.arange(fade_out, 0, -1) / fade_out)
        return cls(nfft, pre, powers.real.copy(), powers.imag.copy(), shift, higher_poles, taper)


@dataclass
class _Cycles:
    """Synthesis parameters per glottal cycle (arrays over cycles, in time order)."""

    pos: np.ndarray  # GCI position, fractional samples
    length: np.ndarray  # samples since the previous GCI (bounded at voicing onsets)
    f0: np.ndarray
    amp: np.ndarray
    oq: np.ndarray  # open quotient
    fg: np.ndarray  # glottal formant, Hz
    fa: np.ndarray  # spectral-tilt cut-off, Hz
    noise_energy: np.ndarray  # energy of the cycle's aspiration noise at the glottis
    formants: np.ndarray  # [cycles, 5] Hz
    bandwidths: np.ndarray  # [cycles, 5] Hz


def _source_energy(fg: np.ndarray, fa: np.ndarray, sr: int, points: int = 128) -> np.ndarray:
    """Energy of one unit-amplitude glottal flow-derivative pulse (Parseval on a coarse frequency grid)."""
    if len(fg) > 4 * _CHUNK:  # in batches, to bound memory
        return np.concatenate(
            [
                _source_energy(fg[i : i + 4 * _CHUNK], fa[i : i + 4 * _CHUNK], sr, points)
                for i in range(0, len(fg), 4 * _CHUNK)
            ]
        )
    z = np.exp(-1j * np.linspace(0.0, np.pi, points))
    ga1, ga2 = resonator_coeffs(fg, 1.2 * fg, sr)
    pole = np.exp(-2.0 * np.pi * fa / sr)[:, None]
    spec = (1.0 - z) * ((1.0 + ga1 + ga2)[:, None] / (1.0 + ga1[:, None] * z + ga2[:, None] * z * z))
    spec *= (1.0 - pole) / (1.0 - pole * z)
    return np.mean(np.abs(spec) ** 2, axis=1)


def _glottal_cycles(
    f0: np.ndarray,
    env: np.ndarray,
    level_db: np.ndarray,
    tracks: tuple[np.ndarray, np.ndarray, np.ndarray],
    timbre: VoiceTimbre,
    sr: int,
    len_samples: int,
    frames: _Frames,
    rng: np.random.Generator,
) -> _Cycles | None:
    """Place the glottal cycles and set each one's source, tract and level parameters.

    `f0`, `env` and `level_db` are contours at `_CONTOUR_RATE`; the cycles are placed in samples at `sr`.
    """
    fs = _CONTOUR_RATE
    # Glottal closure instants: where the integrated f0 (trapezoidal rule) crosses whole cycles.
    phase = np.concatenate([[0.0], np.cumsum(0.5 * (f0[1:] + f0[:-1]))]) / fs
    ks = np.arange(1, math.floor(phase[-1]) + 1, dtype=np.float64)
    idx = np.clip(np.searchsorted(phase, ks), 1, len(phase) - 1)
    t_k = (idx - (phase[idx] - ks) / (phase[idx] - phase[idx - 1])) / fs  # seconds
    contour_t = np.arange(len(f0)) / fs
    env_k = np.interp(t_k, contour_t, env)
    voiced = (env_k > 1e-4 * env.max()) & (t_k * sr < len_samples)
    t_k, env_k = t_k[voiced], env_k[voiced]
    if len(t_k) == 0:
        return None
    f0k = np.interp(t_k, contour_t, f0)
    pos = t_k * sr
    period = sr / f0k
    pos = pos + rng.standard_normal(len(pos)) * timbre.jitter * period  # jitter
    pos = np.clip(pos, 0.0, len_samples - 1.0)
    length = np.minimum(np.diff(pos, prepend=pos[0] - period[0]), 1.2 * period).clip(1.0)

    level = np.interp(t_k, contour_t, level_db)
    loud = level - np.median(level)  # dB relative to the singer's typical level
    # Glottal source shape: breathy or soft -> larger open quotient (lower glottal formant, strong H1),
    # softer tilt; loud -> pressed and brighter (Fant's LF parameter correlations).
    oq = np.clip(0.55 + 0.3 * timbre.breathiness - 0.012 * loud, 0.35, 0.9)
    fg = np.minimum(0.7 * f0k / oq, 0.3 * sr)
    fa = 700.0 * 2.0 ** (3.2 * timbre.brightness) * (1.0 - 0.45 * timbre.breathiness) * 10 ** (loud / 30)
    fa = np.clip(fa, 400.0, 0.45 * sr)
    hnr_db = np.clip(30.0 - 24.0 * timbre.breathiness - 0.3 * loud, 4.0, 40.0)

    # Formants per cycle, with F1 kept above f0 (formant tuning) and the order F1 < F2 < ... < F5 kept.
    times, logf, bws = tracks
    t_k = pos / sr  # with jitter
    formants = np.stack([np.exp(np.interp(t_k, times, logf[:, j])) for j in range(5)], axis=1)
    bandw = np.stack([np.interp(t_k, times, bws[:, j]) for j in range(5)], axis=1)
    formants[:, 0] = _soft_floor(formants[:, 0], 1.15 * f0k, 30.0)
    for j, gap in zip(range(1, 5), (250.0, 250.0, 200.0, 200.0), strict=True):
        formants[:, j] = _soft_floor(formants[:, j], formants[:, j - 1] + gap, 40.0)
    formants = np.minimum(formants, 0.45 * sr)

    # Loudness control. The raw power of a pulse train through the tract swings by tens of dB with pitch
    # (~13 dB/octave) and with harmonics landing on or between formants; singers even this out with their
    # effort. Estimate each cycle's raw power and steer it to a target that rises 3 dB per octave of pitch
    # and keeps a little of the intrinsic loudness of open vowels (high F1) over close ones. Fast
    # fluctuations (vibrato, a harmonic sweeping through F1 in a glide) are left in, but soft-limited to
    # +/-2 dB, so they colour the sound without producing 6 dB bursts.
    raw_db = _harmonic_power_db(f0k, fg, fa, formants, bandw, sr, np.abs(frames.higher_poles) ** 2)
    grid = np.arange(pos[0], pos[-1] + 1.0, sr / CTL_RATE)
    slow = np.interp(pos, grid, gaussian_filter1d(np.interp(grid, pos, raw_db), 0.05 * CTL_RATE))
    fast = raw_db - slow
    smooth_db = slow + fast - 2.0 * np.tanh(fast / 2.0)
    target_db = 10.0 * np.log10(f0k / 220.0) + 3.0 * np.clip(np.log2(formants[:, 0] / 450.0), -1.0, 1.0)
    amp = env_k * 10 ** ((target_db - smooth_db - 20.0) / 20)  # raw output near -20 dBFS (cosmetic)
    amp *= np.exp(rng.standard_normal(len(pos)) * timbre.shimmer_db / 8.686)  # shimmer
    noise_energy = amp**2 * _source_energy(fg, fa, sr) * 10 ** (-hnr_db / 10)
    return _Cycles(pos, length, f0k, amp, oq, fg, fa, noise_energy, formants, bandw)


def _render_cycles(cyc: _Cycles, aspiration: np.ndarray, frames: _Frames, sr: int) -> np.ndarray:
    """Synthesise every glottal cycle on its own FFT frame and overlap-add them; returns float64 [n].

    Per cycle, with z = e^{-jw} on the frame's rfft grid:
        spectrum = [pulse + aspiration] * tract,   tract = V / D_vt(z),  V = D_vt(1) * higher poles,
        pulse = amp * (1 - z) * z^(pre + frac) * Dg(1) / conj(Dg(z)) * (1 - p) / (1 - p z).
    conj(Dg(z)) of the glottal formant's denominator Dg = 1 + g1 z + g2 z^2 is its time reversal
    (anticausal: the pulse builds up towards the GCI); on the unit circle it equals z^-2 * R(z) with
    R = g2 + g1 z + z^2. So every denominator folds into one polynomial R * (1 - p z) * D_vt of order 13,
    evaluated by a small matrix product, and the aspiration is pre-filtered by R * (1 - p z) (a 4-tap FIR)
    so that it passes through the tract only.
    """
    n = len(aspiration)
    nfft, pre = frames.nfft, frames.pre
    buf = np.zeros(n + nfft + 1)  # buf[i] holds output sample i - pre
    for c0 in range(0, len(cyc.pos), _CHUNK):
        sl = slice(c0, c0 + _CHUNK)
        p = cyc.pos[sl]
        base = np.floor(p).astype(np.int64)
        q = np.rint((p - base) * _FRAC_STEPS).astype(np.int64)
        m = len(p)
        ga1, ga2 = resonator_coeffs(cyc.fg[sl], cyc.fg[sl] * 1.2, sr)
        pole = np.exp(-2.0 * np.pi * cyc.fa[sl] / sr)
        glottal = np.stack([ga2, ga1 - pole * ga2, 1.0 - pole * ga1, -pole], axis=1)  # R * (1 - p z)
        # Vocal tract: the F1-F5 cascade's denominator polynomial, then the complete denominator.
        a1, a2 = resonator_coeffs(cyc.formants[sl], cyc.bandwidths[sl], sr)
        poly = np.zeros((m, _POLY_LEN))
        poly[:, :4] = glottal
        for j in range(5):
            order = 3 + 2 * j + 1
            prev = poly[:, :order].copy()
            poly[:, 1 : order + 1] += a1[:, j : j + 1] * prev
            poly[:, 2 : order + 2] += a2[:, j : j + 1] * prev
        tract_gain = np.prod(1.0 + a1 + a2, axis=1)
        denominator = np.empty((m, frames.cos.shape[1]), dtype=np.complex128)
        denominator.real = poly @ frames.cos
        denominator.imag = poly @ frames.sin

        # Aspiration for this cycle: noise from the previous GCI up to this one, strongest in the open
        # phase (flow^2-like bump peaking 2/3 into it), at the energy the harmonics-to-noise ratio asks for.
        length = cyc.length[sl]
        span = int(min(np.ceil(length.max()), pre - 8)) + 1
        sidx = base[:, None] + np.arange(-span + 1, 1)
        u = 1.0 - (p[:, None] - sidx) / length[:, None]  # 0 at the previous GCI, 1 at this one
        op = cyc.oq[sl][:, None]
        v = np.clip((u - (1.0 - op)) / op, 0.0, 1.0)
        gate = np.where(u >= 0.0, 0.2 + 0.8 * 6.75 * v * v * (1.0 - v), 0.0)
        noise = aspiration[np.clip(sidx, 0, n - 1)] * gate
        noise *= np.sqrt(cyc.noise_energy[sl] / (np.sum(noise * noise, axis=1) + 1e-300))[:, None]
        block = np.zeros((m, nfft))
        lo_col = pre - span + 1
        for k in range(4):  # FIR with the glottal denominator, cancelled again by the division below
            block[:, lo_col + k : lo_col + k + span] += glottal[:, k : k + 1] * noise

        spec = sfft.rfft(block, axis=1)
        spec += frames.shift[q] * (cyc.amp[sl] * (1.0 + ga1 + ga2) * (1.0 - pole))[:, None]
        spec *= frames.higher_poles
        spec /= denominator
        block = sfft.irfft(spec * tract_gain[:, None], n=nfft, axis=1)
        block *= frames.taper

        # Overlap-add at each cycle's position (bincount is a fast scatter-add).
        lo = int(base.min())
        acc = np.bincount(((base - lo)[:, None] + np.arange(nfft)).ravel(), weights=block.ravel())
        buf[lo : lo + len(acc)] += acc
    return buf[pre : pre + n]


# ---------------------------------------------------------------------------------- consonants, breaths
def _noise_events(
    sylls: list[Syllable], n: int, sr: int, timbre: VoiceTimbre, ref_rms: float, rng: np.random.Generator
) -> np.ndarray:
    """Frication, stop bursts and aspiration at syllable onsets, and inhalations before phrases."""
    out = np.zeros(n)
    scale = timbre.formant_scale
    nyq = 0.5 * sr

    def add(t0: float, dur: float, sos: np.ndarray, level_db: float, attack: float) -> None:
        # Filtered noise, normalised to unit RMS, under an attack/decay envelope peaking at `attack`.
        a, b, t = sample_span(t0, t0 + dur, n, sr)
        if b - a < 4:
            return
        x = signal.sosfilt(sos, rng.standard_normal(b - a + 256))[256:]  # skip the filter's start-up
        x /= np.sqrt(np.mean(x * x)) + 1e-20
        x = x[: b - a]
        rel = (t - t0) / dur
        shape = np.where(
            rel < attack, raised_cosine(rel / max(attack, 1e-6)), raised_cosine((1.0 - rel) / (1.0 - attack))
        )
        out[a:b] += x * shape * ref_rms * 10 ** (level_db / 20)

    def band(lo: float, hi: float) -> np.ndarray:
        lo, hi = lo * scale, min(hi * scale, 0.9 * nyq)
        return signal.butter(2, [min(lo, 0.5 * hi), hi], "bandpass", fs=sr, output="sos")

    tube_f, tube_b = tube_formants(scale, 6, 0.85 * nyq)
    highpass = signal.butter(2, 300.0, "highpass", fs=sr, output="sos")

    def tract(freqs: Sequence[float], bws: Sequence[float]) -> np.ndarray:
        # Noise excited at the glottis through a formant cascade; the neutral tube's higher poles keep its
        # high frequencies (the "air" of an h or a breath) at a natural level.
        f = np.concatenate([np.asarray(freqs) * scale, tube_f])
        return np.vstack([highpass, resonator_sos(f, np.concatenate([bws, tube_b]), sr)])

    def vowel_shaped(vowel: str) -> np.ndarray:
        # "h" and stop aspiration: turbulence at the glottis, shaped by the coming vowel's formants, which
        # are damped by the open glottis.
        freqs, bws = VOWELS[vowel]
        return tract(freqs, np.array(bws) * 2.0)

    for s in sylls:
        if s.consonant is None or s.kind == "sonorant":
            continue
        c = CONSONANTS[s.consonant]
        if s.kind == "fricative":
            sos = band(*c.noise_band) if c.noise_band else vowel_shaped(s.vowel)
            add(s.start - s.lead, s.lead + 0.02, sos, c.noise_db + rng.normal(0, 1.5), 0.6)
        elif s.kind == "stop":
            # Closure (silence), a ~12 ms burst, then aspiration running into the vowel.
            asp = min({"t": 0.03, "k": 0.04, "p": 0.02}.get(s.consonant, 0.03), 0.5 * s.lead)
            t_burst = s.start - asp
            add(t_burst, 0.012, band(*c.noise_band), c.noise_db + rng.normal(0, 1.5), 0.1)
            add(t_burst + 0.004, asp + 0.015, vowel_shaped(s.vowel), c.noise_db - 8.0, 0.25)
        else:  # voiced stop: a weak release burst at the vowel onset
            add(s.start - 0.006, 0.01, band(*c.noise_band), c.noise_db + rng.normal(0, 1.5), 0.1)

    # Inhalation: turbulence through an open, neutral tract (damped formants), gently low-passed.
    breath_sos = np.vstack(
        [
            signal.butter(1, min(7000.0, 0.45 * sr), fs=sr, output="sos"),
            tract([600.0, 1300.0, 2400.0, 3400.0, 4400.0], [250.0, 300.0, 400.0, 500.0, 600.0]),
        ]
    )
    for i, s in enumerate(sylls):
        if not s.phrase_start:
            continue
        # Inhale in the rest before the phrase: after the previous note has died away, done shortly
        # before the first consonant or vowel.
        onset = s.start - s.lead - 0.02
        free_from = sylls[i - 1].end + 0.2 if i else 0.0
        room = onset - free_from
        after = rng.uniform(0.03, 0.1)
        dur = min(rng.uniform(0.3, 0.65), room - after - 0.05)
        if dur < 0.15:
            continue
        add(onset - after - dur, dur, breath_sos, timbre.breath_level_db + rng.normal(0, 1.5), rng.uniform(0.55, 0.75))
    return out


# ------------------------------------------------------------------------------------------ listening aid
def write_example(
    path: str | os.PathLike[str] = "/tmp/voice_example.wav",
    seed: int = 0,
    sample_rate: int = 44100,
    timbre: VoiceTimbre | None = None,
) -> np.ndarray:
    """Sing a built-in three-phrase melody (16.5 s, A minor) into a WAV file; returns the audio.

    For listening checks: legato runs, leaps, long notes with vibrato, staccato notes and breaths.
    """
    import soundfile  # only the listening aid writes files

    beat = 0.5  # 120 bpm
    phrases = [  # (MIDI pitch, start beat, length in beats)
        [(57, 1, 1), (60, 2, 1), (64, 3, 2), (62, 5, 1), (60, 6, 0.5), (59, 6.5, 0.5), (57, 7, 3)],
        [
            (64, 12, 0.5),
            (64, 12.5, 0.5),
            (65, 13, 1),
            (67, 14, 1.5),
            (69, 15.5, 0.5),
            (72, 16, 2),
            (71, 18, 1),
            (67, 19, 2),
        ],
        [
            (69, 23, 1),
            (67, 24, 0.4),
            (65, 24.5, 0.4),
            (64, 25, 1),
            (62, 26, 0.5),
            (60, 26.5, 0.5),
            (59, 27, 1),
            (57, 28, 3.5),
        ],
    ]
    notes = [
        VocalNote(pitch, start * beat, (start + length) * beat, 90 + 4 * (i % 3), phrase)
        for phrase, line in enumerate(phrases)
        for i, (pitch, start, length) in enumerate(line)
    ]
    audio = render_vocal(notes, 33 * beat, sample_rate, seed, timbre)
    soundfile.write(os.fspath(path), audio, sample_rate)
    return audio
