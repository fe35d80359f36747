"""`compose(seed, seconds, style)`: a complete procedural song in one style, as a symbolic `Song`.

The composer works like a small band arranging a tune:

1. **Choices** (all from the seed): the style (unless given), tempo within the style's range, key and mode,
   harmonic rhythm, a verse and a chorus progression, the instruments, the singer's range.
2. **Form.** At most one intro bar on the tonic, then sections of 8 bars (12 for a twelve-bar blues)
   alternating verse and chorus; each section's progression restarts on its first bar, and its phrases
   follow a form such as A A' B A (`melody.py`).
3. **Parts**, written in beats against the shared chords: vocal (`melody.py`), drums (`drums.py`), bass and
   one or two comping parts (`accompaniment.py`).
4. **Performance.** Beats become seconds through one `Timeline`, so swing is identical in every part; a few
   milliseconds of timing jitter and some velocity variation humanise the accompaniment (the vocal keeps
   exact timing: the singing synthesiser adds its own expression); everything is trimmed to `seconds`.

Randomness comes from independent streams per concern (`_rng(seed, "drums")`, ...), so e.g. a change to the
bass writer does not alter the melody of existing seeds. The result depends only on (seed, seconds, style).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from pipelines.corpus.accompaniment import compose_bass, compose_comping
from pipelines.corpus.drums import DrumSection, compose_drums
from pipelines.corpus.melody import MelodyWriter, PhraseSlot, form_for
from pipelines.corpus.song import Chord, Note, Part, Song, VocalNote
from pipelines.corpus.styles import BASS_PATTERNS, STYLES, CompSpec, StylePreset
from pipelines.corpus.theory import (
    BeatNote,
    ChordSpan,
    Harmony,
    Mode,
    Numeral,
    Timeline,
    parse_numeral,
    parse_progression,
    scale_pitch_classes,
    with_seventh,
)

#: Shortest note kept after trimming at the song's end: the vocal needs a singable length.
MIN_VOCAL_SECONDS = 0.12
MIN_NOTE_SECONDS = 0.03
#: Humanisation: timing jitter (standard deviation and hard limit, seconds) and velocity spread.
JITTER_SD = 0.0015
JITTER_LIMIT = 0.004
VELOCITY_SPREAD = 6
#: Silence between a note-off and the next note-on of the same pitch in a part.
RETRIGGER_GAP = 0.002
#: Bars per section unless the progression is longer (a twelve-bar blues makes twelve-bar sections).
SECTION_BARS = 8
VERSE_INTENSITY = 0.92


def style_names() -> list[str]:
    return sorted(STYLES)


def _rng(seed: int, concern: str) -> random.Random:
    # String seeds are hashed with SHA-512 by `random`, independent of PYTHONHASHSEED and platform.
    return random.Random(f"singsong:{seed}:{concern}")


def _pick_style(seed: int, style: str | None) -> StylePreset:
    if style is None:
        return STYLES[_rng(seed, "style").choice(style_names())]
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; available styles: {', '.join(style_names())}")
    return STYLES[style]


def _progression(rng: random.Random, preset: StylePreset, mode: Mode) -> tuple[Numeral, ...]:
    """A progression from the style's pool, some triads made sevenths (decided once per chord, so every
    repetition of the progression is identical)."""
    pool = preset.progressions_major if mode == "major" else preset.progressions_minor
    numerals = parse_progression(rng.choice(pool), mode)
    return tuple(with_seventh(n, mode) if rng.random() < preset.seventh_probability else n for n in numerals)


def _section_bars(progression: Sequence[Numeral], beats_per_chord: float, beats_per_bar: int) -> int:
    """Bars per section: a whole number of progression cycles, at least `SECTION_BARS` long."""
    cycle_bars = max(1, round(sum(n.units for n in progression) * beats_per_chord / beats_per_bar))
    return cycle_bars * math.ceil(SECTION_BARS / cycle_bars)


@dataclass(frozen=True)
class _Form:
    """Where everything happens, in bars: an optional intro bar, then verse/chorus sections."""

    total_bars: int
    intro_bars: int
    phrase_bars: int
    sections: tuple[tuple[int, int, bool], ...]  # (start bar, bars, is chorus)


def _plan_chords(
    form: _Form,
    progressions: dict[bool, tuple[Numeral, ...]],
    tonic_chord: Numeral,
    tonic: int,
    beats_per_chord: float,
    beats_per_bar: int,
) -> list[ChordSpan]:
    """The chords in beats: the intro on the tonic, then each section cycling its progression from its
    first bar (so every verse starts on the same chord), cut at the section's end."""
    spans: list[ChordSpan] = []

    def add(start: float, end: float, numeral: Numeral) -> None:
        spans.append(ChordSpan(start, end, (tonic + numeral.offset) % 12, numeral.quality))

    if form.intro_bars:
        add(0.0, form.intro_bars * beats_per_bar, tonic_chord)
    for start_bar, bars, chorus in form.sections:
        position = start_bar * beats_per_bar
        end = min(start_bar + bars, form.total_bars) * beats_per_bar
        cycle = progressions[chorus]
        i = 0
        while position < end - 1e-9:
            numeral = cycle[i % len(cycle)]
            chord_end = min(position + numeral.units * beats_per_chord, end)
            add(position, chord_end, numeral)
            position = chord_end
            i += 1
    return spans


def _to_chords(spans: Sequence[ChordSpan], timeline: Timeline, duration: float) -> list[Chord]:
    """Song chords in seconds, tiling [0, duration] exactly (spans past the end are dropped, the last cut)."""
    chords: list[Chord] = []
    for span in spans:
        start = timeline.time(span.start)
        if start >= duration - 1e-9:
            break
        bar = int((span.start + 1e-9) // timeline.beats_per_bar)
        chords.append(
            Chord(
                bar=bar,
                beat=span.start - bar * timeline.beats_per_bar,
                start=start,
                end=min(timeline.time(span.end), duration),
                root=span.root,
                quality=span.quality,
                pitch_classes=span.pitch_classes,
            )
        )
    last = chords[-1]
    chords[-1] = Chord(last.bar, last.beat, last.start, duration, last.root, last.quality, last.pitch_classes)
    return chords


def _perform(
    notes: Sequence[BeatNote],
    timeline: Timeline,
    duration: float,
    rng: random.Random | None,
    min_length: float,
    keep_order: bool = False,
) -> list[tuple[int, Note]]:
    """Beats -> seconds with swing, optional humanisation, trimmed to the song: `(input index, note)` pairs
    sorted by onset, without notes that trimming made too short."""
    performed: list[tuple[int, Note]] = []
    for index, note in enumerate(notes):
        start = timeline.time(note.start) + note.delay
        end = timeline.time(note.end)
        velocity = note.velocity
        if rng is not None:
            shift = max(-JITTER_LIMIT, min(JITTER_LIMIT, rng.gauss(0.0, JITTER_SD)))
            start, end = start + shift, end + shift
            velocity += int(rng.random() * (2 * VELOCITY_SPREAD + 1)) - VELOCITY_SPREAD
        start = max(0.0, start)
        end = min(max(end, start + MIN_NOTE_SECONDS), duration)
        if end - start < min_length:
            continue
        performed.append((index, Note(note.pitch, start, end, max(1, min(127, velocity)))))
    if not keep_order:
        performed.sort(key=lambda item: (item[1].start, item[1].pitch))
    return _release_repeated_pitches(performed)


def _release_repeated_pitches(notes: list[tuple[int, Note]]) -> list[tuple[int, Note]]:
    """Make sure a note ends before the same pitch is struck again in the same part.

    Humanisation can nudge a note-off a few milliseconds past the next note-on of that pitch, and a
    synthesiser would then silence the new note. `notes` are sorted by onset.
    """
    result = list(notes)
    last: dict[int, int] = {}
    for i, (_, note) in enumerate(result):
        j = last.get(note.pitch)
        if j is not None and result[j][1].end > note.start - RETRIGGER_GAP:
            index, prev = result[j]
            end = max(prev.start + 0.01, note.start - RETRIGGER_GAP)
            result[j] = (index, Note(prev.pitch, prev.start, end, prev.velocity))
        last[note.pitch] = i
    return result


def _pick_comping(rng: random.Random, preset: StylePreset) -> list[CompSpec]:
    parts = [rng.choice(preset.comping_primary)]
    extra = [spec for spec in preset.comping_secondary if spec.name != parts[0].name]
    if extra and rng.random() < preset.second_part_probability:
        parts.append(rng.choice(extra))
    return parts


def _plan_form(
    rng: random.Random,
    preset: StylePreset,
    total_bars: int,
    progressions: dict[bool, tuple[Numeral, ...]],
    beats_per_chord: float,
) -> _Form:
    intro_bars = 1 if total_bars >= 4 and rng.random() < 0.5 else 0
    phrase_bars = rng.choice(preset.phrase_bars)
    sections: list[tuple[int, int, bool]] = []
    bar = intro_bars
    while bar < total_bars:
        chorus = len(sections) % 2 == 1
        bars = _section_bars(progressions[chorus], beats_per_chord, preset.beats_per_bar)
        bars = max(phrase_bars, bars - bars % phrase_bars)  # whole phrases per section
        sections.append((bar, bars, chorus))
        bar += bars
    return _Form(total_bars, intro_bars, phrase_bars, tuple(sections))


def _write_vocal(
    seed: int,
    preset: StylePreset,
    form: _Form,
    tonic: int,
    mode: Mode,
    harmony: Harmony,
    timeline: Timeline,
    duration: float,
) -> list[VocalNote]:
    rng = _rng(seed, "melody")
    beats_per_bar = preset.beats_per_bar
    slots: list[PhraseSlot] = []
    for section, (start_bar, bars, chorus) in enumerate(form.sections):
        count = bars // form.phrase_bars
        for i, label in enumerate(form_for(rng, count)):
            slots.append(
                PhraseSlot(
                    start=(start_bar + i * form.phrase_bars) * beats_per_bar,
                    beats=form.phrase_bars * beats_per_bar,
                    label=label,
                    section=section,
                    chorus=chorus,
                    cadence=i == count - 1,
                )
            )
    writer = MelodyWriter(rng, preset, tonic, mode, harmony, timeline.seconds_per_beat, rng.choice(preset.vocal_ranges))
    written = writer.write(slots)
    phrases = [phrase for phrase, _ in written]
    notes = _perform([note for _, note in written], timeline, duration, None, MIN_VOCAL_SECONDS, keep_order=True)
    vocal = [VocalNote(n.pitch, n.start, n.end, n.velocity, phrase=phrases[i]) for i, n in notes]
    # Number phrases 0, 1, 2, ... even if trimming at the end emptied one.
    order = {p: i for i, p in enumerate(dict.fromkeys(n.phrase for n in vocal))}
    return [VocalNote(n.pitch, n.start, n.end, n.velocity, phrase=order[n.phrase]) for n in vocal]


def _drum_sections(rng: random.Random, preset: StylePreset, form: _Form) -> list[DrumSection]:
    """The verse groove for the intro and verses, a (possibly different) groove for choruses."""
    verse, chorus_groove = rng.choice(preset.drum_grooves), rng.choice(preset.drum_grooves)
    sections = [DrumSection(0, form.intro_bars, verse, VERSE_INTENSITY)] if form.intro_bars else []
    sections += [
        DrumSection(start, bars, chorus_groove if chorus else verse, 1.0 if chorus else VERSE_INTENSITY)
        for start, bars, chorus in form.sections
    ]
    return sections


def compose(seed: int, seconds: float, style: str | None = None) -> Song:
    """A song of exactly `seconds` seconds. Deterministic in (seed, seconds, style); `style=None` lets the
    seed pick one of `STYLES`; an unknown style raises `ValueError` listing the available ones."""
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    preset = _pick_style(seed, style)
    rng = _rng(seed, f"song:{preset.name}")
    tempo = float(rng.randint(*preset.tempo_range))
    tonic = rng.randrange(12)
    mode: Mode = "minor" if rng.random() < preset.minor_probability else "major"
    beats_per_bar = preset.beats_per_bar
    timeline = Timeline(tempo, beats_per_bar, preset.swing)
    duration = float(seconds)

    # Harmony and form.
    beats_per_chord = beats_per_bar / rng.choice(preset.chords_per_bar)
    progressions = {False: _progression(rng, preset, mode), True: _progression(rng, preset, mode)}
    total_bars = max(1, math.ceil(duration / timeline.seconds_per_bar - 1e-9))
    form = _plan_form(rng, preset, total_bars, progressions, beats_per_chord)
    # The intro vamps on the tonic, coloured like the verse's own tonic chord when it starts on one (I7 in a
    # blues, Imaj7 in a bossa).
    first = progressions[False][0]
    tonic_chord = (
        Numeral(0, first.quality) if first.offset == 0 else parse_numeral("I" if mode == "major" else "i", mode)
    )
    spans = _plan_chords(form, progressions, tonic_chord, tonic, beats_per_chord, beats_per_bar)
    harmony = Harmony(spans)

    # The band.
    vocal = _write_vocal(seed, preset, form, tonic, mode, harmony, timeline, duration)
    band = _rng(seed, "band")
    humanise = _rng(seed, "humanise")

    def perform(notes: Sequence[BeatNote]) -> list[Note]:
        return [n for _, n in _perform(notes, timeline, duration, humanise, MIN_NOTE_SECONDS)]

    drums = compose_drums(_rng(seed, "drums"), preset, _drum_sections(band, preset, form), total_bars)
    bass = compose_bass(
        _rng(seed, "bass"),
        harmony,
        BASS_PATTERNS[preset.bass_pattern],
        scale_pitch_classes(tonic, mode),
        beats_per_bar,
        preset.velocity - 4,
        form.intro_bars,
    )
    parts = [
        Part("drums", "drums", 0, True, perform(drums)),
        Part("bass", "bass", band.choice(preset.bass_programs), False, perform(bass), gain_db=preset.bass_gain_db),
    ]
    for spec in _pick_comping(band, preset):
        notes = compose_comping(
            _rng(seed, f"comp:{spec.name}"), harmony, spec, beats_per_bar, preset.velocity, form.intro_bars
        )
        parts.append(
            Part(
                spec.name,
                "other",
                band.choice(spec.programs),
                False,
                perform(notes),
                pan=spec.pan,
                gain_db=spec.gain_db,
            )
        )

    return Song(
        seed=seed,
        style=preset.name,
        tonic=tonic,
        mode=mode,
        tempo=tempo,
        beats_per_bar=beats_per_bar,
        duration=duration,
        chords=_to_chords(spans, timeline, duration),
        vocal=vocal,
        parts=parts,
        swing=preset.swing,
    )
