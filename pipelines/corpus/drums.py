"""The drum part: the style's groove bar after bar, a fill closing every few bars, a crash opening sections.

Grooves keep the kick and snare (or side stick/clap) on the beat grid, which is what makes the declared
tempo trackable from the drum stem alone. Fills keep that property too: they replace the hats and snare of
the last beat or two of a phrase with a run down the toms (or a snare roll), but the kick still marks every
beat of the fill.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pipelines.corpus.styles import (
    CRASH,
    DRUM_LEVEL,
    KICK,
    OPEN_HAT,
    RIDE,
    SNARE,
    TOMS,
    DrumGroove,
    StylePreset,
    parse_grid,
)
from pipelines.corpus.theory import BeatNote

#: How a grid symbol scales the style's velocity.
_ACCENTS: dict[str, float] = {"X": 1.18, "x": 1.0, "o": 0.45}
#: How long (beats) a hit is held before its note-off: cymbals ring, skins are short. A hit is also released
#: before the next hit of the same key, so a renderer never sees a note-off cut a fresh strike.
_RING_BEATS: dict[int, float] = {CRASH: 2.0, RIDE: 1.0, OPEN_HAT: 0.5}
_DEFAULT_RING = 0.25
_RELEASE_GAP = 0.05


@dataclass(frozen=True)
class DrumSection:
    """The slice of the song the drummer plays one groove over (an intro bar, a verse, a chorus)."""

    start_bar: int
    bars: int
    groove: DrumGroove
    intensity: float  # velocity multiplier: verses a little softer than choruses


def _fill(rng: random.Random, beats: int, steps_per_beat: int, subdivision: int) -> list[tuple[int, int, float]]:
    """`(step, key, velocity factor)` of a fill over the last `beats` beats, as a crescendo."""
    stride = max(1, steps_per_beat // subdivision)
    steps = list(range(0, beats * steps_per_beat, stride))
    kind = rng.choice(("toms", "snare", "snare_then_toms"))
    hits = []
    for i, step in enumerate(steps):
        progress = i / len(steps)
        if i > 0 and rng.random() < 0.12:  # a gap or two keeps fills from sounding like a machine gun
            continue
        if kind == "snare" or (kind == "snare_then_toms" and progress < 0.5):
            key = SNARE
        else:
            key = TOMS[min(len(TOMS) - 1, int(progress * len(TOMS)))]
        hits.append((step, key, 0.7 + 0.45 * progress))
    return hits


def compose_drums(
    rng: random.Random, preset: StylePreset, sections: list[DrumSection], total_bars: int
) -> list[BeatNote]:
    """Drum hits (GM percussion keys) over `total_bars` bars."""
    beats_per_bar = preset.beats_per_bar
    notes: list[BeatNote] = []
    for section in sections:
        for offset in range(min(section.bars, total_bars - section.start_bar)):
            bar = section.start_bar + offset
            # A fill closes every `fill_every` bars of a section and a longer one the section itself; a
            # one-bar intro ends with a one-beat pickup fill into the first phrase. The song's last bar has
            # none: the excerpt simply stops.
            fill_beats = 0
            if offset == section.bars - 1 and bar < total_bars - 1:
                fill_beats = 2 if section.bars >= preset.fill_every else 1
            elif (offset + 1) % preset.fill_every == 0:
                fill_beats = 1
            fill_beats = min(fill_beats, beats_per_bar - 1)
            hits = _bar_hits(rng, preset, section, offset, fill_beats)
            notes.extend(_to_beat_notes(hits, bar * beats_per_bar, preset.velocity * section.intensity))
    notes.sort(key=lambda n: (n.start, n.pitch))
    return _release_before_next(notes)


def _release_before_next(notes: list[BeatNote]) -> list[BeatNote]:
    """Give each hit its ring length, cut short before the next hit of the same key."""
    next_start: dict[int, float] = {}
    result: list[BeatNote] = []
    for note in reversed(notes):
        ring = _RING_BEATS.get(note.pitch, _DEFAULT_RING)
        end = min(note.start + ring, next_start.get(note.pitch, float("inf")) - _RELEASE_GAP)
        result.append(BeatNote(note.start, max(end, note.start + 0.05), note.pitch, note.velocity))
        next_start[note.pitch] = note.start
    return result[::-1]


def _bar_hits(
    rng: random.Random, preset: StylePreset, section: DrumSection, offset: int, fill_beats: int
) -> dict[tuple[float, int], float]:
    """`{(beat in bar, key): velocity factor}` for one bar of a section."""
    groove = section.groove
    spb = groove.steps_per_beat
    steps_per_bar = spb * preset.beats_per_bar
    fill_from = preset.beats_per_bar - fill_beats  # in beats
    part = (offset % groove.bars) * steps_per_bar
    hits: dict[tuple[float, int], float] = {}
    for key, line in groove.lines:
        for step, _length, symbol in parse_grid(line[part : part + steps_per_bar]):
            beat = step / spb
            if beat >= fill_from and not (key == KICK and step % spb == 0):
                continue
            if offset == 0 and step == 0 and key != KICK:
                continue  # the crash takes the downbeat of a section
            hits[(beat, key)] = _ACCENTS[symbol]
    if fill_beats:
        # The kick keeps the pulse under the fill so that the beat stays obvious.
        for beat in range(fill_from, preset.beats_per_bar):
            hits.setdefault((float(beat), KICK), 0.9)
        for step, key, factor in _fill(rng, fill_beats, spb, preset.fill_subdivision):
            hits[(fill_from + step / spb, key)] = factor
    if offset == 0:
        hits[(0.0, CRASH)] = 1.1
        hits.setdefault((0.0, KICK), 1.0)  # a crash always lands with a kick
    return hits


def _to_beat_notes(hits: dict[tuple[float, int], float], bar_beat: float, velocity: float) -> list[BeatNote]:
    notes = []
    for (beat, key), factor in hits.items():
        value = round(velocity * factor * DRUM_LEVEL.get(key, 1.0))
        start = bar_beat + beat
        notes.append(BeatNote(start, start + _DEFAULT_RING, key, max(1, min(127, value))))
    return notes
