"""Is there a melody to follow? The per-vocal check every accompaniment reports.

Every engine accompanies whatever it is given: speech, noise or silence come back with an accompaniment as
if they were sung, and without a word the user cannot tell why it fits nothing. So every result carries the
vocal's **melody coverage** (`models.melody.melody_coverage`: the share of its duration in held, pitched
notes inside steady passages, at the singer's own tuning; synthetic sung vocals 0.50-0.90, espeak-ng speech
median 0.00 and at most 0.26 (0.32 with noise), noise and silence 0) and, below `LOW_MELODY_COVERAGE` (0.3),
a warning sentence. The CLI prints both, `singsong batch` lists the low ones in its summary, and the
service's job status has `melody_coverage` and `warnings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.audio import Audio

if TYPE_CHECKING:  # imported when used: the API process reads `MelodyCheck` and must not pay for torch
    from models.melody import MelodyTokenizer


@dataclass(frozen=True)
class MelodyCheck:
    """The melody check of one vocal (the same object for all its takes)."""

    coverage: float  # 0..1, rounded to 3 decimals
    warnings: tuple[str, ...] = ()

    @property
    def low(self) -> bool:
        return bool(self.warnings)


def low_melody_warning(coverage: float) -> str:
    """The warning for a vocal with melody coverage `coverage` (below the threshold)."""
    from models.melody import LOW_MELODY_COVERAGE

    return (
        f"little or no sung melody: held, pitched notes cover {coverage:.0%} of the vocal (below "
        f"{LOW_MELODY_COVERAGE:.0%}; sung vocals cover 50-90%). Speech, noise or silence get an accompaniment "
        "with no tune to follow."
    )


def check_melody(vocal: Audio, tokenizer: MelodyTokenizer | None = None) -> MelodyCheck:
    """Melody coverage and warnings of a vocal (any rate and channel count; ~0.4 s per minute of 44.1 kHz
    stereo on one core, resampling and tuning estimate included)."""
    from models.melody import LOW_MELODY_COVERAGE, melody_coverage_of

    coverage = round(melody_coverage_of(vocal.samples, vocal.sample_rate, tokenizer), 3)
    warnings = (low_melody_warning(coverage),) if coverage < LOW_MELODY_COVERAGE else ()
    return MelodyCheck(coverage, warnings)
