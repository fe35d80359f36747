"""The vocal melody: motifs, phrase form and harmony-aware pitch choice.

A melody is built from **motifs**: a rhythm (from the style's vocabulary of rhythm cells) and a contour (a
mostly stepwise walk in scale degrees, shaped as an arch or a descent, with the occasional leap that is then
recovered by a step the other way). Motifs are abstract - they say "up a step, up a step, leap down a third"
rather than naming pitches - so the same motif sung over different chords stays recognisable while fitting
each chord. Sections follow a phrase form such as A A' B A, where A' keeps the first half of A and answers it
with a new second half; a chorus gets its own motifs, sung a little higher than the verse.

Pitches are chosen when a motif is *realised* over the song's chords:

* notes on strong beats (1 and 3 in 4/4, 1 in 3/4), long notes and phrase endings are chord tones;
* other notes stay in the scale but avoid tones that clash with the chord, and a non-chord tone is only
  reached by step (a passing or neighbour tone), never by a leap;
* the last note of a phrase is a stable tone (tonic, third or fifth of the key) when the chord allows it,
  the tonic itself at the end of a section;
* everything stays in the song's vocal range (a low, middle or high voice).

Phrases are separated by a breath (the style's `breath_beats`, at least a beat).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from pipelines.corpus.styles import RhythmCell, StylePreset
from pipelines.corpus.theory import SCALES, BeatNote, Harmony, Mode, melody_pitch_classes

#: Phrase forms by the number of phrases in a section; a trailing `'` marks a varied repeat.
FORMS: dict[int, tuple[tuple[str, ...], ...]] = {
    1: (("A",),),
    2: (("A", "A'"),),  # two-phrase sections still state their idea twice
    3: (("A", "A'", "B"),),  # the blues' AAB
    4: (("A", "A'", "B", "A"), ("A", "B", "A", "B'"), ("A", "A'", "B", "B'")),
    6: (("A", "A'", "B", "A", "A'", "B'"), ("A", "B", "A", "B'", "C", "A'")),
}
#: Delayed entries of a phrase (beats after the phrase's first downbeat) and their weights.
_ENTRY_OFFSETS = ((0.0, 6), (0.5, 3), (1.0, 2))
#: Shortest sung note in seconds (after swing), with a margin over the 0.12 s the corpus requires.
MIN_SUNG_SECONDS = 0.14


@dataclass(frozen=True)
class Motif:
    """An abstract phrase: note onsets and lengths in beats from the phrase start, and scale-degree offsets
    from the phrase's anchor."""

    rhythm: tuple[tuple[float, float], ...]
    contour: tuple[int, ...]


@dataclass(frozen=True)
class PhraseSlot:
    """Where a phrase is sung: its first beat, its length in beats, form label and section."""

    start: float
    beats: float
    label: str
    section: int
    chorus: bool
    cadence: bool  # the section's last phrase closes on the tonic


def form_for(rng: random.Random, phrases: int) -> tuple[str, ...]:
    if phrases in FORMS:
        return rng.choice(FORMS[phrases])
    base = ("A", "A'", "B", "A")
    return tuple(base[i % len(base)] for i in range(phrases))


class MelodyWriter:
    """Writes the vocal line of one song."""

    def __init__(
        self,
        rng: random.Random,
        preset: StylePreset,
        tonic: int,
        mode: Mode,
        harmony: Harmony,
        seconds_per_beat: float,
        voice_range: tuple[int, int],
    ) -> None:
        self.rng = rng
        self.preset = preset
        self.tonic = tonic
        self.scale_steps = SCALES[mode]
        self.scale = tuple((tonic + s) % 12 for s in self.scale_steps)
        self.stable = frozenset(self.scale[i] for i in (0, 2, 4))
        self.harmony = harmony
        self.low, self.high = voice_range
        # Degree 0 is the highest tonic at or below the range's bottom, so every sung degree is >= 0.
        self.base = self.low - (self.low - tonic) % 12
        self.degree_low = next(d for d in range(14) if self.pitch(d) >= self.low)
        self.degree_high = max(d for d in range(40) if self.pitch(d) <= self.high)
        # Rhythm cells whose shortest note would be too short to sing at this tempo (and swing) are dropped.
        shortest = MIN_SUNG_SECONDS / (seconds_per_beat * (1 - preset.swing))
        self.cells = [c for c in preset.melody_cells if min(abs(d) for d in c.durations) >= shortest - 1e-9]
        if not self.cells:
            self.cells = [RhythmCell((1.0,), 1.0)]
        self.strong_beats = {0, 2} if preset.beats_per_bar == 4 else {0}

    # ----------------------------------------------------------------------------------- pitch helpers

    def pitch(self, degree: int) -> int:
        return self.base + self.scale_steps[degree % 7] + 12 * (degree // 7)

    def _nearest(self, degree: int, allowed: frozenset[int] | set[int], previous: int | None) -> int:
        """An in-range degree near `degree` whose pitch class is allowed.

        Among the candidates around the contour's target, the one closest to the target wins,
        and moving further from the previous note than the contour intended costs extra: snapping to a chord
        tone should not turn a step into a leap.
        """
        best, best_cost = None, float("inf")
        for candidate in range(degree - 7, degree + 8):  # an octave each way always holds a chord tone
            if not (self.degree_low <= candidate <= self.degree_high) or self.pitch(candidate) % 12 not in allowed:
                continue
            widening = 0 if previous is None else max(0, abs(candidate - previous) - abs(degree - previous))
            # Sitting on the previous note where the contour moves would flatten the line.
            stuck = previous is not None and candidate == previous != degree
            cost = abs(candidate - degree) + 0.6 * widening + (0.75 if stuck else 0.0)
            if cost < best_cost:
                best, best_cost = candidate, cost
        return best if best is not None else min(max(degree, self.degree_low), self.degree_high)

    # --------------------------------------------------------------------------------------- motifs

    def _rhythm(self, start: float, end: float) -> list[tuple[float, float]]:
        """Onsets/lengths filling [start, end) from the style's cells, ending on a long note."""
        if end - start <= 1.5:
            return [(start, end - start)]
        final = self.rng.choice([length for length in (2.0, 1.5, 1.0) if end - length >= start + 1] or [1.0])
        final_start = end - final
        notes: list[tuple[float, float]] = []
        position = start
        while position < final_start - 1e-9:
            room = final_start - position
            fitting = [c for c in self.cells if c.length <= room + 1e-9]
            # Two-beat cells start on a beat, so their syncopation stays anchored to the pulse.
            fitting = [c for c in fitting if c.length < 2 or abs(position % 1) < 1e-9] or fitting
            if not fitting:
                notes.append((position, room))
                break
            cell = self.rng.choices(fitting, weights=[c.weight for c in fitting])[0]
            for duration in cell.durations:
                if duration > 0:
                    notes.append((position, duration))
                position += abs(duration)
        notes.append((final_start, final))
        return notes

    def _contour(self, count: int, start_height: int = 0) -> list[int]:
        """A scale-degree walk over `count` notes that follows a target shape (arch, descent or wave).

        The walk steps towards the target; where it already sits on the target it ornaments (neighbour
        notes, repeats) rather than stalling. Now and then it leaps a third or a fourth, and the next note
        steps back the other way (gap fill), as singers do. `start_height` starts the walk elsewhere (the
        answer of an A' phrase continues from where A's first half stopped) and drifts home to 0.
        """
        shape = self.rng.choice(("arch", "arch", "descent", "wave"))
        # Longer phrases travel further: a long line that stays within a third sounds like recitation.
        height = self.rng.choice((2, 3, 4)) + (1 if count > 8 else 0) + (1 if count > 14 else 0)
        peak = max(1, round((count - 1) * self.rng.uniform(0.35, 0.65)))

        def target(i: int) -> float:
            x = i / max(1, count - 1)
            if shape == "descent":
                curve = height * (1 - x)
            elif shape == "wave":
                curve = 0.7 * height * math.sin(2 * math.pi * x)
            else:
                curve = height * (i / peak if i <= peak else (count - 1 - i) / max(1, count - 1 - peak))
            return curve + start_height * (1 - x)

        contour = [round(target(0))]
        recover = 0
        for i in range(1, count):
            current = contour[-1]
            gap = target(i) - current
            toward = 1 if gap > 0 else -1 if gap < 0 else self.rng.choice((-1, 1))
            r = self.rng.random()
            if recover:
                move, recover = recover, 0  # step back after a leap
            elif r < 0.08 + (0.08 if abs(gap) >= 2 else 0):
                move = toward * self.rng.choice((2, 2, 3))
                recover = -toward
            elif abs(gap) >= 0.75:
                move = toward if r < 0.88 else 0
            else:
                move = self.rng.choice((0, 0, 1, -1, toward))
            contour.append(current + move)
        return contour

    def new_motif(self, beats: float, entry: float | None = None, breath: float | None = None) -> Motif:
        breath = breath if breath is not None else self.rng.choice(self.preset.breath_beats)
        if entry is None:
            offsets, weights = zip(*_ENTRY_OFFSETS, strict=True)
            entry = self.rng.choices(offsets, weights=weights)[0]
        end = beats - breath
        entry = min(entry, max(0.0, end - 2))
        rhythm = self._rhythm(entry, end)
        return Motif(tuple(rhythm), tuple(self._contour(len(rhythm))))

    def vary(self, motif: Motif) -> Motif:
        """Keep the motif's first half and answer it with a new second half (A -> A')."""
        count = len(motif.rhythm)
        if count < 3:
            return motif
        # Keep the notes of the first half of the sung span, but always at least one and never the last two.
        first, (last_onset, last_length) = motif.rhythm[0][0], motif.rhythm[-1]
        middle = (first + last_onset + last_length) / 2
        keep = min(max(1, sum(onset < middle - 1e-9 for onset, _ in motif.rhythm)), count - 2)
        resume = motif.rhythm[keep - 1][0] + motif.rhythm[keep - 1][1]
        tail = self._rhythm(resume, last_onset + last_length)
        tail_contour = self._contour(len(tail) + 1, start_height=motif.contour[keep - 1])[1:]
        return Motif(motif.rhythm[:keep] + tuple(tail), motif.contour[:keep] + tuple(tail_contour))

    # ------------------------------------------------------------------------------------ realising

    def _is_strong(self, beat: float) -> bool:
        position = beat % self.preset.beats_per_bar
        return abs(position - round(position)) < 1e-9 and round(position) in self.strong_beats

    def realise(self, motif: Motif, slot: PhraseSlot, anchor: int) -> list[BeatNote]:
        notes: list[BeatNote] = []
        previous: int | None = None
        count = len(motif.rhythm)
        # Transpose the whole phrase (diatonically) into the range rather than folding single notes by an
        # octave, which would turn steps into sevenths.
        shift = max(0, self.degree_low - (anchor + min(motif.contour)))
        shift -= max(0, anchor + shift + max(motif.contour) - self.degree_high)
        for i, ((onset, length), offset) in enumerate(zip(motif.rhythm, motif.contour, strict=True)):
            beat = slot.start + onset
            span = self.harmony.at(beat)
            chord = set(span.pitch_classes)
            chord_tones = chord & set(self.scale) or chord
            # Follow the motif's *intervals* from the note actually sung (an earlier note may have been moved
            # onto a chord tone), unless that drifts more than a third from the motif's own line.
            home = anchor + shift + offset
            degree = home if previous is None else previous + offset - motif.contour[i - 1]
            if abs(degree - home) > 2:
                degree = home
            degree = min(max(degree, self.degree_low), self.degree_high)
            last = i == count - 1
            if last:
                goal = {self.tonic} & chord_tones if slot.cadence else set()
                goal = goal or (self.stable & chord_tones) or chord_tones
                degree = self._nearest(degree, goal, previous)
            elif self._is_strong(beat) or length >= 1.5:
                degree = self._nearest(degree, chord_tones, previous)
            else:
                allowed = melody_pitch_classes(self.scale, span.pitch_classes)
                if self.pitch(degree) % 12 not in allowed:
                    degree = self._nearest(degree, allowed, previous)
                # A non-chord tone must be reached by step (passing or neighbour tone), never by a leap.
                stepwise = previous is not None and abs(degree - previous) <= 1
                if not stepwise and self.pitch(degree) % 12 not in chord_tones:
                    degree = self._nearest(degree, chord_tones, previous)
            # Phrase-shaped dynamics: a swell towards the middle of the phrase, strong beats leaning in.
            swell = 1 - abs(2 * i / max(1, count - 1) - 1)
            velocity = 78 + round(12 * swell) + (6 if self._is_strong(beat) else 0) + self.rng.randint(-4, 4)
            notes.append(BeatNote(beat, beat + length, self.pitch(degree), max(1, min(127, velocity))))
            previous = degree
        return notes

    def write(self, slots: Sequence[PhraseSlot]) -> list[tuple[int, BeatNote]]:
        """`(phrase index, note)` for every phrase slot."""
        motifs: dict[tuple[bool, str], Motif] = {}
        verse_anchor = self.degree_low + self.rng.choice((2, 3))
        chorus_anchor = verse_anchor + self.rng.choice((2, 3))
        # One breath length per song keeps the phrasing regular; the entry differs per motif.
        breath = self.rng.choice(self.preset.breath_beats)
        result: list[tuple[int, BeatNote]] = []
        for index, slot in enumerate(slots):
            key = (slot.chorus, slot.label)
            if key not in motifs:
                base_key = (slot.chorus, slot.label.rstrip("'"))
                if slot.label.endswith("'") and base_key in motifs:
                    motifs[key] = self.vary(motifs[base_key])
                else:
                    motifs[key] = self.new_motif(slot.beats, breath=breath)
                    if slot.label.endswith("'"):
                        motifs[base_key] = motifs[key]
            anchor = chorus_anchor if slot.chorus else verse_anchor
            if slot.label.startswith("B"):
                anchor += 1  # the contrasting phrase sits a little higher
            result.extend((index, note) for note in self.realise(motifs[key], slot, anchor))
        return result
