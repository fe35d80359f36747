"""Token stream names: one home for the `SOURCE.KIND[_noisy]` protocol.

Every token sequence the project stores or generates is named after the audio it comes from and the
tokenizer that made it, e.g. `vocals.semantic`, `instrumental.coarse`, `vocals.melody_noisy`:

* `SOURCE` - `vocals` (the condition) or `instrumental` (the target);
* `KIND` - `semantic` (k-means tokens of `models.semantic`), `melody` (the melodic bottleneck of
  `models.melody`), `beat` (the melody's pulse: beat phase per frame, `models.rhythm`),
  `coarse` / `fine` (the first / remaining levels of the codec's residual VQ);
* `_noisy` - the same stream of the audio with white noise added before tokenizing (SingSong's augmentation
  against separation artefacts, `featurize.py`): the token cache keeps such *noisy twins* next to the clean
  streams, and training reads a condition stream from its twin.

The names are the keys of the token cache's files and of the cascade's conditions; parse them here
(`StreamName.parse`) rather than splitting strings where they are used.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import SingsongError

SOURCES = ("vocals", "instrumental")
#: Stream kind -> the tokenizer of a model directory that produces it.
TOKENIZER_OF_KIND = {"semantic": "semantic", "melody": "melody", "beat": "beat", "coarse": "codec", "fine": "codec"}
NOISY_SUFFIX = "_noisy"


class StreamNameError(SingsongError):
    """A stream name that does not follow `SOURCE.KIND[_noisy]`."""


@dataclass(frozen=True)
class StreamName:
    source: str  # "vocals" | "instrumental"
    kind: str  # "semantic" | "melody" | "beat" | "coarse" | "fine"
    noisy: bool = False

    @classmethod
    def parse(cls, name: str) -> StreamName:
        source, dot, rest = name.partition(".")
        kind = rest.removesuffix(NOISY_SUFFIX)
        if not dot or source not in SOURCES or kind not in TOKENIZER_OF_KIND:
            raise StreamNameError(
                f"stream {name!r}: expected SOURCE.KIND[{NOISY_SUFFIX}] with SOURCE in {', '.join(SOURCES)} "
                f"and KIND in {', '.join(TOKENIZER_OF_KIND)}"
            )
        return cls(source, kind, noisy=rest != kind)

    def __str__(self) -> str:
        return f"{self.source}.{self.kind}{NOISY_SUFFIX if self.noisy else ''}"

    @property
    def tokenizer(self) -> str:
        """The model-directory tokenizer this stream comes from: "semantic", "melody", "beat" or "codec"."""
        return TOKENIZER_OF_KIND[self.kind]

    @property
    def acoustic(self) -> bool:
        """Codec levels (coarse or fine), as opposed to semantic or melody tokens."""
        return self.tokenizer == "codec"

    @property
    def clean(self) -> StreamName:
        return StreamName(self.source, self.kind)

    @property
    def noisy_twin(self) -> StreamName:
        return StreamName(self.source, self.kind, noisy=True)


__all__ = ["NOISY_SUFFIX", "SOURCES", "TOKENIZER_OF_KIND", "StreamName", "StreamNameError"]
