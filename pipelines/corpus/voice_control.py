"""The performance plan of the singing synthesiser: who sings (timbre) and how (syllables, contours).

`voice.py` renders audio; this module decides, from the score and an rng, everything that happens before the
first sample: the singer's timbre, each note's syllable (vowel, onset consonant, legato, level), and the
control curves (pitch with portamento, scoops and vibrato; amplitude envelope; formant tracks). See the
docstring of `pipelines.corpus.voice` for the design and references.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
from scipy.ndimage import gaussian_filter1d

from pipelines.corpus.formants import CONSONANTS, VOWEL_WEIGHTS, VOWELS
from pipelines.corpus.song import VocalNote

_LEGATO_GAP_S = 0.1  # notes of one phrase closer than this are joined without a break in voicing
CTL_RATE = 200.0  # Hz; formant tracks are built at this rate and interpolated per glottal cycle


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
            singer_formant=float(
                rng.uniform(0.4, 0.9) * (0.5 if female else 1.0) if trained else rng.uniform(0.0, 0.2)
            ),
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
class Syllable:
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


# --------------------------------------------------------------------------------------------- planning
def plan_syllables(
    notes: Sequence[VocalNote],
    vowels: Sequence[str] | None,
    duration: float,
    timbre: VoiceTimbre,
    rng: np.random.Generator,
) -> list[Syllable]:
    forced = list(vowels) if vowels is not None else [None] * len(notes)
    pairs = sorted(
        ((nt, v) for nt, v in zip(notes, forced, strict=True) if nt.end > nt.start and nt.start < duration),
        key=lambda p: p[0].start,
    )
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

    sylls: list[Syllable] = []
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
            lead = {
                "sonorant": (0.05, 0.09),
                "voiced_stop": (0.03, 0.05),
                "fricative": (0.07, 0.13),
                "stop": (0.05, 0.08),
            }[CONSONANTS[consonant].kind]
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
        sylls.append(
            Syllable(
                nt.start,
                min(nt.end, duration),
                pitch,
                level,
                vowel,
                consonant,
                lead,
                joined,
                nt.phrase,
                phrase_start=not same_phrase,
            )
        )
    for i, s in enumerate(sylls):
        s.phrase_end = i + 1 == len(sylls) or sylls[i + 1].phrase != s.phrase
        if s.kind in ("fricative", "stop"):
            # Voiceless consonants interrupt the voice: the previous note stops before the consonant.
            s.legato = False
            if i:
                sylls[i - 1].end = min(sylls[i - 1].end, s.start - s.lead - 0.01)
    return sylls


# -------------------------------------------------------------------------------------- control curves
def raised_cosine(x: np.ndarray) -> np.ndarray:
    """Raised-cosine ramp: 0 for x <= 0, 1 for x >= 1."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def sample_span(t0: float, t1: float, n: int, fs: float) -> tuple[int, int, np.ndarray]:
    """Index range [a, b) covering [t0, t1) of a signal of n points at rate fs, and its times in seconds."""
    a = min(max(math.floor(t0 * fs), 0), n)
    b = min(max(math.ceil(t1 * fs), a), n)
    return a, b, np.arange(a, b) / fs


def add_step(deriv: np.ndarray, t0: float, t1: float, delta: float, fs: float) -> None:
    """Make cumsum(deriv) rise by `delta` along a raised cosine from t0 to t1 (a glide, a level change)."""
    i0 = math.floor(t0 * fs)
    m = max(math.ceil((t1 - t0) * fs), 1)
    d = np.diff(raised_cosine(np.arange(1, m + 1) / m), prepend=0.0) * delta
    idx = np.arange(i0, i0 + m)
    before = idx < 0
    if before.any():  # the part before the signal still has to count towards the total step
        deriv[0] += d[before].sum()
    keep = (idx >= 0) & (idx < len(deriv))
    deriv[idx[keep]] += d[keep]


def smooth_noise(rng: np.random.Generator, n: int, fs: float, cutoff_hz: float) -> np.ndarray:
    """Unit-variance low-pass noise (white noise at a coarse rate, Gaussian-smoothed, interpolated)."""
    rate = 8.0 * cutoff_hz
    m = int(n / fs * rate) + 16
    x = gaussian_filter1d(rng.standard_normal(m), sigma=rate / (2.0 * np.pi * cutoff_hz))
    x = (x - x.mean()) / (x.std() + 1e-12)
    return np.interp(np.arange(n) * (rate / fs), np.arange(m), x)


def pitch_track(sylls: list[Syllable], n: int, fs: float, timbre: VoiceTimbre, rng: np.random.Generator) -> np.ndarray:
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
            add_step(deriv, c - 0.5 * w, c + 0.5 * w, delta, fs)
        # Where the next note's voicing may begin: anything this note adds must be over by then.
        limit = nxt.start - nxt.lead - 0.02 if nxt is not None else math.inf
        scoop_p = timbre.scoop_prob * (0.5 if s.legato else 1.0)
        if rng.random() < scoop_p:
            # Scoop: dip below the note by the onset (smoothly, if the voice is already sounding) and
            # approach the note exponentially (tau 30-60 ms).
            depth = rng.uniform(0.2, 0.5) if s.legato else rng.uniform(0.4, 1.2)
            tau = rng.uniform(0.03, 0.06)
            t_in = s.start - max(s.lead, 0.04)
            a, b, t = sample_span(t_in, s.start + 6 * tau, n, fs)
            local[a:b] -= depth * np.where(
                t < s.start, raised_cosine((t - t_in) / (s.start - t_in)), np.exp(-np.maximum(t - s.start, 0.0) / tau)
            )
        if s.phrase_end and rng.random() < 0.35 and limit > s.end + 0.15:
            # Fall-off: the pitch sags while the last note of a phrase dies away.
            fall = rng.uniform(0.3, 1.5)
            a, b, t = sample_span(s.end - 0.05, min(s.end + 0.4, limit), n, fs)
            local[a:b] -= fall * raised_cosine((t - (s.end - 0.05)) / 0.3)
        if dur > 0.25 and timbre.vibrato_depth_cents > 0:
            onset = s.start + min(timbre.vibrato_delay_s * rng.uniform(0.8, 1.25), 0.5 * dur)
            ramp = rng.uniform(0.2, 0.45)
            depth = timbre.vibrato_depth_cents * rng.uniform(0.75, 1.2) * min(1.0, (dur - 0.15) / 0.6)
            # Before a legato neighbour the vibrato fades out so the glide starts from the note itself.
            stop = s.end - 0.02 if nxt is not None and nxt.legato else min(s.end + 0.15, limit)
            a, b, t = sample_span(onset, stop, n, fs)
            curve = depth * raised_cosine((t - onset) / ramp) * raised_cosine((stop - t) / 0.06)
            np.maximum(vib_depth[a:b], curve, out=vib_depth[a:b])

    # Vibrato rate and depth wander slowly (+/-5 % and +/-12 %): a perfectly periodic LFO sounds synthetic.
    vib_rate = timbre.vibrato_rate_hz * (1.0 + 0.05 * smooth_noise(rng, n, fs, 0.4))
    phase = 2.0 * np.pi * np.cumsum(vib_rate) / fs + rng.uniform(0.0, 2.0 * np.pi)
    vibrato = vib_depth * (1.0 + 0.12 * smooth_noise(rng, n, fs, 0.7)) * np.sin(phase)
    cents = (
        vibrato + timbre.drift_cents * smooth_noise(rng, n, fs, 0.25) + 2.0 * smooth_noise(rng, n, fs, 6.0)
    )  # flutter: a couple of cents of fast wobble
    return sylls[0].pitch + np.cumsum(deriv) + local + cents / 100.0


def amplitude_envelope(
    sylls: list[Syllable], n: int, fs: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
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
        att = {
            None: rng.uniform(0.04, 0.1),
            "sonorant": 0.025,
            "voiced_stop": 0.015,
            "fricative": rng.uniform(0.02, 0.04),
            "stop": rng.uniform(0.01, 0.025),
        }[f.kind]
        rel = rng.uniform(0.12, 0.3) if lst.phrase_end else rng.uniform(0.06, 0.14)
        length = max(e0 - s0, 1e-3)
        att = min(att, 0.4 * length)
        rel = min(rel, 0.8 * length)
        # The release ends half a release after the note end, but never runs into the next consonant.
        r1 = e0 + 0.5 * rel
        if last + 1 < len(sylls):
            r1 = min(r1, sylls[last + 1].start - sylls[last + 1].lead)
        a, b, t = sample_span(s0, r1, n, fs)
        np.maximum(shape[a:b], raised_cosine((t - s0) / att) * raised_cosine((r1 - t) / rel), out=shape[a:b])
    for i, s in enumerate(sylls):
        if i:
            add_step(level_deriv, s.start - 0.03, s.start + 0.03, s.level_db - sylls[i - 1].level_db, fs)
        dur = s.end - s.start
        if dur > 0.6:  # messa di voce: a long note swells or fades by a dB or two
            a, b, t = sample_span(s.start, s.end, n, fs)
            swell[a:b] += rng.normal(0.0, 1.5) * np.sin(np.pi * (t - s.start) / dur)
        if s.kind in ("sonorant", "voiced_stop"):
            # Nasal/liquid murmur or stop closure: the level dips while the consonant is held.
            c0, c1 = s.start - s.lead, s.start
            a, b, t = sample_span(c0 - 0.015, c1 + 0.02, n, fs)
            bump = raised_cosine((t - (c0 - 0.015)) / 0.03) * raised_cosine((c1 + 0.02 - t) / 0.035)
            shape[a:b] *= 1.0 - (1.0 - 10 ** (CONSONANTS[s.consonant].dip_db / 20)) * bump
    level_db = sylls[0].level_db + np.cumsum(level_deriv) + swell
    return shape * 10 ** (level_db / 20), level_db


def formant_tracks(
    sylls: list[Syllable], duration: float, timbre: VoiceTimbre, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Control-rate formant tracks: times (s), log-frequencies [K, 5] and bandwidths [K, 5] (Hz)."""
    k_total = math.ceil(duration * CTL_RATE) + 2
    logf = np.zeros((k_total, 5))
    bw = np.zeros((k_total, 5))

    def k(t: float) -> int:
        return min(max(round(t * CTL_RATE), 0), k_total)

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
    sigma = 0.02 * CTL_RATE
    logf = gaussian_filter1d(logf, sigma, axis=0, mode="nearest")
    bw = gaussian_filter1d(bw, sigma, axis=0, mode="nearest")
    return np.arange(k_total) / CTL_RATE, logf, bw
