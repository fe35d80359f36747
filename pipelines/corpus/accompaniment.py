"""Bass and comping: the style's grids (see `styles.py`) played over the song's chords.

Both parts are written chord by chord rather than bar by bar. For each chord the grid events whose onset
falls inside it are played against that chord and cut at its end, so a note never sounds over the next
chord; and if the grid has no onset exactly where the chord starts, one is added (bass: the root; comping:
the chord, unless the grid is silent there - an off-beat skank stays off the beat). That is the guarantee
the corpus labels rely on: the bass plays each chord's root on its downbeat, and every comping note is a
tone of the chord sounding when it starts.

A song does not pick a new grid every bar: it picks a short cycle of bars (mostly the style's first grid,
with a variation at the end of the cycle), the way a player settles into a part.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from pipelines.corpus.styles import COMP_PATTERNS, CompSpec, parse_grid
from pipelines.corpus.theory import BeatNote, ChordSpan, Harmony, voice_chord

_EPS = 1e-6
#: Bass roots sit between E1 and G2; fifths, octaves and approach notes go up from there.
_BASS_ROOT_LOW = 28
_BASS_ROOT_HIGH = 43
#: Seconds between the strings of a strum.
_STRUM_SPREAD = 0.012
#: Comping notes are released slightly before the next strike so that repeated notes re-articulate.
_RELEASE_BEATS = 0.04


def grid_cycle(rng: random.Random, grids: Sequence[str], first_bar: int = 0, length: int = 4) -> list[str]:
    """The grid for bar `b` is `cycle[b % length]`: the main groove, varied on the last bar of every group of
    `length` bars counted from `first_bar` (where the drummer plays its fills too)."""
    main = grids[0] if rng.random() < 0.7 else rng.choice(list(grids))
    cycle = [main] * length
    if len(grids) > 1 and rng.random() < 0.6:
        cycle[(first_bar - 1) % length] = rng.choice([g for g in grids if g != main])
    return cycle


def _events_in_span(
    span: ChordSpan, cycle: Sequence[str], beats_per_bar: int, restart: bool = False
) -> tuple[list[tuple[float, float, str]], str]:
    """Grid events `(start, end, symbol)` in beats that start within `span` (ends cut at the span's end),
    and the grid symbol found exactly at the span's start (`"."` when the grid is silent there).

    Grids are laid on the bar lines, so a syncopated figure keeps its place in the bar when the chord changes
    mid-bar; with `restart` the grid starts afresh on the chord instead (an arpeggio starts from its bottom
    note on every new chord).
    """
    events: list[tuple[float, float, str]] = []
    at_start = "."
    if restart:
        count = math.ceil((span.end - span.start) / beats_per_bar - _EPS)
        origins = [span.start + k * beats_per_bar for k in range(count)]
    else:
        first_bar = int((span.start + _EPS) // beats_per_bar)
        last_bar = int((span.end - _EPS) // beats_per_bar)
        origins = [bar * beats_per_bar for bar in range(first_bar, last_bar + 1)]
    for origin in origins:
        grid = cycle[int((origin + _EPS) // beats_per_bar) % len(cycle)]
        steps_per_beat = len(grid) // beats_per_bar
        step_at_start = round((span.start - origin) * steps_per_beat)
        if 0 <= step_at_start < len(grid):
            at_start = grid[step_at_start]
        for step, length, symbol in parse_grid(grid):
            start = origin + step / steps_per_beat
            if span.start - _EPS <= start < span.end - _EPS:
                events.append((start, min(start + length / steps_per_beat, span.end), symbol))
    return events, at_start


def _with_downbeat(
    events: list[tuple[float, float, str]], span: ChordSpan, symbol: str
) -> list[tuple[float, float, str]]:
    """Make sure an event starts on the chord's first beat (lasting until the next event)."""
    if events and abs(events[0][0] - span.start) < _EPS:
        return events
    until = events[0][0] if events else span.end
    return [(span.start, until, symbol), *events]


# ------------------------------------------------------------------------------------------------ bass


def _bass_root(pitch_class: int, previous: int | None = None) -> int:
    """The root's pitch in the bass register: the octave nearest the previous root, so the line moves by
    fourths and fifths instead of jumping a seventh to stay in a fixed octave."""
    low = _BASS_ROOT_LOW + (pitch_class - _BASS_ROOT_LOW) % 12
    if previous is None:
        return low
    candidates = [p for p in (low, low + 12) if p <= _BASS_ROOT_HIGH]
    return min(candidates, key=lambda p: (abs(p - previous), p))


def _chord_interval(span: ChordSpan, kinds: Sequence[int], default: int) -> int:
    """The first interval above the root (among `kinds`) that the chord contains, else `default`."""
    present = {(pc - span.root) % 12 for pc in span.pitch_classes}
    return next((i for i in kinds if i in present), default)


def _bass_pitch(symbol: str, root: int, span: ChordSpan, following: ChordSpan | None, scale: Sequence[int]) -> int:
    """The pitch a bass grid symbol stands for over `span`, whose root is played at MIDI pitch `root`."""
    upper = symbol.upper()
    if upper in ("R", "G"):
        return root
    if upper == "A":
        if following is None or following.root == span.root:
            return root + _chord_interval(span, (7, 6, 8), 7)
        target = _bass_root(following.root, root)
        # Approach chromatically from the side the line is coming from.
        return target - 1 if target > root else target + 1
    if upper == "P":
        step = next(
            (
                (pc - span.root) % 12
                for pc in sorted(scale, key=lambda p: (p - span.root) % 12)
                if (pc - span.root) % 12 in (1, 2)
            ),
            2,
        )
        return root + step
    interval = {
        "3": _chord_interval(span, (4, 3, 5, 2), 4),
        "5": _chord_interval(span, (7, 6, 8), 7),
        "6": 9,
        "7": _chord_interval(span, (10, 11, 9), 10),
        "8": 12,
    }[upper]
    return root + interval


def compose_bass(
    rng: random.Random,
    harmony: Harmony,
    grids: Sequence[str],
    scale: Sequence[int],
    beats_per_bar: int,
    velocity: int,
    first_bar: int = 0,
) -> list[BeatNote]:
    """The bass line: grid rhythm, chord-aware pitches, the root on every chord's downbeat."""
    cycle = grid_cycle(rng, grids, first_bar)
    notes: list[BeatNote] = []
    root: int | None = None
    for index, span in enumerate(harmony.spans):
        following = harmony.following(index)
        root = _bass_root(span.root, root)
        events, _ = _events_in_span(span, cycle, beats_per_bar)
        events = _with_downbeat(events, span, "R")
        for i, (start, end, symbol) in enumerate(events):
            if i == 0:
                symbol = "R"  # the chord's downbeat is always its root
            if symbol == "g":  # a dead-note ghost: short and soft
                notes.append(BeatNote(start, min(end, start + 0.25), root, round(velocity * 0.45)))
                continue
            accent = 1.08 if abs(start % 1) < _EPS else 0.95
            pitch = _bass_pitch(symbol, root, span, following, scale)
            notes.append(BeatNote(start, end - _RELEASE_BEATS, pitch, min(127, round(velocity * accent))))
    return notes


# --------------------------------------------------------------------------------------------- comping

_COMP_ACCENT: dict[str, float] = {"X": 1.15, "x": 1.0, "d": 1.0, "u": 0.82, "b": 1.0, "t": 0.9}


def _voices_for(symbol: str, voicing: Sequence[int]) -> list[int]:
    if symbol in ("x", "X", "d", "u"):
        return list(voicing)
    if symbol == "b":
        return [voicing[0]]
    if symbol == "t":
        return list(voicing[1:])
    if symbol.isdigit():
        # Arpeggio indices beyond the top voice turn back down (4 of a 4-note voicing is the third from the
        # bottom), so one grid fits triads and seventh chords alike.
        index, top = int(symbol), len(voicing) - 1
        while index > top:
            index = 2 * top - index if index <= 2 * top else index - 2 * top
        return [voicing[max(0, index)]]
    raise ValueError(f"unknown comping symbol {symbol!r}")


def compose_comping(
    rng: random.Random, harmony: Harmony, spec: CompSpec, beats_per_bar: int, velocity: int, first_bar: int = 0
) -> list[BeatNote]:
    """One comping part: each chord voiced close to the previous one and played in the part's rhythm."""
    cycle = grid_cycle(rng, COMP_PATTERNS[spec.pattern], first_bar)
    low, high = spec.register
    centre = (low + high) / 2
    base = velocity * spec.level
    notes: list[BeatNote] = []
    voicing: tuple[int, ...] | None = None
    # A pattern with a thumb/left-hand bass note (`b`) plays the root there, as guitarists and pianists do.
    root_position = any("b" in grid for grid in cycle)
    # Arpeggios start from the bottom on every chord and ring on (sustain pedal / let ring) until it ends.
    arpeggio = any(symbol.isdigit() for grid in cycle for symbol in grid)
    for span in harmony.spans:
        pcs = span.pitch_classes
        # Four-note chords get a fifth voice that doubles the root: without it a min7 voicing is mostly the
        # relative major triad (Am7 = A + C-E-G) and the chord's identity blurs.
        voices = max(spec.voices, len(pcs) + (1 if len(pcs) >= 4 else 0))
        voicing = voice_chord(pcs, low, high, voices, previous=voicing, centre=centre, root_position=root_position)
        events, at_start = _events_in_span(span, cycle, beats_per_bar, restart=arpeggio)
        if at_start != ".":
            # The grid is sounding (or holding) where the chord changes: strike the new chord there.
            events = _with_downbeat(events, span, "x" if at_start == "-" else at_start)
        for start, end, symbol in events:
            pitches = _voices_for(symbol, voicing)
            if symbol == "u":
                pitches = pitches[::-1]  # an up-strum hits the high strings first
            strum = _STRUM_SPREAD if symbol in ("d", "u") else 0.0
            release = max(start + 0.05, (span.end if symbol.isdigit() else end) - _RELEASE_BEATS)
            value = min(127, round(base * _COMP_ACCENT.get(symbol, 0.9)))
            for k, pitch in enumerate(pitches):
                notes.append(BeatNote(start, release, pitch, value, delay=k * strum))
    return notes
