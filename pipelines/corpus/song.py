"""The symbolic description of one procedural song, shared by the composer, the renderers and the writer.

Times are in seconds from the start of the song (the tempo is constant, so beats map linearly to seconds).
Pitches are MIDI note numbers; pitch classes are 0..11 with C = 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import pretty_midi

Stem = Literal["vocals", "drums", "bass", "other"]
STEMS: tuple[Stem, ...] = ("vocals", "drums", "bass", "other")
PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


@dataclass(frozen=True)
class Note:
    pitch: int  # MIDI note number (for drums: the GM percussion key)
    start: float  # seconds
    end: float  # seconds, > start
    velocity: int  # 1..127


@dataclass(frozen=True)
class VocalNote(Note):
    """A sung note. `phrase` groups notes into phrases; the singer breathes in the rests between phrases."""

    phrase: int = 0


@dataclass(frozen=True)
class Chord:
    """One chord of the progression, e.g. `Chord(bar=3, beat=0, start=6.0, end=8.0, root=9, quality="min")`."""

    bar: int  # 0-based bar index
    beat: float  # beat within the bar where the chord starts
    start: float
    end: float
    root: int  # pitch class of the root
    quality: str  # "maj", "min", "dim", "aug", "sus2", "sus4", "7", "maj7", "min7", ...
    pitch_classes: tuple[int, ...]  # all pitch classes of the chord, root first

    @property
    def symbol(self) -> str:
        suffix = {"maj": "", "min": "m", "min7": "m7"}.get(self.quality, self.quality)
        return f"{PITCH_CLASS_NAMES[self.root]}{suffix}"


@dataclass
class Part:
    """One rendered instrument. Several parts may share a stem (e.g. keys and guitar both go to `other`)."""

    name: str  # "bass", "drums", "piano", "guitar", "pad", ...
    stem: Stem
    program: int  # General MIDI program 0..127 (ignored when is_drum)
    is_drum: bool
    notes: list[Note] = field(default_factory=list)
    pan: float = 0.0  # -1 (left) .. 1 (right)
    gain_db: float = 0.0  # mix level relative to the other parts


@dataclass
class Song:
    seed: int
    style: str
    tonic: int  # pitch class of the key's tonic
    mode: Literal["major", "minor"]
    tempo: float  # beats per minute
    beats_per_bar: int
    duration: float  # seconds; every note ends before this
    chords: list[Chord]
    vocal: list[VocalNote]
    parts: list[Part]  # accompaniment only; the vocal is rendered by the voice synthesiser
    swing: float = 0.0  # 0 = straight eighths, 1/3 = full triplet swing

    @property
    def key_name(self) -> str:
        return f"{PITCH_CLASS_NAMES[self.tonic]} {self.mode}"

    @property
    def scale_pitch_classes(self) -> tuple[int, ...]:
        steps = (0, 2, 4, 5, 7, 9, 11) if self.mode == "major" else (0, 2, 3, 5, 7, 8, 10)
        return tuple((self.tonic + s) % 12 for s in steps)

    def to_midi(self, vocal_program: int = 53) -> pretty_midi.PrettyMIDI:
        """All parts (vocal on a "Voice Oohs" track by default) as a General MIDI file."""
        midi = pretty_midi.PrettyMIDI(initial_tempo=self.tempo)
        vocal = pretty_midi.Instrument(program=vocal_program, name="vocals")
        vocal.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start, n.end) for n in self.vocal]
        midi.instruments.append(vocal)
        for part in self.parts:
            instrument = pretty_midi.Instrument(program=part.program, is_drum=part.is_drum, name=part.name)
            instrument.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start, n.end) for n in part.notes]
            midi.instruments.append(instrument)
        return midi

    def metadata(self) -> dict:
        """JSON-serialisable description (everything except the note lists, which live in the MIDI file)."""
        return {
            "seed": self.seed,
            "style": self.style,
            "key": self.key_name,
            "tonic": self.tonic,
            "mode": self.mode,
            "tempo": self.tempo,
            "beats_per_bar": self.beats_per_bar,
            "swing": self.swing,
            "duration": self.duration,
            "chords": [{**asdict(c), "symbol": c.symbol} for c in self.chords],
            "parts": [
                {
                    "name": p.name,
                    "stem": p.stem,
                    "program": p.program,
                    "is_drum": p.is_drum,
                    "pan": p.pan,
                    "gain_db": p.gain_db,
                    "notes": len(p.notes),
                }
                for p in self.parts
            ],
            "vocal_notes": len(self.vocal),
            "vocal_phrases": len({n.phrase for n in self.vocal}),
        }
