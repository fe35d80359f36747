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
from dataclasses import dataclass, fields

import numpy as np
from scipy import fft as sfft
from scipy import signal
from scipy.ndimage import gaussian_filter1d

from pipelines.corpus.formants import (
    CONSONANTS,
    VOWEL_WEIGHTS,
    VOWELS,
    resonator_coeffs,
    resonator_sos,
    tube_formants,
)
from pipelines.corpus.song import VocalNote

__all__ = ["VOWELS", "VoiceTimbre", "render_vocal", "write_example"]

_LEGATO_GAP_S = 0.1  # notes of one phrase closer than this are joined without a break in voicing
_CTL_RATE = 200.0  # Hz; formant tracks are built at this rate and interpolated per glottal cycle
_CONTOUR_RATE = 2000.0  # Hz; pitch and amplitude contours (10 ms glides and attacks still have 20 points)
_PEAK = 10 ** (-1.0 / 20.0)  # output is peak-normalised to -1 dBFS
_FRAC_STEPS = 256  # GCIs are placed to 1/256 sample (spurious sidebands < -70 dB, far below jitter)
_CHUNK = 384  # glottal cycles per vectorised batch (bounds memory at ~10 MB per array)
_POLY_LEN = 14  # glottal (3) + tilt (1) + five formants (10) poles, plus the constant term


@dataclass(frozen=True)
class VoiceTimbre:
    """The singer: everything that stays fixed across one rendered vocal."""

    formant_scale: float = 1.0  # 1/vocal-tract length: ~1.0 adult male, ~1.15-1.2 adult female
    breathiness: float = 0.25  # 0 pressed/clean .. 1 very breathy (aspiration level, open quotient)
    brightness: float = 0.5  # 0 dark .. 1 bright (cut-off of the glottal spectral tilt)
    singer_formant: float = 0.0  # 0 none .. 1 strong clustering of F3-F5 near 3 kHz (trained singers)
    vibrato_rate_hz: float = 5.5
    vibrato_depth_cents: float = 30.0  # peak deviation (+/-) of fully developed vibrato
    vibrato_delay_s: float = 0.3  # vibrato starts this far into a note, then ramps up
    jitter: float = 0.004  # std of glottal-cycle timing, relative to the period
    shimmer_db: float = 0.3  # std of cycle-to-cycle amplitude, dB
    drift_cents: float = 4.0  # std of slow pitch wander (and of per-note intonation error, halved)
    portamento_s: float = 0.06  # typical duration of a legato glide between notes
    scoop_prob: float = 0.3  # probability of scooping up into a note onset
    consonant_prob: float = 0.6  # probability that a syllable starts with a consonant
    breath_level_db: float = -24.0  # inhalation level relative to the sung level

    def __post_init__(self) -> None:
        checks = {
            "formant_scale": 0.7 <= self.formant_scale <= 1.5,
            "breathiness": 0.0 <= self.breathiness <= 1.0,
            "brightness": 0.0 <= self.brightness <= 1.0,
            "singer_formant": 0.0 <= self.singer_formant <= 1.0,
            "vibrato_rate_hz": 0.0 < self.vibrato_rate_hz <= 12.0,
            "vibrato_depth_cents": 0.0 <= self.vibrato_depth_cents <= 150.0,
            "vibrato_delay_s": self.vibrato_delay_s >= 0.0,
            "jitter": 0.0 <= self.jitter <= 0.05,
            "shimmer_db": 0.0 <= self.shimmer_db <= 3.0,
            "drift_cents": 0.0 <= self.drift_cents <= 50.0,
            "portamento_s": 0.0 <= self.portamento_s <= 0.5,
            "scoop_prob": 0.0 <= self.scoop_prob <= 1.0,
            "consonant_prob": 0.0 <= self.consonant_prob <= 1.0,
            "breath_level_db": self.breath_level_db <= 0.0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            values = {f.name: getattr(self, f.name) for f in fields(self) if f.name in bad}
            raise ValueError(f"VoiceTimbre values out of range: {values}")

    @classmethod
    def random(cls, rng: np.random.Generator) -> VoiceTimbre:
        """A plausible random singer: a male or female tract, a pop-to-classical range of vibrato etc."""
        female = rng.random() < 0.5
        trained = rng.random() < 0.3  # classically trained: singer's formant, steadier, wider vibrato
        return cls(
            formant_scale=float(rng.uniform(1.12, 1.22) if female else rng.uniform(0.94, 1.04)),
            breathiness=float(rng.beta(2.0, 3.5)),
            brightness=float(rng.uniform(0.25, 0.9)),
            singer_formant=float(rng.uniform(0.4, 0.9) * (0.5 if female else 1.0) if trained
                                 else rng.uniform(0.0, 0.2)),
            vibrato_rate_hz=float(rng.uniform(4.8, 6.3)),
            vibrato_depth_cents=float(rng.uniform(30.0, 45.0) if trained else rng.uniform(12.0, 35.0)),
            vibrato_delay_s=float(rng.uniform(0.18, 0.4)),
            jitter=float(rng.uniform(0.002, 0.006) if trained else rng.uniform(0.003, 0.009)),
            shimmer_db=float(rng.uniform(0.15, 0.5)),
            drift_cents=float(rng.uniform(1.5, 4.0) if trained else rng.uniform(2.5, 8.0)),
            portamento_s=float(rng.uniform(0.03, 0.12)),
            scoop_prob=float(rng.uniform(0.05, 0.25) if trained else rng.uniform(0.15, 0.6)),
            consonant_prob=float(rng.uniform(0.4, 0.9)),
            breath_level_db=float(rng.uniform(-30.0, -18.0)),
        )


@dataclass
class _Syllable:
    """One note as the singer will perform it (decided once, up front, from the rng)."""

    start: float  # vowel onset = note start (consonants come before it)
    end: float  # end of voicing; may be cut short by the next syllable's voiceless consonant
    pitch: float  # MIDI, including a small intonation error
    level_db: float
    vowel: str
    consonant: str | None
    lead: float  # seconds the consonant occupies before `start`
    legato: bool  # joined to the previous note without a break in voicing
    phrase: int
    phrase_start: bool = False
    phrase_end: bool = False

    @property
    def kind(self) -> str | None:
        return CONSONANTS[self.consonant].kind if self.consonant else None


def render_vocal(notes: Sequence[VocalNote], duration: float, sample_rate: int = 44100, seed: int = 0,
                 timbre: VoiceTimbre | None = None, vowels: Sequence[str] | None = None) -> np.ndarray:
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
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, 0x70CA1]).spawn(5))

    sylls = _plan(notes, vowels, n / sr, timbre, plan_rng)
    if n == 0 or not sylls:
        return np.zeros(n, dtype=np.float32)

    # Contours at a control rate: they are smooth, and only their values at glottal cycles are needed.
    contour_len = math.ceil(n / sr * _CONTOUR_RATE) + 2
    midi = _pitch_track(sylls, contour_len, _CONTOUR_RATE, timbre, pitch_rng)
    f0 = np.clip(440.0 * 2.0 ** ((midi - 69.0) / 12.0), 50.0, 0.4 * sr)
    env, level_db = _envelope(sylls, contour_len, _CONTOUR_RATE, pitch_rng)
    tracks = _formant_tracks(sylls, n / sr, timbre, tract_rng)
    frames = _Frames.make(sr, timbre.formant_scale)
    cycles = _glottal_cycles(f0, env, level_db, tracks, timbre, sr, n, frames, source_rng)
    # Breath noise for the aspiration: band-limited white noise, gated per glottal cycle when rendering.
    aspiration = signal.sosfilt(signal.butter(2, [400.0, min(9000.0, 0.45 * sr)], "bandpass", fs=sr,
                                              output="sos"), source_rng.standard_normal(n))
    voiced = _render_cycles(cycles, aspiration, frames, sr) if cycles is not None else np.zeros(n)

    # Noise events are levelled against the sustained singing level, not against the (arbitrary) raw scale.
    sustained = np.interp(np.arange(n) / sr, np.arange(contour_len) / _CONTOUR_RATE, env) > 0.3 * env.max()
    ref_rms = float(np.sqrt(np.mean(voiced[sustained] ** 2))) if sustained.any() else 0.0
    y = voiced + _noise_events(sylls, n, sr, timbre, ref_rms, event_rng)
    peak = float(np.max(np.abs(y)))
    if peak > 0.0:
        y *= _PEAK / peak
    return y.astype(np.float32)


# --------------------------------------------------------------------------------------------- planning
def _plan(notes: Sequence[VocalNote], vowels: Sequence[str] | None, duration: float, timbre: VoiceTimbre,
          rng: np.random.Generator) -> list[_Syllable]:
    forced = list(vowels) if vowels is not None else [None] * len(notes)
    pairs = sorted(((nt, v) for nt, v in zip(notes, forced, strict=True)
                    if nt.end > nt.start and nt.start < duration), key=lambda p: p[0].start)
    vowel_names = list(VOWEL_WEIGHTS)
    vowel_p = np.array(list(VOWEL_WEIGHTS.values()))
    vowel_p /= vowel_p.sum()
    cons_names = list(CONSONANTS)
    cons_p = np.array([c.weight for c in CONSONANTS.values()])
    cons_p /= cons_p.sum()
    extent: dict[int, tuple[float, float]] = {}
    for nt, _ in pairs:
        a, b = extent.get(nt.phrase, (nt.start, nt.end))
        extent[nt.phrase] = (min(a, nt.start), max(b, nt.end))
    phrase_db = {p: (rng.normal(0.0, 1.5), rng.uniform(0.0, 3.0)) for p in sorted(extent)}

    sylls: list[_Syllable] = []
    for i, (nt, vowel) in enumerate(pairs):
        prev = pairs[i - 1][0] if i else None
        same_phrase = prev is not None and prev.phrase == nt.phrase
        joined = same_phrase and nt.start - prev.end < _LEGATO_GAP_S
        # A melisma carries one syllable over several notes: same vowel, no new consonant.
        melisma = joined and vowel is None and rng.random() < 0.25
        if vowel is None:
            vowel = sylls[-1].vowel if melisma else vowel_names[rng.choice(len(vowel_names), p=vowel_p)]
        consonant, lead = None, 0.0
        if not melisma and rng.random() < timbre.consonant_prob:
            consonant = cons_names[rng.choice(len(cons_names), p=cons_p)]
            lead = {"sonorant": (0.05, 0.09), "voiced_stop": (0.03, 0.05), "fricative": (0.07, 0.13),
                    "stop": (0.05, 0.08)}[CONSONANTS[consonant].kind]
            lead = rng.uniform(*lead)
            # Consonants are sung before the beat, but may take at most 40 % of the previous note.
            floor = prev.start + 0.6 * (prev.end - prev.start) if prev is not None else 0.0
            lead = min(lead, 0.9 * (nt.start - floor))
            if lead < 0.025:
                consonant, lead = None, 0.0
        offset_db, arc_db = phrase_db[nt.phrase]
        a, b = extent[nt.phrase]
        x = (nt.start - a) / max(b - a, 1e-3)
        # Velocity sets the level (0.12 dB per step, +/-6 dB over the MIDI range); phrases get an overall
        # level and a gentle arc.
        level = 0.12 * (nt.velocity - 100) + offset_db + arc_db * math.sin(math.pi * x) + rng.normal(0.0, 0.7)
        pitch = nt.pitch + rng.normal(0.0, 0.5 * timbre.drift_cents) / 100.0
        sylls.append(_Syllable(nt.start, min(nt.end, duration), pitch, level, vowel, consonant, lead,
                               joined, nt.phrase, phrase_start=not same_phrase))
    for i, s in enumerate(sylls):
        s.phrase_end = i + 1 == len(sylls) or sylls[i + 1].phrase != s.phrase
        if s.kind in ("fricative", "stop"):
            # Voiceless consonants interrupt the voice: the previous note stops before the consonant.
            s.legato = False
            if i:
                sylls[i - 1].end = min(sylls[i - 1].end, s.start - s.lead - 0.01)
    return sylls


# -------------------------------------------------------------------------------------- control curves
def _rc(x: np.ndarray) -> np.ndarray:
    """Raised-cosine ramp: 0 for x <= 0, 1 for x >= 1."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def _span(t0: float, t1: float, n: int, fs: float) -> tuple[int, int, np.ndarray]:
    """Index range [a, b) covering [t0, t1) of a signal of n points at rate fs, and its times in seconds."""
    a = min(max(math.floor(t0 * fs), 0), n)
    b = min(max(math.ceil(t1 * fs), a), n)
    return a, b, np.arange(a, b) / fs


def _add_step(deriv: np.ndarray, t0: float, t1: float, delta: float, fs: float) -> None:
    """Make cumsum(deriv) rise by `delta` along a raised cosine from t0 to t1 (a glide, a level change)."""
    i0 = math.floor(t0 * fs)
    m = max(math.ceil((t1 - t0) * fs), 1)
    d = np.diff(_rc(np.arange(1, m + 1) / m), prepend=0.0) * delta
    idx = np.arange(i0, i0 + m)
    before = idx < 0
    if before.any():  # the part before the signal still has to count towards the total step
        deriv[0] += d[before].sum()
    keep = (idx >= 0) & (idx < len(deriv))
    deriv[idx[keep]] += d[keep]


def _smooth_noise(rng: np.random.Generator, n: int, fs: float, cutoff_hz: float) -> np.ndarray:
    """Unit-variance low-pass noise (white noise at a coarse rate, Gaussian-smoothed, interpolated)."""
    rate = 8.0 * cutoff_hz
    m = int(n / fs * rate) + 16
    x = gaussian_filter1d(rng.standard_normal(m), sigma=rate / (2.0 * np.pi * cutoff_hz))
    x = (x - x.mean()) / (x.std() + 1e-12)
    return np.interp(np.arange(n) * (rate / fs), np.arange(m), x)


def _pitch_track(sylls: list[_Syllable], n: int, fs: float, timbre: VoiceTimbre,
                 rng: np.random.Generator) -> np.ndarray:
    """Pitch (fractional MIDI) at control rate fs: notes, glides, scoops, falls, vibrato, drift, flutter."""
    deriv = np.zeros(n)  # glides between notes, integrated below
    local = np.zeros(n)  # transient deviations in semitones (scoops, falls)
    vib_depth = np.zeros(n)  # cents
    for i, s in enumerate(sylls):
        nxt = sylls[i + 1] if i + 1 < len(sylls) else None
        dur = s.end - s.start
        if i:
            p = sylls[i - 1]
            delta = s.pitch - p.pitch
            if s.legato:
                # Larger intervals take a little longer; the glide straddles the onset, mostly after it.
                w = timbre.portamento_s * rng.uniform(0.7, 1.3) * (0.8 + 0.06 * min(abs(delta), 7.0))
                w = max(min(w, 0.4 * dur, 0.4 * (p.end - p.start)), 0.01)
                c = s.start + rng.uniform(-0.25, 0.35) * w
            else:  # voicing is interrupted: change pitch in the gap
                gap = max(s.start - s.lead - p.end, 0.0)
                w = max(min(0.06, gap), 0.005)
                c = p.end + 0.5 * gap
            _add_step(deriv, c - 0.5 * w, c + 0.5 * w, delta, fs)
        # Where the next note's voicing may begin: anything this note adds must be over by then.
        limit = nxt.start - nxt.lead - 0.02 if nxt is not None else math.inf
        scoop_p = timbre.scoop_prob * (0.5 if s.legato else 1.0)
        if rng.random() < scoop_p:
            # Scoop: dip below the note by the onset (smoothly, if the voice is already sounding) and
            # approach the note exponentially (tau 30-60 ms).
            depth = rng.uniform(0.2, 0.5) if s.legato else rng.uniform(0.4, 1.2)
            tau = rng.uniform(0.03, 0.06)
            t_in = s.start - max(s.lead, 0.04)
            a, b, t = _span(t_in, s.start + 6 * tau, n, fs)
            local[a:b] -= depth * np.where(t < s.start, _rc((t - t_in) / (s.start - t_in)),
                                           np.exp(-np.maximum(t - s.start, 0.0) / tau))
        if s.phrase_end and rng.random() < 0.35 and limit > s.end + 0.15:
            # Fall-off: the pitch sags while the last note of a phrase dies away.
            fall = rng.uniform(0.3, 1.5)
            a, b, t = _span(s.end - 0.05, min(s.end + 0.4, limit), n, fs)
            local[a:b] -= fall * _rc((t - (s.end - 0.05)) / 0.3)
        if dur > 0.25 and timbre.vibrato_depth_cents > 0:
            onset = s.start + min(timbre.vibrato_delay_s * rng.uniform(0.8, 1.25), 0.5 * dur)
            ramp = rng.uniform(0.2, 0.45)
            depth = timbre.vibrato_depth_cents * rng.uniform(0.75, 1.2) * min(1.0, (dur - 0.15) / 0.6)
            # Before a legato neighbour the vibrato fades out so the glide starts from the note itself.
            stop = s.end - 0.02 if nxt is not None and nxt.legato else min(s.end + 0.15, limit)
            a, b, t = _span(onset, stop, n, fs)
            curve = depth * _rc((t - onset) / ramp) * _rc((stop - t) / 0.06)
            np.maximum(vib_depth[a:b], curve, out=vib_depth[a:b])

    # Vibrato rate and depth wander slowly (+/-5 % and +/-12 %): a perfectly periodic LFO sounds synthetic.
    vib_rate = timbre.vibrato_rate_hz * (1.0 + 0.05 * _smooth_noise(rng, n, fs, 0.4))
    phase = 2.0 * np.pi * np.cumsum(vib_rate) / fs + rng.uniform(0.0, 2.0 * np.pi)
    vibrato = vib_depth * (1.0 + 0.12 * _smooth_noise(rng, n, fs, 0.7)) * np.sin(phase)
    cents = (vibrato + timbre.drift_cents * _smooth_noise(rng, n, fs, 0.25)
             + 2.0 * _smooth_noise(rng, n, fs, 6.0))  # flutter: a couple of cents of fast wobble
    return sylls[0].pitch + np.cumsum(deriv) + local + cents / 100.0


def _envelope(sylls: list[_Syllable], n: int, fs: float,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Voicing amplitude (linear, includes dynamics) and the sung level in dB, at control rate fs."""
    shape = np.zeros(n)
    level_deriv = np.zeros(n)
    swell = np.zeros(n)
    # Voiced segments: maximal runs of legato-joined syllables.
    starts = [i for i, s in enumerate(sylls) if not s.legato or i == 0]
    for k, first in enumerate(starts):
        last = (starts[k + 1] if k + 1 < len(starts) else len(sylls)) - 1
        f, lst = sylls[first], sylls[last]
        s0 = f.start - (f.lead + 0.015 if f.kind in ("sonorant", "voiced_stop") else 0.0)
        e0 = lst.end
        att = {None: rng.uniform(0.04, 0.1), "sonorant": 0.025, "voiced_stop": 0.015,
               "fricative": rng.uniform(0.02, 0.04), "stop": rng.uniform(0.01, 0.025)}[f.kind]
        rel = rng.uniform(0.12, 0.3) if lst.phrase_end else rng.uniform(0.06, 0.14)
        length = max(e0 - s0, 1e-3)
        att = min(att, 0.4 * length)
        rel = min(rel, 0.8 * length)
        # The release ends half a release after the note end, but never runs into the next consonant.
        r1 = e0 + 0.5 * rel
        if last + 1 < len(sylls):
            r1 = min(r1, sylls[last + 1].start - sylls[last + 1].lead)
        a, b, t = _span(s0, r1, n, fs)
        np.maximum(shape[a:b], _rc((t - s0) / att) * _rc((r1 - t) / rel), out=shape[a:b])
    for i, s in enumerate(sylls):
        if i:
            _add_step(level_deriv, s.start - 0.03, s.start + 0.03, s.level_db - sylls[i - 1].level_db, fs)
        dur = s.end - s.start
        if dur > 0.6:  # messa di voce: a long note swells or fades by a dB or two
            a, b, t = _span(s.start, s.end, n, fs)
            swell[a:b] += rng.normal(0.0, 1.5) * np.sin(np.pi * (t - s.start) / dur)
        if s.kind in ("sonorant", "voiced_stop"):
            # Nasal/liquid murmur or stop closure: the level dips while the consonant is held.
            c0, c1 = s.start - s.lead, s.start
            a, b, t = _span(c0 - 0.015, c1 + 0.02, n, fs)
            bump = _rc((t - (c0 - 0.015)) / 0.03) * _rc((c1 + 0.02 - t) / 0.035)
            shape[a:b] *= 1.0 - (1.0 - 10 ** (CONSONANTS[s.consonant].dip_db / 20)) * bump
    level_db = sylls[0].level_db + np.cumsum(level_deriv) + swell
    return shape * 10 ** (level_db / 20), level_db


def _formant_tracks(sylls: list[_Syllable], duration: float, timbre: VoiceTimbre,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Control-rate formant tracks: times (s), log-frequencies [K, 5] and bandwidths [K, 5] (Hz)."""
    k_total = math.ceil(duration * _CTL_RATE) + 2
    logf = np.zeros((k_total, 5))
    bw = np.zeros((k_total, 5))

    def k(t: float) -> int:
        return min(max(round(t * _CTL_RATE), 0), k_total)

    for i, s in enumerate(sylls):
        a = 0 if i == 0 else k(s.start - s.lead)
        b = k_total if i + 1 == len(sylls) else k(sylls[i + 1].start - sylls[i + 1].lead)
        freqs, bws = VOWELS[s.vowel]
        # Every rendition of a vowel differs a little (F1-F3 by ~3 %).
        jitter = rng.normal(0.0, 0.03, 5) * np.array([1.0, 1.0, 1.0, 0.5, 0.5])
        logf[a:b] = np.log(freqs) + jitter
        bw[a:b] = bws
        if s.consonant and CONSONANTS[s.consonant].loci[0] > 0:  # "h" has no loci: it takes the vowel's
            c = CONSONANTS[s.consonant]
            cb = k(s.start)
            logf[a:cb, :3] = np.log(c.loci)
            bw[a:cb, :3] = c.bandwidths
    logf += math.log(timbre.formant_scale)
    g = timbre.singer_formant
    if g > 0:
        # Singer's formant: F3-F5 drawn together around ~2.9 kHz (male) make one strong, narrow peak.
        centre = 2900.0 * timbre.formant_scale
        logf[:, 2:5] = (1 - g) * logf[:, 2:5] + g * np.log(centre * np.array([0.88, 1.0, 1.13]))
        bw[:, 2:5] *= 1.0 - 0.35 * g
    bw[:, 0] *= 1.0 + 0.6 * timbre.breathiness  # an open glottis damps F1
    # Coarticulation: formants move between targets over ~50-80 ms instead of jumping.
    sigma = 0.02 * _CTL_RATE
    logf = gaussian_filter1d(logf, sigma, axis=0, mode="nearest")
    bw = gaussian_filter1d(bw, sigma, axis=0, mode="nearest")
    return np.arange(k_total) / _CTL_RATE, logf, bw


# ------------------------------------------------------------------------------------- voiced synthesis
def _soft_floor(x: np.ndarray, floor: np.ndarray, softness: float) -> np.ndarray:
    """max(x, floor) with a rounded corner, so formants pushed by the constraint still move smoothly."""
    return floor + softness * np.logaddexp(0.0, (x - floor) / softness)


def _harmonic_power_db(f0: np.ndarray, fg: np.ndarray, fa: np.ndarray, formants: np.ndarray,
                       bandw: np.ndarray, sr: int, higher_poles_power: np.ndarray,
                       fmax: float = 6000.0) -> np.ndarray:
    """Power (dB) of a unit-amplitude pulse train per cycle, from its harmonics below fmax.

    Uses the same source and tract model as the synthesis below, evaluated at the harmonic frequencies only;
    `higher_poles_power` is the static upper-tube response |H|^2 on an rfft grid from 0 to sr/2.
    """
    if len(f0) > 4 * _CHUNK:  # in batches: [cycles, harmonics] arrays would grow with the song's length
        return np.concatenate([
            _harmonic_power_db(f0[i:i + 4 * _CHUNK], fg[i:i + 4 * _CHUNK], fa[i:i + 4 * _CHUNK],
                               formants[i:i + 4 * _CHUNK], bandw[i:i + 4 * _CHUNK], sr, higher_poles_power,
                               fmax)
            for i in range(0, len(f0), 4 * _CHUNK)])
    h = np.arange(1, min(math.ceil(fmax / f0.min()), 200) + 1)
    freqs = f0[:, None] * h
    z = np.exp(-2j * np.pi * freqs / sr)
    ga1, ga2 = resonator_coeffs(fg, 1.2 * fg, sr)
    pole = np.exp(-2.0 * np.pi * fa / sr)[:, None]
    spec = (1.0 - z) * ((1.0 + ga1 + ga2)[:, None] / (1.0 + ga1[:, None] * z + ga2[:, None] * z * z))
    spec *= (1.0 - pole) / (1.0 - pole * z)
    a1, a2 = resonator_coeffs(formants, bandw, sr)
    for j in range(formants.shape[1]):
        spec *= ((1.0 + a1[:, j] + a2[:, j])[:, None] / (1.0 + a1[:, j:j + 1] * z + a2[:, j:j + 1] * z * z))
    hp = np.interp(freqs, np.linspace(0.0, sr / 2, len(higher_poles_power)), higher_poles_power)
    power = np.sum(np.where(freqs < min(fmax, 0.45 * sr), np.abs(spec) ** 2 * hp, 0.0), axis=1) * f0 ** 2
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
        higher_poles = np.prod(
            (1.0 + ta1 + ta2)[:, None] / (1.0 + ta1[:, None] * z1 + ta2[:, None] * z1 * z1), axis=0)
        taper = np.ones(nfft)
        fade_in, fade_out = nfft // 16, nfft // 8
        taper[:fade_in] = _rc(np.arange(fade_in) / fade_in)
        taper[-fade_out:] = _rc(np.arange(fade_out, 0, -1) / fade_out)
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
        return np.concatenate([_source_energy(fg[i:i + 4 * _CHUNK], fa[i:i + 4 * _CHUNK], sr, points)
                               for i in range(0, len(fg), 4 * _CHUNK)])
    z = np.exp(-1j * np.linspace(0.0, np.pi, points))
    ga1, ga2 = resonator_coeffs(fg, 1.2 * fg, sr)
    pole = np.exp(-2.0 * np.pi * fa / sr)[:, None]
    spec = (1.0 - z) * ((1.0 + ga1 + ga2)[:, None] / (1.0 + ga1[:, None] * z + ga2[:, None] * z * z))
    spec *= (1.0 - pole) / (1.0 - pole * z)
    return np.mean(np.abs(spec) ** 2, axis=1)


def _glottal_cycles(f0: np.ndarray, env: np.ndarray, level_db: np.ndarray,
                    tracks: tuple[np.ndarray, np.ndarray, np.ndarray], timbre: VoiceTimbre, sr: int,
                    len_samples: int, frames: _Frames, rng: np.random.Generator) -> _Cycles | None:
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
    grid = np.arange(pos[0], pos[-1] + 1.0, sr / _CTL_RATE)
    slow = np.interp(pos, grid, gaussian_filter1d(np.interp(grid, pos, raw_db), 0.05 * _CTL_RATE))
    fast = raw_db - slow
    smooth_db = slow + fast - 2.0 * np.tanh(fast / 2.0)
    target_db = 10.0 * np.log10(f0k / 220.0) + 3.0 * np.clip(np.log2(formants[:, 0] / 450.0), -1.0, 1.0)
    amp = env_k * 10 ** ((target_db - smooth_db - 20.0) / 20)  # raw output near -20 dBFS (cosmetic)
    amp *= np.exp(rng.standard_normal(len(pos)) * timbre.shimmer_db / 8.686)  # shimmer
    noise_energy = amp ** 2 * _source_energy(fg, fa, sr) * 10 ** (-hnr_db / 10)
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
            poly[:, 1:order + 1] += a1[:, j:j + 1] * prev
            poly[:, 2:order + 2] += a2[:, j:j + 1] * prev
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
            block[:, lo_col + k:lo_col + k + span] += glottal[:, k:k + 1] * noise

        spec = sfft.rfft(block, axis=1)
        spec += frames.shift[q] * (cyc.amp[sl] * (1.0 + ga1 + ga2) * (1.0 - pole))[:, None]
        spec *= frames.higher_poles
        spec /= denominator
        block = sfft.irfft(spec * tract_gain[:, None], n=nfft, axis=1)
        block *= frames.taper

        # Overlap-add at each cycle's position (bincount is a fast scatter-add).
        lo = int(base.min())
        acc = np.bincount(((base - lo)[:, None] + np.arange(nfft)).ravel(), weights=block.ravel())
        buf[lo:lo + len(acc)] += acc
    return buf[pre:pre + n]


# ---------------------------------------------------------------------------------- consonants, breaths
def _noise_events(sylls: list[_Syllable], n: int, sr: int, timbre: VoiceTimbre, ref_rms: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Frication, stop bursts and aspiration at syllable onsets, and inhalations before phrases."""
    out = np.zeros(n)
    scale = timbre.formant_scale
    nyq = 0.5 * sr

    def add(t0: float, dur: float, sos: np.ndarray, level_db: float, attack: float) -> None:
        # Filtered noise, normalised to unit RMS, under an attack/decay envelope peaking at `attack`.
        a, b, t = _span(t0, t0 + dur, n, sr)
        if b - a < 4:
            return
        x = signal.sosfilt(sos, rng.standard_normal(b - a + 256))[256:]  # skip the filter's start-up
        x /= np.sqrt(np.mean(x * x)) + 1e-20
        x = x[: b - a]
        rel = (t - t0) / dur
        envelope = np.where(rel < attack, _rc(rel / max(attack, 1e-6)), _rc((1.0 - rel) / (1.0 - attack)))
        out[a:b] += x * envelope * ref_rms * 10 ** (level_db / 20)

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
    breath_sos = np.vstack([signal.butter(1, min(7000.0, 0.45 * sr), fs=sr, output="sos"),
                            tract([600.0, 1300.0, 2400.0, 3400.0, 4400.0],
                                  [250.0, 300.0, 400.0, 500.0, 600.0])])
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
        add(onset - after - dur, dur, breath_sos, timbre.breath_level_db + rng.normal(0, 1.5),
            rng.uniform(0.55, 0.75))
    return out


# ------------------------------------------------------------------------------------------ listening aid
def write_example(path: str | os.PathLike[str] = "/tmp/voice_example.wav", seed: int = 0,
                  sample_rate: int = 44100, timbre: VoiceTimbre | None = None) -> np.ndarray:
    """Sing a built-in three-phrase melody (16.5 s, A minor) into a WAV file; returns the audio.

    For listening checks: legato runs, leaps, long notes with vibrato, staccato notes and breaths.
    """
    import soundfile  # only the listening aid writes files

    beat = 0.5  # 120 bpm
    phrases = [  # (MIDI pitch, start beat, length in beats)
        [(57, 1, 1), (60, 2, 1), (64, 3, 2), (62, 5, 1), (60, 6, 0.5), (59, 6.5, 0.5), (57, 7, 3)],
        [(64, 12, 0.5), (64, 12.5, 0.5), (65, 13, 1), (67, 14, 1.5), (69, 15.5, 0.5), (72, 16, 2),
         (71, 18, 1), (67, 19, 2)],
        [(69, 23, 1), (67, 24, 0.4), (65, 24.5, 0.4), (64, 25, 1), (62, 26, 0.5), (60, 26.5, 0.5),
         (59, 27, 1), (57, 28, 3.5)],
    ]
    notes = [VocalNote(pitch, start * beat, (start + length) * beat, 90 + 4 * (i % 3), phrase)
             for phrase, line in enumerate(phrases) for i, (pitch, start, length) in enumerate(line)]
    audio = render_vocal(notes, 33 * beat, sample_rate, seed, timbre)
    soundfile.write(os.fspath(path), audio, sample_rate)
    return audio
