"""The procedural composer: valid, deterministic, musically coherent songs in every style."""

from __future__ import annotations

import itertools
import json
import time
from functools import cache

import pytest

from pipelines.corpus.composer import compose
from pipelines.corpus.song import Chord, Song
from pipelines.corpus.styles import BASS_PATTERNS, COMP_PATTERNS, STYLES, parse_grid
from pipelines.corpus.theory import parse_progression, swing_position

SEEDS = (0, 1, 2, 3)
SECONDS = 24.0
TOLERANCE = 0.02  # seconds: humanisation moves onsets by a few milliseconds at most


@cache
def song(seed: int, style: str | None, seconds: float = SECONDS) -> Song:
    return compose(seed, seconds, style)


def all_songs():
    return [song(seed, style) for style in STYLES for seed in SEEDS]


def chord_at(s: Song, t: float) -> Chord:
    return next(c for c in s.chords if c.start <= t < c.end)


def on_beat(s: Song, t: float, beats: set[int]) -> bool:
    beat = t * s.tempo / 60
    position = beat % s.beats_per_bar
    return abs(position - round(position)) * 60 / s.tempo < TOLERANCE and round(position) in beats


# ------------------------------------------------------------------------------------------- presets


def test_enough_distinct_styles():
    assert len(STYLES) >= 6
    tempo_ranges = {p.tempo_range for p in STYLES.values()}
    grooves = {p.drum_grooves[0].lines for p in STYLES.values()}
    programs = {(p.bass_programs, p.comping_primary[0].programs) for p in STYLES.values()}
    assert min(len(tempo_ranges), len(grooves), len(programs)) >= 5
    assert STYLES["ballad"].tempo_range[1] <= 80 and STYLES["dance"].tempo_range[0] >= 118
    assert any(p.beats_per_bar == 3 for p in STYLES.values())  # a waltz


@pytest.mark.parametrize("name", sorted(STYLES))
def test_presets_are_consistent(name):
    preset = STYLES[name]
    low, high = preset.tempo_range
    assert 40 <= low < high <= 200
    assert all(32 <= p <= 39 for p in preset.bass_programs)
    for spec in preset.comping_primary + preset.comping_secondary:
        assert all(0 <= p <= 127 for p in spec.programs)
        assert 48 <= spec.register[0] < spec.register[1] <= 84  # within C3-C6
        grids = COMP_PATTERNS[spec.pattern]
        assert all(len(g) % preset.beats_per_bar == 0 for g in grids)
        assert all(len(g) // preset.beats_per_bar == 4 for g in grids), "comping grids are in sixteenths"
    assert all(len(g) == 4 * preset.beats_per_bar for g in BASS_PATTERNS[preset.bass_pattern])
    assert all(parse_grid(g)[0][:1] == (0,) and g[0] == "R" for g in BASS_PATTERNS[preset.bass_pattern])
    for groove in preset.drum_grooves:
        steps = groove.steps_per_beat * preset.beats_per_bar * groove.bars
        assert all(len(line) == steps for _, line in groove.lines), groove.name
        # Beats are marked: the backbone (kick, snare, side stick, clap) plays on at least two beats of every
        # bar, and together with accented cymbals on most of them.
        bar_steps = groove.steps_per_beat * preset.beats_per_bar
        for bar in range(groove.bars):
            on_beats = range(bar * bar_steps, (bar + 1) * bar_steps, groove.steps_per_beat)
            backbone = {
                step
                for key, line in groove.lines
                for step in on_beats
                if key in (36, 37, 38, 39) and line[step] in "Xx"
            }
            accented = {step for _, line in groove.lines for step in on_beats if line[step] == "X"}
            assert len(backbone) >= 2 or len(backbone | accented) == preset.beats_per_bar, groove.name
            assert len(backbone | accented) >= preset.beats_per_bar / 2, groove.name
    for chords_per_bar in preset.chords_per_bar:
        for mode, pool in (("major", preset.progressions_major), ("minor", preset.progressions_minor)):
            for text in pool:
                bars = sum(n.units for n in parse_progression(text, mode)) / chords_per_bar
                assert bars in (1, 2, 4, 8, 12), f"{name}: {text!r} is {bars} bars long"


# ----------------------------------------------------------------------------------------------- API


def test_deterministic_and_seed_dependent():
    a, b = compose(7, 15.0, "pop"), compose(7, 15.0, "pop")
    assert a == b
    assert compose(8, 15.0, "pop") != a
    assert compose(7, 15.0) == compose(7, 15.0)  # also when the seed picks the style
    assert len({compose(seed, 15.0).style for seed in range(40)}) >= 5


def test_unknown_style_lists_the_available_ones():
    with pytest.raises(ValueError, match="bossa"):
        compose(0, 10.0, "polka-metal")
    with pytest.raises(ValueError):
        compose(0, 0.0, "pop")


def test_midi_and_metadata():
    s = song(3, "bossa")
    midi = s.to_midi()
    assert len(midi.instruments) == len(s.parts) + 1
    assert midi.get_end_time() <= s.duration + 1e-6
    meta = json.loads(json.dumps(s.metadata()))
    assert meta["style"] == "bossa" and meta["vocal_phrases"] >= 2
    assert {p["stem"] for p in meta["parts"]} == {"drums", "bass", "other"}


@pytest.mark.parametrize("seconds", [3.3, 20.0, 31.7])
def test_exact_duration(seconds):
    s = compose(5, seconds, "rock")
    assert s.duration == seconds
    assert s.chords[-1].end == seconds
    assert max(n.end for p in s.parts for n in p.notes) <= seconds


def test_composing_is_fast():
    start = time.perf_counter()
    for seed in range(10):
        compose(100 + seed, 20.0, "funk")
    assert (time.perf_counter() - start) / 10 < 0.25  # typically ~10 ms; generous for a loaded CI machine


# ------------------------------------------------------------------------------------------ validity


@pytest.mark.parametrize("name", sorted(STYLES))
def test_songs_are_valid(name):
    preset = STYLES[name]
    for seed in SEEDS:
        s = song(seed, name)
        assert s.style == name and s.beats_per_bar == preset.beats_per_bar
        assert preset.tempo_range[0] <= s.tempo <= preset.tempo_range[1]
        assert 0 <= s.tonic < 12 and s.mode in ("major", "minor")
        assert s.swing == preset.swing
        names = [p.name for p in s.parts]
        assert len(names) == len(set(names))
        assert [p.stem for p in s.parts][:2] == ["drums", "bass"] and 1 <= len(s.parts) - 2 <= 2
        for part in s.parts:
            assert part.notes, part.name
            assert part.is_drum == (part.stem == "drums")
            assert -1 <= part.pan <= 1
            for n in part.notes:
                assert 0 <= n.start < n.end <= s.duration
                assert 1 <= n.velocity <= 127 and 0 <= n.pitch <= 127
            assert [n.start for n in part.notes] == sorted(n.start for n in part.notes)
        bass = next(p for p in s.parts if p.stem == "bass")
        assert 32 <= bass.program <= 39


def test_chords_tile_the_song():
    for s in all_songs():
        chords = s.chords
        assert chords[0].start == 0 and chords[-1].end == s.duration
        for a, b in itertools.pairwise(chords):
            assert a.end == b.start and a.end > a.start
        bar_seconds = s.beats_per_bar * 60 / s.tempo
        for c in chords:
            assert c.pitch_classes[0] == c.root and len(set(c.pitch_classes)) == len(c.pitch_classes) >= 3
            assert c.start == pytest.approx((c.bar * s.beats_per_bar + c.beat) * 60 / s.tempo)
            assert c.end - c.start <= 2 * bar_seconds + 1e-9
            assert c.beat in (0, s.beats_per_bar / 2)


def test_harmonic_rhythm_and_sevenths_follow_the_style():
    for seed in SEEDS:
        assert all(c.quality in ("7", "maj7", "min7", "m7b5") for c in song(seed, "bossa").chords)
        assert all(c.quality in ("maj", "min", "dim") for c in song(seed, "folk").chords)
        assert all(c.beat == 0 for c in song(seed, "blues").chords)
    # Twelve-bar blues: I7 for four bars, then IV7.
    blues = song(0, "blues", 60.0)
    body = [c for c in blues.chords if c.bar >= blues.chords[1].bar][:12]
    roots = [(c.root - blues.tonic) % 12 for c in body]
    assert roots[4] == 5 and roots[8] == 7 and roots[6] == 0


# --------------------------------------------------------------------------------------------- vocal


def test_vocal_melody_is_singable():
    all_steps: list[int] = []
    for s in all_songs():
        vocal = s.vocal
        assert len(vocal) >= 8
        pitches = [n.pitch for n in vocal]
        # The whole line fits one of the style's voice types (low, middle, high).
        assert any(low <= min(pitches) and max(pitches) <= high for low, high in STYLES[s.style].vocal_ranges)
        for a, b in itertools.pairwise(vocal):
            assert a.end <= b.start + 1e-9  # one voice: no overlaps
            assert b.phrase in (a.phrase, a.phrase + 1)
        assert all(n.end - n.start >= 0.12 - 1e-9 for n in vocal)
        assert vocal[0].start <= (s.beats_per_bar + 1) * 60 / s.tempo + 1e-9  # at most a bar of intro
        steps = [abs(b.pitch - a.pitch) for a, b in itertools.pairwise(vocal) if a.phrase == b.phrase]
        # Seconds and repeats dominate, thirds are common, leaps of a fourth or more are occasional.
        assert sum(step <= 2 for step in steps) / len(steps) >= 0.4
        assert sum(step <= 4 for step in steps) / len(steps) >= 0.8
        assert sum(step >= 8 for step in steps) / len(steps) <= 0.05
        all_steps += steps
    assert sum(step <= 2 for step in all_steps) / len(all_steps) >= 0.65


def test_phrases_are_separated_by_breaths():
    for s in all_songs():
        beat = 60 / s.tempo
        phrases = sorted({n.phrase for n in s.vocal})
        assert phrases == list(range(len(phrases))) and len(phrases) >= 2
        for k in phrases[1:]:
            last = max(n.end for n in s.vocal if n.phrase == k - 1)
            first = min(n.start for n in s.vocal if n.phrase == k)
            assert first - last >= 0.5 * beat - 1e-9


def test_vocal_follows_key_and_harmony():
    for s in all_songs():
        scale = set(s.scale_pitch_classes)
        assert sum(n.pitch % 12 in scale for n in s.vocal) >= 0.9 * len(s.vocal)
        strong = [n for n in s.vocal if on_beat(s, n.start, {0, 2} if s.beats_per_bar == 4 else {0})]
        chord_tones = [n for n in strong if n.pitch % 12 in chord_at(s, n.start).pitch_classes]
        assert strong and len(chord_tones) > 0.5 * len(strong)
        # Phrases end on a tone of the chord below it (the last phrase may be cut by the end of the excerpt).
        for k in range(s.vocal[-1].phrase):
            last = max((n for n in s.vocal if n.phrase == k), key=lambda n: n.start)
            assert last.pitch % 12 in chord_at(s, last.start).pitch_classes


def test_phrases_repeat_motifs():
    """A song repeats melodic material: some phrase shares its opening rhythm and contour with an earlier one."""
    for s in all_songs():
        beat = 60 / s.tempo
        bar = s.beats_per_bar * beat

        def opening(k: int, s: Song = s, bar: float = bar, beat: float = beat) -> tuple:
            notes = [n for n in s.vocal if n.phrase == k][:4]
            first_bar = int(notes[0].start / bar + 1e-6)
            onsets = tuple(round((n.start - first_bar * bar) / beat * 12) for n in notes)
            intervals = tuple(b.pitch - a.pitch for a, b in itertools.pairwise(notes))
            return onsets, tuple(1 if i > 0 else -1 if i < 0 else 0 for i in intervals)

        phrases = sorted({n.phrase for n in s.vocal})
        complete = [k for k in phrases if sum(n.phrase == k for n in s.vocal) >= 4]
        openings = [opening(k) for k in complete]
        if len(openings) >= 2:
            rhythms = [o[0] for o in openings]
            assert len(set(rhythms)) < len(rhythms), f"{s.style} seed {s.seed}: no repeated motif"


# ------------------------------------------------------------------------------------ accompaniment


def test_bass_plays_each_chord_root_on_its_downbeat():
    for s in all_songs():
        bass = next(p for p in s.parts if p.stem == "bass")
        for c in s.chords:
            if c.end - c.start < 0.1:
                continue
            hits = [n for n in bass.notes if abs(n.start - c.start) < TOLERANCE]
            assert hits, f"{s.style} seed {s.seed}: no bass note at {c.start:.2f}"
            assert hits[0].pitch % 12 == c.root
            assert 24 <= hits[0].pitch <= 52


def test_comping_plays_chord_tones_in_a_mid_register():
    for s in all_songs():
        for part in (p for p in s.parts if p.stem == "other"):
            for n in part.notes:
                chord = chord_at(s, min(n.start + 0.03, s.duration - 1e-6))
                assert n.pitch % 12 in chord.pitch_classes, f"{s.style}/{part.name} {n}"
                assert 48 <= n.pitch <= 84


def test_comping_voices_complete_chords_with_smooth_voice_leading():
    for s in all_songs():
        part = next(p for p in s.parts if p.stem == "other")
        voicings = []
        for c in s.chords:
            sounding = {n.pitch for n in part.notes if c.start - 0.01 <= n.start < c.end - 0.01}
            if sounding:
                voicings.append(sorted(sounding))
                if c.end - c.start >= 60 / s.tempo * 2:  # a chord of two beats or more is heard whole
                    assert {p % 12 for p in sounding} == set(c.pitch_classes), f"{s.style} {part.name}"
        moves = [abs(sum(b) / len(b) - sum(a) / len(a)) for a, b in itertools.pairwise(voicings)]
        assert max(moves) <= 7  # the hand never jumps across the keyboard


def test_drums_keep_time_and_mark_sections():
    for s in all_songs():
        drums = next(p for p in s.parts if p.stem == "drums")
        beat = 60 / s.tempo
        keys = {n.pitch for n in drums.notes}
        assert 49 in keys  # crash on a section start
        assert keys & {38, 37, 39} and 36 in keys
        # Kick, snare, side stick and clap sit on the grid; every downbeat is played by something.
        backbone = [n for n in drums.notes if n.pitch in (36, 37, 38, 39)]
        grid = [swing_position(step / 4, s.swing) * beat for step in range(int(s.duration / beat * 4) + 2)]
        assert all(min(abs(n.start - t) for t in grid) < TOLERANCE for n in backbone)
        bars = int(s.duration / (beat * s.beats_per_bar))
        for bar in range(bars):
            t = bar * s.beats_per_bar * beat
            assert any(abs(n.start - t) < TOLERANCE for n in drums.notes)


def test_parts_never_restrike_a_sounding_pitch():
    """A note-off arriving after the next note-on of the same pitch would silence the new note."""
    for s in all_songs():
        for part in s.parts:
            last_end: dict[int, float] = {}
            for n in part.notes:
                assert n.start >= last_end.get(n.pitch, 0.0), f"{s.style}/{part.name} pitch {n.pitch}"
                last_end[n.pitch] = n.end


def test_open_and_closed_hat_never_sound_together():
    for name, preset in STYLES.items():
        for groove in preset.drum_grooves:
            lines = dict(groove.lines)
            if 42 in lines and 46 in lines:
                both = [i for i, (a, b) in enumerate(zip(lines[42], lines[46], strict=True)) if "." not in (a, b)]
                assert not both, f"{name}/{groove.name}: closed and open hat together at steps {both}"


def test_fills_close_sections():
    s = song(1, "rock", 40.0)
    drums = next(p for p in s.parts if p.stem == "drums")
    toms_or_rolls = [n for n in drums.notes if n.pitch in (41, 43, 45, 47, 48, 50)]
    snares = [n for n in drums.notes if n.pitch == 38]
    # Some fill (toms, or a snare run faster than the backbeat) happens in the last beat of a 4-bar group.
    bar = s.beats_per_bar * 60 / s.tempo
    in_last_beat = [n for n in toms_or_rolls + snares if (n.start / bar) % 4 > 4 - 1 / s.beats_per_bar - 1e-3]
    assert len(in_last_beat) >= 3


def test_swing_is_shared_by_all_parts():
    s = song(2, "blues")
    beat = 60 / s.tempo
    offbeats = set()
    for notes in [s.vocal, *(p.notes for p in s.parts)]:
        for n in notes:
            fraction = (n.start / beat) % 1
            if 0.2 < fraction < 0.8:
                offbeats.add(round(fraction, 1))
    assert offbeats == {0.7}  # every off-beat eighth on the last triplet (2/3 of the beat)
