"""Style presets: everything that makes a procedural song sound like pop, bossa nova or a blues shuffle.

A preset is pure data. The composer modules interpret it; nothing in them branches on a style's name.

**Grids.** Rhythms are written as one-bar step strings, like a drum machine: each character is one step
(a sixteenth when a 4/4 bar has 16 characters, an eighth when a 3/4 bar has 6). `.` is silence and `-` holds
the previous note; every other character starts a note whose meaning depends on the part:

* drums (`DrumGroove`): `X` accent, `x` normal, `o` ghost/soft;
* bass (`BASS_PATTERNS`): `R` root, `3` third, `5` fifth, `6` major sixth, `7` seventh, `8` octave,
  `P` the scale step above the root, `A` a chromatic approach to the next chord's root, `g` a muted ghost;
* comping (`COMP_PATTERNS`): `x`/`X` the whole chord (normal/accented), `d`/`u` a strum down/up, `b` only
  the lowest voice (pianist's left hand, guitarist's thumb), `t` every voice but the lowest, a digit one voice
  counted from the bottom (arpeggios).

Whatever the grid says, the composer restrikes the harmony at every chord change (bass plays the new root,
comping re-voices), so a grid never has to know the harmonic rhythm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

# General MIDI percussion keys (channel 10).
KICK = 36
SIDE_STICK = 37
SNARE = 38
CLAP = 39
LOW_FLOOR_TOM = 41
CLOSED_HAT = 42
HIGH_FLOOR_TOM = 43
PEDAL_HAT = 44
LOW_TOM = 45
OPEN_HAT = 46
LOW_MID_TOM = 47
HI_MID_TOM = 48
CRASH = 49
HIGH_TOM = 50
RIDE = 51
TAMBOURINE = 54
COWBELL = 56
SHAKER = 70  # GM "maracas"

#: Toms from high to low: fills run down them.
TOMS = (HIGH_TOM, HI_MID_TOM, LOW_MID_TOM, LOW_TOM, HIGH_FLOOR_TOM)

#: Relative loudness of drum voices, so that a grid's `x` means "normal" for that instrument: cymbals and
#: shakers sit under the kick and snare in a real kit.
DRUM_LEVEL: dict[int, float] = {
    CLOSED_HAT: 0.75,
    PEDAL_HAT: 0.7,
    OPEN_HAT: 0.75,
    RIDE: 0.75,
    TAMBOURINE: 0.65,
    SHAKER: 0.6,
    COWBELL: 0.7,
    SIDE_STICK: 0.9,
    CRASH: 0.9,
}

GRID_SILENCE = "."
GRID_HOLD = "-"


@lru_cache(maxsize=1024)
def parse_grid(grid: str) -> tuple[tuple[int, int, str], ...]:
    """`(step, length_in_steps, symbol)` for every note a grid starts; holds extend the preceding note."""
    events: list[tuple[int, int, str]] = []
    for step, symbol in enumerate(grid):
        if symbol == GRID_HOLD:
            if events and events[-1][0] + events[-1][1] == step:
                first, length, sym = events[-1]
                events[-1] = (first, length + 1, sym)
        elif symbol != GRID_SILENCE:
            events.append((step, 1, symbol))
    return tuple(events)


@dataclass(frozen=True)
class DrumGroove:
    """A drum pattern: one grid per percussion key. Grids may span several bars (`bars`), e.g. a clave."""

    name: str
    lines: tuple[tuple[int, str], ...]
    steps_per_beat: int = 4
    bars: int = 1


@dataclass(frozen=True)
class CompSpec:
    """One comping instrument a style may use: its part name, GM programs, pattern kind and register."""

    name: str
    programs: tuple[int, ...]
    pattern: str  # key of COMP_PATTERNS
    register: tuple[int, int] = (52, 76)
    voices: int = 4
    level: float = 0.85  # velocity relative to the style's
    gain_db: float = -3.0
    pan: float = 0.0


@dataclass(frozen=True)
class RhythmCell:
    """A group of melody durations in beats (negative = rest), drawn with probability ∝ weight."""

    durations: tuple[float, ...]
    weight: float = 1.0

    @property
    def length(self) -> float:
        return sum(abs(d) for d in self.durations)


@dataclass(frozen=True)
class StylePreset:
    """Everything the composer needs to write a song in one style."""

    name: str
    description: str
    tempo_range: tuple[int, int]  # BPM, inclusive
    progressions_major: tuple[str, ...]  # Roman numerals (see theory.parse_numeral)
    progressions_minor: tuple[str, ...]
    drum_grooves: tuple[DrumGroove, ...]
    bass_programs: tuple[int, ...]  # GM 32-39
    bass_pattern: str  # key of BASS_PATTERNS
    comping_primary: tuple[CompSpec, ...]  # one of these always plays
    comping_secondary: tuple[CompSpec, ...]  # and sometimes one of these
    melody_cells: tuple[RhythmCell, ...]
    beats_per_bar: int = 4
    swing: float = 0.0  # Song.swing: 0 straight, 1/3 triplet shuffle
    minor_probability: float = 0.4
    chords_per_bar: tuple[int, ...] = (1,)  # harmonic rhythm options: 1 or 2 chords per bar
    seventh_probability: float = 0.0  # chance that a triad of the progression is played as a seventh chord
    second_part_probability: float = 0.6
    phrase_bars: tuple[int, ...] = (2, 4)
    breath_beats: tuple[float, ...] = (1.0, 1.5, 2.0)  # rest at the end of each vocal phrase
    fill_every: int = 4  # bars
    fill_subdivision: int = 4  # notes per beat in fills (2 = eighths, 4 = sixteenths)
    velocity: int = 90  # a "normal" hit; accents and ghosts scale from it
    bass_gain_db: float = -2.0
    vocal_ranges: tuple[tuple[int, int], ...] = field(default=((45, 64), (50, 69), (57, 76)))


def _groove(name: str, *lines: tuple[int, str], steps_per_beat: int = 4, bars: int = 1) -> DrumGroove:
    return DrumGroove(name=name, lines=tuple(lines), steps_per_beat=steps_per_beat, bars=bars)


# ------------------------------------------------------------------------------------------ bass lines
# Every grid starts with the root on the downbeat; the composer enforces that at chord changes too.
BASS_PATTERNS: dict[str, tuple[str, ...]] = {
    "root_half": ("R-------5-------", "R---------------", "R-------R---5---"),
    "root_fifth": ("R-----R-5-------", "R---R---5---R---", "R-----5-R---5-8-"),
    "root_eighths": ("R-R-R-R-R-R-R-R-", "R-R-R-R-R-R-5-8-", "R-R-R-R-5-5-R-R-"),
    "funk": ("R..g8.R.g.R.7.8.", "R-.gR.58.gR.7-5.", "R..R..8.g.R.5.7."),
    "octaves": ("R-8-R-8-R-8-R-8-", "R-8-R-8-R-8-5-8-", "R.8.R.8.R.8.R.8."),
    "bossa": ("R-----5-5-----R-", "R-----5-5-----5-", "R-----R-5-----A-"),
    "one_drop": ("R-----R-5---8-..", "R---.-R-5-3-R-..", "R-----.RP---5-.."),
    "walking_shuffle": ("R---3---5---6---", "R-3-5-6-7-6-5-3-", "R---3---5---A---"),
    "waltz": ("R---........", "R-------5---", "R---....5---"),
    "boom_chick": ("R-------5-------", "R---5---R---5---", "R-------5---3-A-"),
}

# ------------------------------------------------------------------------------------------- comping
COMP_PATTERNS: dict[str, tuple[str, ...]] = {
    "pad": ("x---------------",),
    "block": ("x-------x-------", "x---x---x---x---", "x-----x-----x---"),
    "block_ballad": ("x---------------", "x-------x-------"),
    "arp_eighths": ("0-1-2-3-4-3-2-1-", "0-1-2-1-3-2-1-2-"),
    "arp_ballad": ("0-1-2-3-2-1-2-3-", "0-2-1-3-0-2-1-3-"),
    "strum": ("d---d-u---u-d-u-", "d-u-d-u-d-u-d-u-", "d---d-u-.ud-d-u-"),
    "chug": ("X-x-x-x-X-x-x-x-", "X.x.x.x.X.x.x.x.", "X-------X---x-x-"),
    "stabs": ("x..x..x.x..x.x..", "..x..x.x..x...x.", "X.x...x.x.x...x."),
    "horn_stabs": ("....x-......x-..", "..x-......x.....", "x-......x-x....."),
    "skank": ("..x...x...x...x.", "..x...x...x..xx."),
    "bubble": (".x.x.x.x.x.x.x.x", ".xx..xx..xx..xx."),
    "offbeat": ("..x...x...x...x.", "..x-..x-..x-..x-"),
    "house_piano": ("x..x..x...x..x..", "..x..x..x..x..x."),
    "bossa": ("x--t--t-b-t--t--", "x-.t-.x.b.t-.t-."),
    "boom_chick": ("b---t---b---t---", "b---t-t-b---t-t-"),
    "banjo_roll": ("0-1-2-0-1-2-0-1-", "0-2-1-3-0-2-1-3-"),
    "shuffle": ("x---x---x---x---", "x-----x-x-----x-", "X---x---X---x---"),
    "waltz": ("....x---x---", "....x---x-x-"),
    "waltz_strum": ("b---d-u-d-u-", "b---d---d-u-"),
    "waltz_arp": ("0-1-2-3-2-1-", "0-2-1-3-2-1-"),
    "waltz_pad": ("x-----------",),
}

# ------------------------------------------------------------------------------------ melody rhythms
_POP_CELLS = (
    RhythmCell((0.5, 0.5), 4),
    RhythmCell((1.0,), 3),
    RhythmCell((1.5, 0.5), 2),
    RhythmCell((0.5, 1.0, 0.5), 2),
    RhythmCell((2.0,), 1),
    RhythmCell((-0.5, 0.5), 1),
    RhythmCell((0.75, 0.25), 1),
)
_BALLAD_CELLS = (
    RhythmCell((1.0,), 4),
    RhythmCell((2.0,), 2),
    RhythmCell((0.5, 0.5), 3),
    RhythmCell((1.5, 0.5), 2),
    RhythmCell((0.75, 0.25), 1),
    RhythmCell((0.5, 0.25, 0.25), 1),
)
_FUNK_CELLS = (
    RhythmCell((0.5, 0.5), 3),
    RhythmCell((0.25, 0.25, 0.5), 2),
    RhythmCell((0.75, 0.25), 2),
    RhythmCell((-0.25, 0.25, 0.5), 1),
    RhythmCell((0.5, 0.25, 0.25), 1),
    RhythmCell((1.0,), 2),
    RhythmCell((-0.5, 0.5), 1),
)
_BOSSA_CELLS = (
    RhythmCell((0.5, 1.0, 0.5), 3),
    RhythmCell((0.5, 0.5), 3),
    RhythmCell((1.5, 0.5), 2),
    RhythmCell((1.0,), 2),
    RhythmCell((-0.5, 0.5), 1),
    RhythmCell((2.0,), 1),
)
_DANCE_CELLS = (
    RhythmCell((0.5, 0.5), 4),
    RhythmCell((1.0,), 3),
    RhythmCell((1.5, 0.5), 2),
    RhythmCell((-0.5, 0.5), 1),
    RhythmCell((2.0,), 1),
)
_FOLK_CELLS = (
    RhythmCell((1.0,), 4),
    RhythmCell((0.5, 0.5), 3),
    RhythmCell((2.0,), 2),
    RhythmCell((1.5, 0.5), 2),
)
_REGGAE_CELLS = (
    RhythmCell((1.0,), 3),
    RhythmCell((0.5, 0.5), 3),
    RhythmCell((1.5, 0.5), 2),
    RhythmCell((-0.5, 0.5), 2),
    RhythmCell((0.5, 1.0, 0.5), 1),
    RhythmCell((2.0,), 1),
)
_COUNTRY_CELLS = (
    RhythmCell((1.0,), 4),
    RhythmCell((0.5, 0.5), 4),
    RhythmCell((1.5, 0.5), 2),
    RhythmCell((2.0,), 2),
    RhythmCell((-0.5, 0.5), 1),
)
_BLUES_CELLS = (
    RhythmCell((0.5, 0.5), 3),
    RhythmCell((1.0,), 3),
    RhythmCell((1.5, 0.5), 2),
    RhythmCell((-0.5, 0.5), 2),
    RhythmCell((2.0,), 2),
)

# ---------------------------------------------------------------------------------- comping choices
PIANO = (0, 1)
ELECTRIC_PIANO = (4, 5)
STRINGS = (48, 49, 50)
WARM_PADS = (88, 89)  # choir/voice pads (52-54, 91) are avoided: they would blur with the vocal stem

_BLUES_12 = "I7 I7 I7 I7 IV7 IV7 I7 I7 V7 IV7 I7 V7"
_BLUES_QUICK_CHANGE = "I7 IV7 I7 I7 IV7 IV7 I7 I7 V7 IV7 I7 V7"
_ROCK_12 = "I I I I IV IV I I V IV I V"

STYLES: dict[str, StylePreset] = {
    preset.name: preset
    for preset in (
        StylePreset(
            name="pop",
            description="Radio pop: piano or strummed guitar, straight eighths, backbeat, four-chord loops.",
            tempo_range=(96, 120),
            progressions_major=("I V vi IV", "vi IV I V", "I vi IV V", "I IV vi V", "IV I V vi"),
            progressions_minor=("i VI III VII", "i iv VI V", "i VI VII i", "VI VII i i"),
            chords_per_bar=(1, 2),
            seventh_probability=0.15,
            drum_grooves=(
                _groove(
                    "pop_eighths",
                    (KICK, "X.......x.x....."),
                    (SNARE, "....X.......X..."),
                    (CLOSED_HAT, "X.x.X.x.X.x.X.x."),
                ),
                _groove(
                    "pop_sixteenths",
                    (KICK, "X.....x.X......."),
                    (SNARE, "....X.......X..."),
                    (CLOSED_HAT, "XoxoXoxoXoxoXoxo"),
                    (TAMBOURINE, "....x.......x..."),
                ),
            ),
            bass_programs=(33, 34),
            bass_pattern="root_fifth",
            comping_primary=(
                CompSpec("piano", PIANO, "block", register=(48, 76), pan=-0.2),
                CompSpec("piano", PIANO, "arp_eighths", register=(50, 79), pan=-0.2),
                CompSpec("guitar", (25, 27), "strum", register=(50, 74), voices=5, pan=0.3),
            ),
            comping_secondary=(
                CompSpec("strings", STRINGS, "pad", register=(55, 79), level=0.7, gain_db=-8.0, pan=0.35),
                CompSpec("pad", WARM_PADS, "pad", register=(55, 79), level=0.7, gain_db=-9.0, pan=-0.35),
            ),
            melody_cells=_POP_CELLS,
            velocity=92,
        ),
        StylePreset(
            name="rock",
            description="Driving rock: overdriven guitar eighths, root-note bass, loud backbeat, I-bVII-IV.",
            tempo_range=(110, 150),
            progressions_major=("I bVII IV I", "I IV V IV", "I V vi IV", "I IV I V", _ROCK_12),
            progressions_minor=("i VII VI VII", "i VI III VII", "i iv VII i", "i VI VII VII"),
            drum_grooves=(
                _groove(
                    "rock_eighths",
                    (KICK, "X.....x.X.x....."),
                    (SNARE, "....X.......X..."),
                    (CLOSED_HAT, "X.x.X.x.X.x.X.x."),
                ),
                _groove(
                    "rock_ride", (KICK, "X.......X.x....."), (SNARE, "....X.......X..."), (RIDE, "X.x.X.x.X.x.X.x.")
                ),
                _groove(
                    "rock_drive",
                    (KICK, "X.x.....X.x.x..."),
                    (SNARE, "....X.......X..."),
                    (OPEN_HAT, "x...x...x...x..."),
                    (CLOSED_HAT, "..x...x...x...x."),
                ),
            ),
            bass_programs=(34, 33),
            bass_pattern="root_eighths",
            comping_primary=(
                # Overdrive rather than distortion (30): the distortion patch's dense harmonics smear the
                # chord's chroma, and the corpus labels must stay audible in the `other` stem.
                CompSpec("guitar", (29,), "chug", register=(48, 69), voices=3, pan=-0.4),
            ),
            comping_secondary=(
                CompSpec("organ", (16, 18), "pad", register=(52, 76), level=0.7, gain_db=-8.0, pan=0.3),
                CompSpec("piano", PIANO, "block", register=(52, 79), level=0.8, gain_db=-6.0, pan=0.3),
            ),
            melody_cells=_POP_CELLS,
            minor_probability=0.35,
            second_part_probability=0.8,
            velocity=104,
            fill_every=4,
        ),
        StylePreset(
            name="funk",
            description="Funk: sixteenth-note hats with ghost notes, slap bass, choppy guitar/clav, 7th vamps.",
            tempo_range=(95, 115),
            progressions_major=("I7 IV7", "I7 I7 IV7 IV7", "ii7 V7", "I7 bVII7 IV7 I7"),
            progressions_minor=("i7 IV7", "i7 i7 iv7 v7", "i7 iv7", "i7 VII7 i7 IV7"),
            seventh_probability=1.0,
            drum_grooves=(
                # Syncopation lives in the ghost notes and the kick's pickups; beats 1 and 3 always have the
                # kick and 2 and 4 the snare, so the pulse stays unambiguous under all the sixteenths.
                # Loud hits fall on the eighth-note grid and only ghosts on the "e"/"a" sixteenths; accents
                # three sixteenths apart would suggest a pulse of dotted eighths (4/3 of the tempo).
                _groove(
                    "funk_ghosts",
                    (KICK, "X.x.....X.x....."),
                    (SNARE, "....X.o....oX.o."),
                    (CLOSED_HAT, "XxoxXxoxXxoxXx.x"),
                    (OPEN_HAT, "..............x."),
                ),
                _groove(
                    "funk_open",
                    (KICK, "X......oX.x....."),
                    (SNARE, "....X.o.o...X..o"),
                    (CLOSED_HAT, "X.x.X.x.X.x.X..."),
                    (OPEN_HAT, "..............x."),
                ),
            ),
            bass_programs=(36, 37, 38),
            bass_pattern="funk",
            comping_primary=(
                CompSpec("guitar", (27,), "stabs", register=(55, 76), voices=3, level=0.8, pan=0.4),
                CompSpec("clav", (7,), "stabs", register=(52, 76), voices=3, level=0.8, pan=-0.3),
            ),
            comping_secondary=(
                CompSpec(
                    "brass", (61, 62), "horn_stabs", register=(55, 79), voices=4, level=0.85, gain_db=-6.0, pan=-0.35
                ),
                CompSpec("keys", ELECTRIC_PIANO, "pad", register=(52, 76), level=0.65, gain_db=-8.0, pan=0.3),
            ),
            melody_cells=_FUNK_CELLS,
            minor_probability=0.65,
            velocity=96,
        ),
        StylePreset(
            name="ballad",
            description="Slow ballad: arpeggiated piano, string pad, side-stick backbeat, long melody notes.",
            tempo_range=(60, 80),
            progressions_major=("I V vi IV", "I vi IV V", "vi IV I V", "I iii IV V", "IV V iii vi"),
            progressions_minor=("i VI III VII", "i iv VI V", "i VI iv V"),
            chords_per_bar=(1, 2),
            seventh_probability=0.25,
            drum_grooves=(
                _groove(
                    "ballad_stick",
                    (KICK, "X.......x.x....."),
                    (SIDE_STICK, "....x.......x..."),
                    (CLOSED_HAT, "x.o.x.o.x.o.x.o."),
                ),
                _groove(
                    "ballad_ride", (KICK, "X.......X......."), (SNARE, "....x.......x..."), (RIDE, "x.o.x.o.x.o.x.o.")
                ),
            ),
            bass_programs=(33, 35),
            bass_pattern="root_half",
            comping_primary=(
                CompSpec("piano", PIANO, "arp_ballad", register=(48, 79), pan=-0.15),
                CompSpec("piano", PIANO, "block_ballad", register=(48, 76), pan=-0.15),
            ),
            comping_secondary=(
                CompSpec("strings", STRINGS, "pad", register=(55, 79), level=0.7, gain_db=-7.0, pan=0.35),
                CompSpec("pad", WARM_PADS, "pad", register=(55, 79), level=0.7, gain_db=-8.0, pan=0.35),
            ),
            melody_cells=_BALLAD_CELLS,
            second_part_probability=0.75,
            phrase_bars=(2, 4),
            breath_beats=(1.5, 2.0),
            fill_subdivision=2,
            velocity=74,
            vocal_ranges=((45, 64), (52, 71), (57, 76)),
        ),
        StylePreset(
            name="bossa",
            description="Bossa nova: nylon guitar syncopations, bossa kick and clave, seventh chords, ii-V-I.",
            tempo_range=(110, 140),
            progressions_major=(
                "Imaj7 vi7 ii7 V7",
                "ii7 V7 Imaj7 Imaj7",
                "Imaj7 IVmaj7 iii7 vi7",
                "Imaj7 ii7 iii7 ii7",
            ),
            progressions_minor=("i7 iv7 iim7b5 V7", "i7 VImaj7 iim7b5 V7", "i7 i7 iv7 iv7"),
            seventh_probability=1.0,
            drum_grooves=(
                # The bass drum plays the samba figure - every beat, with a soft pickup on the last
                # sixteenth before it - so the quarter-note pulse stays clear under the syncopated clave (the
                # classic dotted-quarter kick alone pulls a listener, and a beat tracker, to 2/3 of the tempo).
                _groove(
                    "bossa_clave",
                    (KICK, "X..oX..oX..oX..oX..oX..oX..oX..o"),
                    (SIDE_STICK, "x.....x.....x.......x.....x....."),
                    (CLOSED_HAT, "x.o.x.o.x.o.x.o.x.o.x.o.x.o.x.o."),
                    bars=2,
                ),
                _groove(
                    "bossa_shaker",
                    (KICK, "X..oX..oX..oX..o"),
                    (SIDE_STICK, "....x.......x..."),
                    (SHAKER, "XoxoXoxoXoxoXoxo"),
                ),
            ),
            bass_programs=(32,),
            bass_pattern="bossa",
            comping_primary=(CompSpec("guitar", (24,), "bossa", register=(48, 72), voices=4, pan=-0.25),),
            comping_secondary=(
                CompSpec("keys", ELECTRIC_PIANO, "pad", register=(52, 76), level=0.65, gain_db=-8.0, pan=0.3),
                CompSpec("vibes", (11,), "block", register=(55, 79), level=0.7, gain_db=-8.0, pan=0.35),
            ),
            melody_cells=_BOSSA_CELLS,
            minor_probability=0.35,
            phrase_bars=(2, 4),
            fill_subdivision=2,
            velocity=72,
        ),
        StylePreset(
            name="dance",
            description="Electronic dance: four-on-the-floor kick, clap, offbeat open hats, octave synth bass.",
            tempo_range=(118, 130),
            progressions_major=("vi IV I V", "I V vi IV", "IV V vi vi", "vi V IV V"),
            progressions_minor=("i VI III VII", "i iv VI v", "i VII VI VII", "VI VII i i"),
            seventh_probability=0.3,
            drum_grooves=(
                _groove(
                    "four_on_the_floor",
                    (KICK, "X...X...X...X..."),
                    (CLAP, "....X.......X..."),
                    (OPEN_HAT, "..x...x...x...x."),
                    (CLOSED_HAT, "xo.oxo.oxo.oxo.o"),
                ),
                _groove(
                    "four_on_the_floor_16",
                    (KICK, "X...X...X...X..."),
                    (SNARE, "....X.......X..."),
                    (CLAP, "....X.......X..."),
                    (CLOSED_HAT, "xxXxxxXxxxXxxxXx"),
                ),
            ),
            bass_programs=(38, 39),
            bass_pattern="octaves",
            comping_primary=(
                CompSpec("synth", (81, 90), "offbeat", register=(55, 79), voices=4, level=0.8, pan=0.2),
                CompSpec("piano", PIANO, "house_piano", register=(55, 79), voices=4, pan=-0.2),
            ),
            comping_secondary=(
                CompSpec("pad", (89, 90, 50), "pad", register=(52, 76), level=0.7, gain_db=-8.0, pan=-0.3),
            ),
            melody_cells=_DANCE_CELLS,
            minor_probability=0.6,
            second_part_probability=0.8,
            velocity=100,
        ),
        StylePreset(
            name="folk",
            description="Folk waltz in 3/4: thumb-and-strum acoustic guitar, oom-pah-pah, brushed snare.",
            tempo_range=(96, 132),
            beats_per_bar=3,
            progressions_major=("I IV I V", "I V vi IV", "I IV V I", "I vi IV V"),
            progressions_minor=("i iv i V", "i VII VI VII", "i VI VII i"),
            drum_grooves=(
                _groove("waltz", (KICK, "X....."), (SNARE, "..x.x."), (CLOSED_HAT, "x.x.x."), steps_per_beat=2),
                _groove(
                    "waltz_tambourine",
                    (KICK, "X....."),
                    (SIDE_STICK, "..x.x."),
                    (TAMBOURINE, "xox.x."),
                    steps_per_beat=2,
                ),
            ),
            bass_programs=(32, 33),
            bass_pattern="waltz",
            comping_primary=(
                CompSpec("guitar", (25,), "waltz_strum", register=(48, 72), voices=4, pan=-0.25),
                CompSpec("piano", PIANO, "waltz", register=(52, 76), voices=3, pan=-0.2),
            ),
            comping_secondary=(
                CompSpec(
                    "accordion", (21,), "waltz_pad", register=(55, 76), voices=3, level=0.7, gain_db=-8.0, pan=0.3
                ),
                CompSpec("banjo", (105,), "waltz_arp", register=(55, 79), level=0.75, gain_db=-7.0, pan=0.4),
            ),
            melody_cells=_FOLK_CELLS,
            minor_probability=0.3,
            phrase_bars=(4, 2),
            breath_beats=(1.0, 2.0),
            fill_subdivision=2,
            velocity=82,
        ),
        StylePreset(
            name="country",
            description="Country two-step: boom-chick guitar and bass, light shuffle, chords held for two bars.",
            tempo_range=(104, 132),
            progressions_major=("I:2 IV:2 V:2 I:2", "I I IV IV V V I I", "I:2 V:2 IV:2 I:2", "I IV I V", "I vi IV V"),
            progressions_minor=("i:2 iv:2 VII:2 i:2", "i VI VII i"),
            swing=0.2,
            drum_grooves=(
                _groove(
                    "two_step",
                    (KICK, "X.......X......."),
                    (SNARE, "....X.......X..."),
                    (CLOSED_HAT, "X.x.X.x.X.x.X.x."),
                ),
                _groove(
                    "two_step_stick",
                    (KICK, "X.......X......."),
                    (SIDE_STICK, "....x.......x..."),
                    (RIDE, "X.x.X.x.X.x.X.x."),
                    (PEDAL_HAT, "....x.......x..."),
                ),
            ),
            bass_programs=(32, 33),
            bass_pattern="boom_chick",
            comping_primary=(CompSpec("guitar", (25,), "boom_chick", register=(48, 72), voices=4, pan=-0.3),),
            comping_secondary=(
                CompSpec("banjo", (105,), "banjo_roll", register=(55, 79), level=0.7, gain_db=-7.0, pan=0.4),
                CompSpec("piano", PIANO, "block", register=(52, 76), level=0.75, gain_db=-6.0, pan=0.3),
            ),
            melody_cells=_COUNTRY_CELLS,
            minor_probability=0.15,
            phrase_bars=(4, 2),
            fill_subdivision=2,
            velocity=88,
        ),
        StylePreset(
            name="reggae",
            description="Reggae: one-drop or steppers drums, offbeat guitar skank, organ bubble, melodic bass.",
            tempo_range=(68, 88),
            progressions_major=("I IV V IV", "I V vi IV", "I IV I V", "I ii IV V"),
            progressions_minor=("i iv i v", "i VII VI VII", "i iv VII i"),
            chords_per_bar=(1, 2),
            swing=0.0,
            drum_grooves=(
                # The one drop leaves beat 1 empty, so the hats lean on every beat to keep the pulse clear.
                _groove(
                    "one_drop",
                    (KICK, "........X......."),
                    (SIDE_STICK, "........X......."),
                    (CLOSED_HAT, "X.o.X.o.X.o.X..."),
                    (OPEN_HAT, "..............x."),
                ),
                _groove(
                    "steppers",
                    (KICK, "X...X...X...X..."),
                    (SIDE_STICK, "........X......."),
                    (CLOSED_HAT, "x.o.x.o.x.o.x.o."),
                ),
            ),
            bass_programs=(33, 34),
            bass_pattern="one_drop",
            comping_primary=(CompSpec("guitar", (28, 27), "skank", register=(55, 76), voices=3, level=0.8, pan=0.35),),
            comping_secondary=(
                CompSpec("organ", (16, 17), "bubble", register=(52, 72), voices=3, level=0.65, gain_db=-7.0, pan=-0.35),
                CompSpec("piano", PIANO, "skank", register=(55, 79), voices=4, level=0.7, gain_db=-6.0, pan=-0.3),
            ),
            melody_cells=_REGGAE_CELLS,
            second_part_probability=0.8,
            fill_subdivision=2,
            velocity=86,
            bass_gain_db=0.0,
        ),
        StylePreset(
            name="blues",
            description="Blues shuffle: triplet swing, 12-bar form, walking/boogie bass, shuffle piano, AAB lines.",
            tempo_range=(80, 108),
            progressions_major=(_BLUES_12, _BLUES_QUICK_CHANGE),
            progressions_minor=("i7 i7 i7 i7 iv7 iv7 i7 i7 VI7 V7 i7 V7",),
            swing=1 / 3,
            seventh_probability=1.0,
            drum_grooves=(
                _groove(
                    "shuffle_ride",
                    (KICK, "X.......X......."),
                    (SNARE, "....X.......X..."),
                    (RIDE, "X.x.X.x.X.x.X.x."),
                    (PEDAL_HAT, "....x.......x..."),
                ),
                _groove(
                    "shuffle_hat",
                    (KICK, "X.....x.X.....x."),
                    (SNARE, "....X.......X..."),
                    (CLOSED_HAT, "x.x.x.x.x.x.x.x."),
                ),
            ),
            bass_programs=(32, 33),
            bass_pattern="walking_shuffle",
            comping_primary=(
                CompSpec("piano", PIANO, "shuffle", register=(52, 76), pan=-0.2),
                CompSpec("guitar", (26, 27), "shuffle", register=(52, 72), voices=3, pan=0.3),
            ),
            comping_secondary=(
                CompSpec("organ", (16, 17), "pad", register=(52, 76), level=0.65, gain_db=-8.0, pan=0.35),
            ),
            melody_cells=_BLUES_CELLS,
            minor_probability=0.25,
            phrase_bars=(4,),
            breath_beats=(1.5, 2.0),
            fill_subdivision=2,
            velocity=88,
        ),
    )
}
