"""The accompaniment engine interface: what `singsong accompany`, the batch CLI and the service worker call.

An engine takes a batch of vocals (any sample rate, mono or stereo) with per-request generation options and
returns, for every vocal, one or more takes: the generated accompaniment stem and the mix of vocal and
accompaniment, both at the vocal's sample rate and exactly as long as the vocal. Batching is part of the
interface because generation is dominated by per-step overhead: one batched forward for N requests costs
far less than N forwards (the service worker groups queued jobs by length for this reason).

Every take also carries the vocal's melody check (`melody_check.py`: melody coverage and a warning when
there is little or no sung melody to follow). Engines fill it with `with_melody_checks`; callers run it too,
so an engine that does not still reports it.

The cascade model (`Accompanist`, semantic -> coarse -> fine token transformers) implements it; tests may
implement it with any tiny randomly initialised network, never with canned audio.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from core.audio import Audio
from pipelines.inference.melody_check import MelodyCheck, check_melody

if TYPE_CHECKING:  # the API process imports this module for `GenerationOptions` and must not load torch
    from models.melody import MelodyTokenizer

#: Called with the fraction of the batch's work done so far (0..1).
ProgressCallback = Callable[[float], None]


#: Sampling settings of a request that leaves them unset and a model that recommends none.
DEFAULT_SAMPLING: dict[str, float] = {
    "temperature": 1.0,
    "top_k": 250,
    "top_p": 0.0,
    "guidance_scale": 1.0,
    "plan_candidates": 1,
    "key_strength": 0.0,
}
MAX_PLAN_CANDIDATES = 8
MAX_KEY_STRENGTH = 50.0


@dataclass(frozen=True)
class GenerationOptions:
    """Per-request sampling options (all engines accept them; an engine ignores what it cannot use).

    A sampling field left at None takes the model's recommended value (`sampling` in its `singsong.json`,
    measured when the model was made: e.g. the guidance at which its plans follow the vocal), else
    `DEFAULT_SAMPLING`; `with_defaults` resolves them.
    """

    seed: int | None = None  # None: a random seed, reported back in the result
    temperature: float | None = None
    top_k: int | None = None  # 0: no top-k filtering; 250 as MusicGen samples codec tokens
    top_p: float | None = None  # 0: no nucleus filtering
    guidance_scale: float | None = None  # classifier-free guidance; 1 = conditional model only
    plan_candidates: int | None = None  # harmony plans sampled per take, the best kept (plan_selection.py)
    key_strength: float | None = None  # pull of the vocal's key on the harmony plan; 0 = off (plan_selection.py)
    takes: int = 1  # independent accompaniments for the same vocal

    def with_defaults(self, recommended: Mapping[str, float] | None = None) -> GenerationOptions:
        """These options with every unset sampling field taken from `recommended`, else `DEFAULT_SAMPLING`."""
        chosen = {**DEFAULT_SAMPLING, **(recommended or {})}
        values = {name: chosen[name] if getattr(self, name) is None else getattr(self, name) for name in chosen}
        values["top_k"] = int(values["top_k"])
        values["plan_candidates"] = int(values["plan_candidates"])
        values["key_strength"] = float(values["key_strength"])
        return replace(self, **values)

    def validate(self) -> None:
        if self.temperature is not None and not 0.0 < self.temperature <= 5.0:
            raise ValueError(f"temperature must be in (0, 5], got {self.temperature}")
        if self.top_k is not None and self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if self.top_p is not None and not 0.0 <= self.top_p <= 1.0:
            raise ValueError(f"top_p must be in [0, 1], got {self.top_p}")
        if self.guidance_scale is not None and not 0.0 <= self.guidance_scale <= 20.0:
            raise ValueError(f"guidance_scale must be in [0, 20], got {self.guidance_scale}")
        if self.plan_candidates is not None and not 1 <= self.plan_candidates <= MAX_PLAN_CANDIDATES:
            raise ValueError(f"plan_candidates must be between 1 and {MAX_PLAN_CANDIDATES}, got {self.plan_candidates}")
        if self.key_strength is not None and not 0.0 <= self.key_strength <= MAX_KEY_STRENGTH:
            raise ValueError(f"key_strength must be in [0, {MAX_KEY_STRENGTH:g}], got {self.key_strength}")
        if not 1 <= self.takes <= 16:
            raise ValueError(f"takes must be between 1 and 16, got {self.takes}")


@dataclass
class Take:
    """One generated accompaniment for one vocal. Arrays are float32 `[C, T]` at `sample_rate`."""

    accompaniment: np.ndarray
    mix: np.ndarray
    sample_rate: int
    seed: int
    take: int = 0
    melody: MelodyCheck | None = None  # the vocal's melody coverage and warnings (shared by its takes)


def with_melody_checks(
    vocals: Sequence[Audio], results: list[list[Take]], tokenizer: MelodyTokenizer | None = None
) -> list[list[Take]]:
    """Give every take without a melody check its vocal's (one check per vocal); returns `results`."""
    for vocal, takes in zip(vocals, results, strict=True):
        if any(take.melody is None for take in takes):
            check = next((take.melody for take in takes if take.melody is not None), None)
            check = check or check_melody(vocal, tokenizer)
            for take in takes:
                take.melody = take.melody or check
    return results


def take_rows(vocals: Sequence[Audio], options: Sequence[GenerationOptions]) -> list[tuple[int, int, int]]:
    """Validate a batch request and expand it to one `(vocal index, take, seed)` row per take to generate.

    Take `t` of a request uses seed `seed + t`; a request without a seed gets a random one (reported back in
    each `Take`), so every take can be reproduced later.
    """
    if len(vocals) != len(options):
        raise ValueError(f"{len(vocals)} vocals but {len(options)} option sets")
    rows = []
    for index, option in enumerate(options):
        option.validate()
        base = option.seed if option.seed is not None else secrets.randbelow(2**31 - 1)
        rows.extend((index, take, base + take) for take in range(option.takes))
    return rows


class AccompanimentEngine(ABC):
    """Vocals in, accompaniments out (see the module docstring)."""

    #: Largest number of vocals one `accompany_batch` call should receive.
    max_batch_size: int = 8

    @abstractmethod
    def accompany_batch(
        self,
        vocals: Sequence[Audio],
        options: Sequence[GenerationOptions],
        progress: ProgressCallback | None = None,
    ) -> list[list[Take]]:
        """One result list (of `options[i].takes` takes) per vocal, in input order."""

    def accompany(self, vocal: Audio, options: GenerationOptions | None = None) -> list[Take]:
        """Convenience wrapper for a single vocal."""
        return with_melody_checks([vocal], self.accompany_batch([vocal], [options or GenerationOptions()]))[0]
