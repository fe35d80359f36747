"""Music theory for the procedural composer: keys, chords, Roman-numeral progressions, voicing and swing.

Everything here is pure and independent of `Song`, so it can be tested exactly:

* **Keys.** A key is a tonic pitch class and a mode. Melodies stay inside the natural (Aeolian) or major scale,
  which is what `Song.scale_pitch_classes` declares.
* **Roman numerals.** Progressions are written the way musicians write them (`"I V vi IV"`,
  `"i VI III VII"`, `"ii7 V7 Imaj7"`, `"I bVII IV I"`). The numeral picks the root *relative to the mode's own
  scale*, the letter case picks the triad (upper = major, lower = minor), and a suffix extends it. So `V` in a
  minor key is the major dominant of harmonic minor (E-G#-B in A minor) and `bVII` in a major key is the
  Mixolydian flat-seven chord (Bb in C), both spelt explicitly instead of being inferred from the scale.
* **Voice leading.** `voice_chord` picks, among every voicing of a chord in a register, the one that moves
  least from the previous voicing - the way a pianist plays I-vi-IV-V without jumping around the keyboard.
* **Time.** The composer thinks in beats; `Timeline` maps beats to seconds, applying swing (off-beat eighths
  delayed towards the triplet position) so every part swings identically.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

Mode = Literal["major", "minor"]

#: Semitone steps of the two modes the composer writes in. Minor is natural minor: the raised leading tone
#: only appears where a progression asks for it explicitly (`V`, `V7` in a minor key).
SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
}

#: Chord qualities as intervals above the root; the names are those `Chord.quality` documents.
CHORD_INTERVALS: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "sus2": (0, 2, 7),
    "sus4": (0, 5, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "m7b5": (0, 3, 6, 10),
    "dim7": (0, 3, 6, 9),
}

#: Which seventh turns a triad into which four-note chord. Pairs missing here (a minor triad with a major
#: seventh, an augmented triad) are too colourful for the styles we write, so the triad is kept.
_SEVENTH_QUALITY: dict[tuple[str, int], str] = {
    ("maj", 11): "maj7",
    ("maj", 10): "7",
    ("min", 10): "min7",
    ("dim", 10): "m7b5",
    ("dim", 9): "dim7",
}

#: Suffix of a numeral -> chord quality, separately for upper-case (major-family) and lower-case numerals.
_SUFFIX_QUALITY: dict[tuple[str, bool], str] = {
    ("", True): "maj",
    ("", False): "min",
    ("7", True): "7",
    ("7", False): "min7",
    ("maj7", True): "maj7",
    ("+", True): "aug",
    ("sus2", True): "sus2",
    ("sus4", True): "sus4",
    ("o", False): "dim",
    ("o7", False): "dim7",
    ("m7b5", False): "m7b5",
}

_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7}
_NUMERAL_RE = re.compile(r"^(?P<accidental>[b#]?)(?P<roman>[ivIV]+)(?P<suffix>[^:]*)(?::(?P<units>\d+))?$")


def scale_pitch_classes(tonic: int, mode: Mode) -> tuple[int, ...]:
    """The seven pitch classes of the key, tonic first."""
    return tuple((tonic + step) % 12 for step in SCALES[mode])


def chord_pitch_classes(root: int, quality: str) -> tuple[int, ...]:
    """Pitch classes of a chord, root first (the order `Chord.pitch_classes` uses)."""
    return tuple((root + interval) % 12 for interval in CHORD_INTERVALS[quality])


@dataclass(frozen=True)
class Numeral:
    """One chord of a progression relative to the key: `offset` semitones above the tonic, a quality, and how
    many harmonic-rhythm units (a bar, or half a bar) it lasts."""

    offset: int
    quality: str
    units: int = 1

    def pitch_classes(self, tonic: int) -> tuple[int, ...]:
        return chord_pitch_classes((tonic + self.offset) % 12, self.quality)


def parse_numeral(token: str, mode: Mode) -> Numeral:
    """Parse `"vi"`, `"V7"`, `"bVII"`, `"iim7b5"`, `"viio"`, `"Imaj7:2"` (the `:n` lasts n units)."""
    match = _NUMERAL_RE.match(token)
    if match is None or match["roman"].lower() not in _ROMAN:
        raise ValueError(f"not a Roman numeral: {token!r}")
    roman = match["roman"]
    if roman not in (roman.upper(), roman.lower()):
        raise ValueError(f"mixed-case numeral: {token!r}")
    upper = roman.isupper()
    quality = _SUFFIX_QUALITY.get((match["suffix"], upper))
    if quality is None:
        raise ValueError(f"unknown chord suffix in {token!r}")
    degree = _ROMAN[roman.lower()] - 1
    shift = {"": 0, "b": -1, "#": 1}[match["accidental"]]
    return Numeral(offset=(SCALES[mode][degree] + shift) % 12, quality=quality, units=int(match["units"] or 1))


def parse_progression(text: str, mode: Mode) -> tuple[Numeral, ...]:
    """A whitespace-separated progression, e.g. `"I V vi IV"`."""
    numerals = tuple(parse_numeral(token, mode) for token in text.split())
    if not numerals:
        raise ValueError("empty progression")
    return numerals


def with_seventh(numeral: Numeral, mode: Mode) -> Numeral:
    """Extend a triad with the seventh the key provides (Imaj7, ii7, V7, viim7b5, ...).

    A chord whose root lies outside the scale (bVII in major, V in minor) takes whichever seventh the scale
    contains, so `V` in minor becomes the dominant seventh. Chords that already have four notes, suspended
    chords, and combinations without a conventional name are returned unchanged.
    """
    if numeral.quality not in ("maj", "min", "dim"):
        return numeral
    scale = set(SCALES[mode])
    for interval in (10, 11, 9):
        if (numeral.offset + interval) % 12 in scale:
            quality = _SEVENTH_QUALITY.get((numeral.quality, interval))
            if quality is not None:
                return Numeral(numeral.offset, quality, numeral.units)
    return numeral


def melody_pitch_classes(scale: Iterable[int], chord: Sequence[int]) -> frozenset[int]:
    """Scale tones a melody may use over `chord` (pitch classes, root first) without clashing.

    The melody never leaves the key, but when the chord borrows a tone from outside it, scale tones next to
    that tone would rub against it. The tone a semitone above always clashes (a minor ninth: A against the
    G# of E major in A minor, B against the Bb of C7 in C major). The tone a semitone below clashes when the
    borrowed tone is a raised root, third or fifth (G against G#: the same degree heard both ways); below a
    flattened seventh it is just the chord's thirteenth (A over C7), which is fine.
    """
    scale_set = set(scale)
    root = chord[0]
    avoid: set[int] = set()
    for pc in chord:
        if pc in scale_set:
            continue
        avoid.add((pc + 1) % 12)
        if (pc - root) % 12 not in (9, 10, 11):  # not a seventh
            avoid.add((pc - 1) % 12)
    return frozenset(scale_set - avoid)


# --------------------------------------------------------------------------------------------- voicing


def _movement(a: Sequence[int], b: Sequence[int]) -> float:
    """Semitones the voices travel from voicing `a` to `b` (both sorted).

    With equal voice counts the i-th lowest voice goes to the i-th lowest note, which is optimal for sorted
    sequences; otherwise each note is matched with its nearest counterpart in both directions.
    """
    if len(a) == len(b):
        return float(sum(abs(x - y) for x, y in zip(a, b, strict=True)))
    forward = sum(min(abs(x - y) for y in b) for x in a)
    backward = sum(min(abs(x - y) for x in a) for y in b)
    return (forward + backward) / 2


def _doubling_cost(combo: Sequence[int], root: int) -> float:
    """Penalty for doubled chord tones: doubling the root is idiomatic, the fifth acceptable, while a doubled
    third or seventh (worse: a doubled leading tone) sounds heavy and pulls the ear."""
    cost = 0.0
    seen: set[int] = set()
    for pitch in combo:
        pc = pitch % 12
        if pc in seen:
            interval = (pc - root) % 12
            cost += 0.0 if interval == 0 else 2.5 if interval in (6, 7, 8) else 4.0
        seen.add(pc)
    return cost


@lru_cache(maxsize=4096)
def _voice_chord_cached(
    pitch_classes: tuple[int, ...],
    low: int,
    high: int,
    voices: int,
    previous: tuple[int, ...] | None,
    centre: float | None,
    max_span: int,
    root_position: bool,
) -> tuple[int, ...]:
    root = pitch_classes[0]
    # With fewer voices than chord tones the fifth goes first: it adds the least to the chord's identity.
    if voices >= len(pitch_classes):
        required = set(pitch_classes)
    else:
        fifth_first = sorted(pitch_classes, key=lambda pc: (pc - root) % 12 in (6, 7, 8))
        required = set(fifth_first[:voices])
    candidates = [p for p in range(low, high + 1) if p % 12 in pitch_classes]
    best: tuple[int, ...] | None = None
    best_cost = math.inf
    for span_limit in (max_span, high - low):  # relax the span only if the register is too narrow
        for combo in itertools.combinations(candidates, voices):
            if combo[-1] - combo[0] > span_limit or not required.issubset(p % 12 for p in combo):
                continue
            if root_position and combo[0] % 12 != root:
                continue
            cost = _doubling_cost(combo, root)
            if previous:
                cost += _movement(previous, combo)
            else:
                cost += 0.05 * (combo[-1] - combo[0])
            if centre is not None:
                cost += 0.2 * (sum(combo) / voices - centre) ** 2
            if cost < best_cost - 1e-9:
                best, best_cost = combo, cost
        if best is not None:
            return best
    raise ValueError(f"cannot voice {pitch_classes} with {voices} voices in [{low}, {high}]")


def voice_chord(
    pitch_classes: Sequence[int],
    low: int,
    high: int,
    voices: int | None = None,
    previous: Sequence[int] | None = None,
    centre: float | None = None,
    max_span: int | None = None,
    root_position: bool = False,
) -> tuple[int, ...]:
    """The voicing (sorted MIDI pitches in [low, high]) of a chord that moves least from `previous`.

    Every chord tone is present when `voices >= len(pitch_classes)` (extra voices double a tone, preferably
    the root). `centre`, when given, gently pulls the voicing's mean pitch towards it so that a cycling
    progression does not drift up or down the keyboard; leave it `None` for pure minimal movement. Voicings
    span at most `max_span` semitones (an octave plus a fifth for four voices): close enough to sound like one
    hand or one guitar chord. `root_position` puts the root at the bottom (for patterns whose lowest voice
    is a bass note: a guitarist's thumb, a pianist's left hand).
    """
    pcs = tuple(dict.fromkeys(pc % 12 for pc in pitch_classes))
    n = voices if voices is not None else len(pcs)
    span = max_span if max_span is not None else (19 if n >= 4 else 16)
    prev = tuple(sorted(previous)) if previous else None
    return _voice_chord_cached(pcs, low, high, n, prev, centre, span, root_position)


# ---------------------------------------------------------------------------------------------- time


def swing_position(beat: float, swing: float) -> float:
    """Where a straight position (in beats) falls once eighths are swung.

    Each beat is warped piecewise-linearly so that its off-beat eighth moves from 0.5 to `0.5 + swing / 2`
    (swing 1/3 puts it on the last triplet). Downbeats never move; sixteenths move proportionally, which keeps
    every part - drums, bass, comping, vocal - on the same swung grid.
    """
    if swing == 0.0:
        return beat
    whole = math.floor(beat)
    frac = beat - whole
    split = 0.5 + swing / 2
    if frac < 0.5:
        return whole + frac * 2 * split
    return whole + split + (frac - 0.5) * 2 * (1 - split)


@dataclass(frozen=True)
class Timeline:
    """Beats -> seconds at a constant tempo, with swing."""

    tempo: float
    beats_per_bar: int
    swing: float = 0.0

    @property
    def seconds_per_beat(self) -> float:
        return 60.0 / self.tempo

    @property
    def seconds_per_bar(self) -> float:
        return self.beats_per_bar * self.seconds_per_beat

    def time(self, beat: float) -> float:
        return swing_position(beat, self.swing) * self.seconds_per_beat


@dataclass(frozen=True)
class BeatNote:
    """A note while composing: times in (straight) beats; `delay` in seconds is added after swing (strums)."""

    start: float
    end: float
    pitch: int
    velocity: int
    delay: float = 0.0


@dataclass(frozen=True)
class ChordSpan:
    """A chord sounding from beat `start` to beat `end`."""

    start: float
    end: float
    root: int
    quality: str

    @property
    def pitch_classes(self) -> tuple[int, ...]:
        return chord_pitch_classes(self.root, self.quality)


class Harmony:
    """The song's chords in beat time, with lookup by position."""

    def __init__(self, spans: Sequence[ChordSpan]) -> None:
        if not spans:
            raise ValueError("a song needs at least one chord")
        self.spans = list(spans)
        self._starts = [span.start for span in self.spans]

    def index_at(self, beat: float) -> int:
        return max(0, bisect.bisect_right(self._starts, beat + 1e-9) - 1)

    def at(self, beat: float) -> ChordSpan:
        """The chord sounding at `beat` (a chord starting exactly there counts)."""
        return self.spans[self.index_at(beat)]

    def following(self, index: int) -> ChordSpan | None:
        return self.spans[index + 1] if index + 1 < len(self.spans) else None
