"""Scales, chord spelling, Roman-numeral progressions, voice leading and swing."""

from __future__ import annotations

import itertools

import pytest

from pipelines.corpus.theory import (
    ChordSpan,
    Harmony,
    Numeral,
    Timeline,
    chord_pitch_classes,
    melody_pitch_classes,
    parse_numeral,
    parse_progression,
    scale_pitch_classes,
    swing_position,
    voice_chord,
    with_seventh,
)

C, D, E, F, G, A, B = 0, 2, 4, 5, 7, 9, 11


def test_scales():
    assert scale_pitch_classes(C, "major") == (0, 2, 4, 5, 7, 9, 11)
    assert scale_pitch_classes(A, "minor") == (9, 11, 0, 2, 4, 5, 7)  # same notes as C major
    assert scale_pitch_classes(D, "major") == (2, 4, 6, 7, 9, 11, 1)  # F# and C#
    assert scale_pitch_classes(E, "minor") == (4, 6, 7, 9, 11, 0, 2)


@pytest.mark.parametrize(
    ("token", "mode", "tonic", "expected"),
    [
        ("I", "major", C, (0, 4, 7)),
        ("vi", "major", C, (9, 0, 4)),  # A minor, root first
        ("ii", "major", C, (2, 5, 9)),
        ("V", "major", G, (2, 6, 9)),  # D major in G
        ("V7", "major", C, (7, 11, 2, 5)),
        ("ii7", "major", C, (2, 5, 9, 0)),
        ("IVmaj7", "major", C, (5, 9, 0, 4)),
        ("bVII", "major", C, (10, 2, 5)),  # Bb major, Mixolydian borrowing
        ("i", "minor", A, (9, 0, 4)),
        ("III", "minor", A, (0, 4, 7)),  # C major
        ("VI", "minor", A, (5, 9, 0)),  # F major
        ("VII", "minor", A, (7, 11, 2)),  # G major
        ("V", "minor", A, (4, 8, 11)),  # E major: the harmonic-minor dominant with G#
        ("v", "minor", A, (4, 7, 11)),  # E minor: the natural-minor dominant
        ("iio", "minor", A, (11, 2, 5)),  # B diminished
        ("iim7b5", "minor", A, (11, 2, 5, 9)),
        ("i7", "minor", A, (9, 0, 4, 7)),
        ("IV7", "minor", D, (7, 11, 2, 5)),  # the Dorian IV7 of a funk vamp: G7 in D minor
    ],
)
def test_numerals_spell_the_right_chords(token, mode, tonic, expected):
    assert parse_numeral(token, mode).pitch_classes(tonic) == expected


def test_progression_and_units():
    prog = parse_progression("I V vi IV:2", "major")
    assert [n.pitch_classes(C)[0] for n in prog] == [C, G, A, F]
    assert [n.quality for n in prog] == ["maj", "maj", "min", "maj"]
    assert [n.units for n in prog] == [1, 1, 1, 2]
    minor = parse_progression("i VI III VII", "minor")
    assert [n.pitch_classes(E) for n in minor] == [(4, 7, 11), (0, 4, 7), (7, 11, 2), (2, 6, 9)]


@pytest.mark.parametrize("bad", ["", "X", "IIV7", "vI", "Imin9", "vi+"])
def test_bad_numerals_are_rejected(bad):
    with pytest.raises(ValueError):
        parse_progression(bad, "major")


def test_diatonic_sevenths():
    def seventh(token: str, mode: str) -> str:
        return with_seventh(parse_numeral(token, mode), mode).quality

    assert [seventh(t, "major") for t in ("I", "ii", "iii", "IV", "V", "vi", "viio")] == [
        "maj7",
        "min7",
        "min7",
        "maj7",
        "7",
        "min7",
        "m7b5",
    ]
    assert seventh("V", "minor") == "7"  # E7 in A minor
    assert seventh("i", "minor") == "min7"
    assert seventh("V7", "major") == "7"  # already a seventh chord: unchanged
    assert with_seventh(Numeral(0, "sus4"), "major").quality == "sus4"


def test_melody_avoids_tones_that_clash_with_borrowed_chord_tones():
    a_minor = scale_pitch_classes(A, "minor")
    # Over E major (G# borrowed) the G of A natural minor would clash; A is also a semitone from G#.
    allowed = melody_pitch_classes(a_minor, chord_pitch_classes(E, "maj"))
    assert G not in allowed and A not in allowed
    assert {B, C, D, E, F} <= allowed
    # Over A7 in A major the borrowed G rules out G# (a clash of sevenths) but F# is a fine thirteenth.
    allowed = melody_pitch_classes(scale_pitch_classes(A, "major"), chord_pitch_classes(A, "7"))
    assert 8 not in allowed and 6 in allowed
    # Over a diatonic chord everything in the scale is allowed.
    assert melody_pitch_classes(a_minor, chord_pitch_classes(D, "min")) == frozenset(a_minor)


def _brute_force_best_movement(pcs, low, high, previous):
    """Least total movement over every assignment of chord tones to the previous voices (independently of
    voice_chord's search): each voice may take any chord pitch in range."""
    pitches = [p for p in range(low, high + 1) if p % 12 in pcs]
    best = None
    for combo in itertools.combinations(pitches, len(previous)):
        if {p % 12 for p in combo} != set(pcs) or combo[-1] - combo[0] > 16:
            continue
        moved = sum(abs(a - b) for a, b in zip(sorted(previous), combo, strict=True))
        best = moved if best is None else min(best, moved)
    return best


def test_voice_leading_keeps_common_tones_and_moves_by_step():
    c_major = (60, 64, 67)
    assert voice_chord(chord_pitch_classes(F, "maj"), 48, 84, 3, previous=c_major) == (60, 65, 69)
    assert voice_chord(chord_pitch_classes(A, "min"), 48, 84, 3, previous=c_major) == (60, 64, 69)
    assert voice_chord(chord_pitch_classes(G, "maj"), 48, 84, 3, previous=c_major) == (59, 62, 67)


@pytest.mark.parametrize(
    ("previous", "root", "quality"),
    [((60, 64, 67), G, "maj"), ((57, 60, 64), D, "min"), ((62, 65, 69), E, "maj"), ((55, 59, 62), 10, "maj")],
)
def test_voice_leading_is_minimal(previous, root, quality):
    pcs = chord_pitch_classes(root, quality)
    voicing = voice_chord(pcs, 48, 84, 3, previous=previous)
    moved = sum(abs(a - b) for a, b in zip(previous, voicing, strict=True))
    assert moved == _brute_force_best_movement(pcs, 48, 84, previous)
    assert {p % 12 for p in voicing} == set(pcs)


def test_voicing_respects_register_and_contains_every_chord_tone():
    previous = None
    for root, quality in [(C, "maj7"), (A, "min7"), (D, "min7"), (G, "7")] * 3:
        pcs = chord_pitch_classes(root, quality)
        voicing = voice_chord(pcs, 52, 76, 4, previous=previous, centre=64)
        assert all(52 <= p <= 76 for p in voicing)
        assert {p % 12 for p in voicing} == set(pcs)
        assert list(voicing) == sorted(voicing)
        previous = voicing
    # The centre keeps a cycling progression in place: after three cycles we are still mid-register.
    assert 58 <= sum(previous) / 4 <= 70


def test_voicing_with_doubled_voices_doubles_the_root():
    voicing = voice_chord(chord_pitch_classes(C, "maj"), 48, 76, 4)
    assert {p % 12 for p in voicing} == {C, E, G}
    doubled = [pc for pc in {p % 12 for p in voicing} if sum(p % 12 == pc for p in voicing) > 1]
    assert doubled == [C]


def test_swing():
    assert swing_position(2.0, 1 / 3) == 2.0  # downbeats never move
    assert swing_position(2.5, 1 / 3) == pytest.approx(2 + 2 / 3)  # off-beat eighth on the last triplet
    assert swing_position(1.5, 0.0) == 1.5
    assert swing_position(1.25, 1 / 3) == pytest.approx(1 + 1 / 3)  # sixteenths stretch with the first eighth
    assert swing_position(1.75, 1 / 3) == pytest.approx(1 + 5 / 6)
    positions = [swing_position(i / 4, 0.2) for i in range(9)]
    assert positions == sorted(positions)  # still monotonic
    assert swing_position(0.5 - 1e-9, 0.2) == pytest.approx(swing_position(0.5, 0.2))  # and continuous
    timeline = Timeline(tempo=120, beats_per_bar=4, swing=1 / 3)
    assert timeline.time(4) == pytest.approx(2.0)
    assert timeline.time(0.5) == pytest.approx(1 / 3)


def test_harmony_lookup():
    harmony = Harmony([ChordSpan(0, 4, C, "maj"), ChordSpan(4, 6, A, "min"), ChordSpan(6, 8, F, "maj")])
    assert harmony.at(0).root == C
    assert harmony.at(3.99).root == C
    assert harmony.at(4).root == A  # a chord starting exactly there counts
    assert harmony.at(7.5).root == F
    assert harmony.following(1).root == F
    assert harmony.following(2) is None
