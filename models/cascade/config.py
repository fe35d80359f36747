"""What a stage is: its streams, layout and sizes (`StageConfig`), and the stage kinds and featurisations.

Shared by every stage model (`stage.py`: autoregressive, `masked.py`: parallel) and stored verbatim in each
stage checkpoint's `config.json` (kind "cascade_stage").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from models.cascade.patterns import frames_per_step, grid_rate
from models.cascade.transformer import TransformerConfig

CHECKPOINT_KIND = "cascade_stage"
STAGES = ("semantic", "coarse", "fine", "delay", "parallel")
#: Sequence layouts: AudioLM flattening, MusicGen delay pattern (`stage.py`), SoundStorm masking (`masked.py`).
PATTERNS = ("flat", "delay", "masked")
FEATURIZATIONS: dict[str, tuple[str, ...]] = {
    "S": ("vocals.semantic",),
    "SA": ("vocals.semantic", "vocals.coarse"),
    "M": ("vocals.melody",),
    "MB": ("vocals.melody", "vocals.beat"),  # + the melody's pulse (`models/rhythm.py`)
}
#: (window, prompt) seconds per stage: AudioLM uses short windows for the fine stage.
DEFAULT_WINDOWS: dict[str, tuple[float, float]] = {
    "semantic": (10.0, 5.0),
    "coarse": (10.0, 5.0),
    "fine": (3.0, 1.0),
    "delay": (10.0, 5.0),
    "parallel": (10.0, 5.0),
}
#: Default decoding passes per level of a masked stage (SoundStorm: several for the first level, greedy after).
DEFAULT_ITERATIONS = (12, 2, 1)
StepCallback = Callable[[int], None]  # called with the number of tokens (steps) just sampled


@dataclass(frozen=True)
class StreamInfo:
    """A token stream as the model sees it (from the token cache's `cache.json`)."""

    name: str
    codebooks: int
    cardinality: int
    frame_rate: float


@dataclass(frozen=True)
class StageConfig:
    """Everything needed to rebuild a stage: layout, streams and trunk size."""

    stage: str
    conditions: tuple[StreamInfo, ...]
    targets: tuple[StreamInfo, ...]  # concatenated along codebooks (same rate and cardinality)
    guided: tuple[str, ...] = ()  # condition streams replaced by nulls for classifier-free guidance
    pattern: str = "flat"  # one of PATTERNS
    iterations: tuple[int, ...] = ()  # masked pattern: decoding passes per level (the last repeats)
    window_seconds: float = 10.0
    prompt_seconds: float = 5.0
    transformer: TransformerConfig = field(default_factory=TransformerConfig)

    def __post_init__(self) -> None:
        if self.stage not in STAGES or self.pattern not in PATTERNS:
            raise ValueError(f"unknown stage {self.stage!r} or pattern {self.pattern!r}")
        if not self.targets or len({(t.frame_rate, t.cardinality) for t in self.targets}) != 1:
            raise ValueError("target streams must share frame rate and cardinality")
        if not set(self.guided) <= {c.name for c in self.conditions}:
            raise ValueError("guided streams must be condition streams")
        if not 0.0 <= self.prompt_seconds < self.window_seconds:
            raise ValueError("need 0 <= prompt_seconds < window_seconds")
        if self.pattern == "masked" and (not self.iterations or min(self.iterations) < 1):
            raise ValueError("a masked stage needs iterations >= 1 per level")
        if (self.pattern == "masked") != (not self.transformer.causal):
            raise ValueError("the masked pattern, and only it, uses a bidirectional (non-causal) transformer")

    @property
    def streams(self) -> tuple[StreamInfo, ...]:
        return self.conditions + self.targets

    @property
    def target_rate(self) -> float:
        return self.targets[0].frame_rate

    @property
    def cardinality(self) -> int:
        return self.targets[0].cardinality

    @property
    def num_levels(self) -> int:
        return sum(t.codebooks for t in self.targets)

    @property
    def position_rate(self) -> float:
        """Rotary positions count frames of the fastest stream of the stage."""
        return max(s.frame_rate for s in self.streams)

    @property
    def grid_frames(self) -> int:
        """Target frames per alignment grid step (window starts and lengths are multiples of it)."""
        return frames_per_step(self.target_rate, grid_rate(s.frame_rate for s in self.streams))

    def window_frames(self, seconds: float | None = None) -> int:
        grid = self.grid_frames
        frames = (self.window_seconds if seconds is None else seconds) * self.target_rate
        return max(grid, int(frames // grid) * grid)

    def prompt_frames(self) -> int:
        grid = self.grid_frames
        return min(int(self.prompt_seconds * self.target_rate // grid) * grid, self.window_frames() - grid)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageConfig:
        data = dict(data)
        data["conditions"] = tuple(StreamInfo(**s) for s in data["conditions"])
        data["targets"] = tuple(StreamInfo(**s) for s in data["targets"])
        data["guided"] = tuple(data.get("guided", ()))
        data["iterations"] = tuple(data.get("iterations", ()))
        data["transformer"] = TransformerConfig(**data["transformer"])
        return cls(**data)


def build_stage_config(
    stage: str,
    streams: Mapping[str, StreamInfo],
    condition_streams: Sequence[str],
    *,
    transformer: TransformerConfig | None = None,
    window_seconds: float | None = None,
    prompt_seconds: float | None = None,
    pattern: str | None = None,
    iterations: Sequence[int] | None = None,
) -> StageConfig:
    """The config of `stage` conditioned on the vocal `condition_streams`, with stream specs from `streams`.

    `pattern` defaults to the stage's own (`delay` for delay, `masked` for parallel, else `flat`); a semantic
    stage may also be `masked`. `iterations` (masked only) defaults to `DEFAULT_ITERATIONS`.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose from {', '.join(STAGES)}")
    vocal = tuple(condition_streams)
    condition_names, target_names = {
        "semantic": (vocal, ("instrumental.semantic",)),
        "coarse": ((*vocal, "instrumental.semantic"), ("instrumental.coarse",)),
        "fine": (("instrumental.coarse",), ("instrumental.fine",)),
        "delay": ((*vocal, "instrumental.semantic"), ("instrumental.coarse", "instrumental.fine")),
        "parallel": ((*vocal, "instrumental.semantic"), ("instrumental.coarse", "instrumental.fine")),
    }[stage]
    own = {"delay": "delay", "parallel": "masked"}.get(stage, "flat")
    pattern = pattern or own
    if pattern != own and not (stage == "semantic" and pattern == "masked"):
        raise ValueError(f"stage {stage} cannot use the {pattern!r} pattern")
    masked = pattern == "masked"
    transformer = transformer or TransformerConfig()
    if transformer.causal == masked:
        transformer = replace(transformer, causal=not masked)
    missing = [name for name in (*condition_names, *target_names) if name not in streams]
    if missing:
        raise ValueError(f"stage {stage} needs streams {missing}, which are not available")
    default_window, default_prompt = DEFAULT_WINDOWS[stage]
    window = default_window if window_seconds is None else window_seconds
    prompt = (default_prompt * window / default_window) if prompt_seconds is None else prompt_seconds
    return StageConfig(
        stage=stage,
        conditions=tuple(streams[name] for name in condition_names),
        targets=tuple(streams[name] for name in target_names),
        guided=tuple(name for name in condition_names if name in vocal),
        pattern=pattern,
        iterations=tuple(iterations or DEFAULT_ITERATIONS) if masked else (),
        window_seconds=window,
        prompt_seconds=prompt,
        transformer=transformer,
    )
