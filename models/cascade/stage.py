"""One stage of the cascade: a decoder-only token LM whose condition is a prefix (AudioLM, Borsos et al. 2022).

SingSong (Donahue et al., 2023) generates an instrumental from a vocal in AudioLM's stages; every stage here
is the same network (`transformer.py`) with its own embeddings, heads and sequence layout:

    stage      condition prefix                                 target (layout)
    semantic   vocal streams                                    instrumental.semantic (flat, 1 level)
    coarse     vocal streams, instrumental.semantic             instrumental.coarse (flattened levels)
    fine       instrumental.coarse                              instrumental.fine (flattened levels)
    delay      vocal streams, instrumental.semantic             coarse + fine levels (MusicGen delay pattern)

"vocal streams" is the featurisation: `S` = vocal semantic tokens, `SA` = + the vocal's coarse acoustic
tokens, `M` = a melodic bottleneck (pitch class + onset tokens).

**Sequence** (one row): `[cond_1 frames][cond_2 frames]...[BOS][target inputs]`, every prefix frame being
the sum of its codebooks' embeddings plus a learned segment embedding. A condition stream at 25 Hz and
one at 50 Hz each keep their own rate: alignment comes from the rotary positions, which are *times*
(frames of the fastest stream of the stage), so condition frame `i` of a 25 Hz stream sits at position
`2 i`, next to acoustic frame `2 i` of the target. The decoder is fully causal (the prefix is processed
in one parallel pass when generating, then cached). The delay stage uses the same prefix rather than adding
the upsampled condition to each frame's embedding: every frame then sees the whole window's vocal and
instrumental semantic plan, future included (what a chord change or a fill needs), at the price of a KV
cache twice as long (cheap at these sizes; grouped-query attention halves it again).

**Condition dropout / guidance.** With probability `cond_dropout` per training example, every token of the
`guided` condition streams (the vocal streams) becomes that stream's learned null id, keeping the length:
the unconditional pattern is then a prefix of nulls at the same positions, so conditional and unconditional
rows batch together for classifier-free guidance (`sampling.py`). The fine stage has no vocal condition and
ignores the guidance scale.

**Windows.** A stage trains on windows of `window_seconds`. Longer inputs are generated window by window:
each new window is teacher-forced with the last `prompt_seconds` (or more, for the final window, which is
anchored at the end so that it is full length) of what was already generated, as AudioLM continues audio,
and only the rest is sampled. There is no seam and the output has exactly the requested length.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.cascade.patterns import (
    build_delay_pattern,
    delay_valid_mask,
    fit_length,
    flatten_frames,
    frames_per_step,
    grid_rate,
    undo_delay_pattern,
    unflatten_frames,
)
from models.cascade.sampling import Sampler, guide
from models.cascade.transformer import MultiHead, MultiStreamEmbedding, Transformer, TransformerConfig
from models.checkpoint import load_checkpoint, save_checkpoint

CHECKPOINT_KIND = "cascade_stage"
STAGES = ("semantic", "coarse", "fine", "delay")
FEATURIZATIONS: dict[str, tuple[str, ...]] = {
    "S": ("vocals.semantic",),
    "SA": ("vocals.semantic", "vocals.coarse"),
    "M": ("vocals.melody",),
}
#: (window, prompt) seconds per stage: AudioLM uses short windows for the fine stage.
DEFAULT_WINDOWS: dict[str, tuple[float, float]] = {
    "semantic": (10.0, 5.0),
    "coarse": (10.0, 5.0),
    "fine": (3.0, 1.0),
    "delay": (10.0, 5.0),
}
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
    pattern: str = "flat"  # "flat" (AudioLM flattening) or "delay" (MusicGen)
    window_seconds: float = 10.0
    prompt_seconds: float = 5.0
    transformer: TransformerConfig = field(default_factory=TransformerConfig)

    def __post_init__(self) -> None:
        if self.stage not in STAGES or self.pattern not in ("flat", "delay"):
            raise ValueError(f"unknown stage {self.stage!r} or pattern {self.pattern!r}")
        if not self.targets or len({(t.frame_rate, t.cardinality) for t in self.targets}) != 1:
            raise ValueError("target streams must share frame rate and cardinality")
        if not set(self.guided) <= {c.name for c in self.conditions}:
            raise ValueError("guided streams must be condition streams")
        if not 0.0 <= self.prompt_seconds < self.window_seconds:
            raise ValueError("need 0 <= prompt_seconds < window_seconds")

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
) -> StageConfig:
    """The config of `stage` conditioned on the vocal `condition_streams`, with stream specs from `streams`."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose from {', '.join(STAGES)}")
    vocal = tuple(condition_streams)
    condition_names, target_names = {
        "semantic": (vocal, ("instrumental.semantic",)),
        "coarse": ((*vocal, "instrumental.semantic"), ("instrumental.coarse",)),
        "fine": (("instrumental.coarse",), ("instrumental.fine",)),
        "delay": ((*vocal, "instrumental.semantic"), ("instrumental.coarse", "instrumental.fine")),
    }[stage]
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
        pattern="delay" if stage == "delay" else "flat",
        window_seconds=window,
        prompt_seconds=prompt,
        transformer=transformer or TransformerConfig(),
    )


class StageLM(nn.Module):
    """The token LM of one stage (see the module docstring). Batches are dicts `stream -> [B, K, F]`."""

    def __init__(self, config: StageConfig) -> None:
        super().__init__()
        self.config = config
        width = config.transformer.d_model
        levels, cardinality = config.num_levels, config.cardinality
        # One extra row per condition codebook: the null id (= cardinality) used for guidance.
        self.condition_embeddings = nn.ModuleList(
            MultiStreamEmbedding(s.codebooks, s.cardinality, width, extra=1) for s in config.conditions
        )
        self.segments = nn.Parameter(torch.randn(len(config.conditions) + 1, width) * 0.02)
        if config.pattern == "flat":  # one token per position: row `level * V + code`, last row is BOS
            self.target_embedding: nn.Module = nn.Embedding(levels * cardinality + 1, width)
            nn.init.normal_(self.target_embedding.weight, std=0.02)
        else:  # one frame per position: ids V ("empty" slot of the pattern) and V + 1 (BOS)
            self.target_embedding = MultiStreamEmbedding(levels, cardinality, width, extra=2)
        self.transformer = Transformer(config.transformer)
        self.heads = MultiHead(levels, cardinality, width)
        self.training_notes: dict[str, Any] = {}  # the checkpoint's `extra`: steps, options, condition noise

    # ---- sequence assembly --------------------------------------------------------------------------

    def _position_step(self, rate: float) -> float:
        return self.config.position_rate / rate

    def _prefix(self, conditions: Mapping[str, Tensor], null_rows: Tensor | None) -> tuple[Tensor, Tensor]:
        """Condition segments -> embeddings `[B, P, D]` and positions `[P]`."""
        parts, positions = [], []
        for index, (info, embed) in enumerate(zip(self.config.conditions, self.condition_embeddings, strict=True)):
            tokens = conditions[info.name].long()
            if null_rows is not None and info.name in self.config.guided:
                tokens = tokens.masked_fill(null_rows[:, None, None], info.cardinality)
            parts.append(embed(tokens) + self.segments[index])
            frames = torch.arange(tokens.shape[-1], device=tokens.device, dtype=torch.float32)
            positions.append(frames * self._position_step(info.frame_rate))
        return torch.cat(parts, dim=1), torch.cat(positions)

    def _target_positions(self, count: int, device: torch.device) -> Tensor:
        """Positions of the target inputs `[BOS, x_0, x_1, ...]` (`count` of them): each input sits at the time
        of the frame it carries, BOS one frame before the window."""
        steps = torch.arange(count, device=device, dtype=torch.float32) - 1
        if self.config.pattern == "flat":
            levels = self.config.num_levels
            steps = torch.cat([steps[:1], torch.div(steps[1:], levels, rounding_mode="floor")])
        return steps * self._position_step(self.config.target_rate)

    def _embed_flat(self, tokens: Tensor, levels: Tensor) -> Tensor:
        """Flat target inputs `[B, N]` at levels `[N]` (-1 = BOS) -> `[B, N, D]`."""
        cardinality = self.config.cardinality
        ids = torch.where(levels >= 0, levels * cardinality + tokens, self.config.num_levels * cardinality)
        return self.target_embedding(ids) + self.segments[-1]

    def _embed_frames(self, frames: Tensor) -> Tensor:
        """Delay-pattern inputs `[B, K, S]` -> `[B, S, D]`."""
        return self.target_embedding(frames) + self.segments[-1]

    def target_codes(self, batch: Mapping[str, Tensor]) -> Tensor:
        return torch.cat([batch[t.name].long() for t in self.config.targets], dim=1)

    # ---- training ----------------------------------------------------------------------------------

    def teacher_forced_logits(
        self, batch: Mapping[str, Tensor], null_rows: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Logits `[B, Q, F, V]` of every target code given all earlier ones, and the targets `[B, Q, F]`.

        `null_rows [B]` (bool) marks rows whose guided conditions are replaced by nulls.
        """
        target = self.target_codes(batch)  # [B, Q, F]
        levels, frames = target.shape[1:]
        prefix, prefix_positions = self._prefix(batch, null_rows)
        if self.config.pattern == "flat":
            flat = flatten_frames(target)  # [B, F * Q]
            level_of = torch.arange(flat.shape[1], device=flat.device) % levels
            bos = torch.full_like(level_of[:1], -1)
            inputs = self._embed_flat(torch.cat([flat[:, :1], flat[:, :-1]], dim=1), torch.cat([bos, level_of[:-1]]))
        else:
            delayed = build_delay_pattern(target, empty=self.config.cardinality)  # [B, Q, F + Q - 1]
            bos = torch.full_like(delayed[:, :, :1], self.config.cardinality + 1)
            inputs = self._embed_frames(torch.cat([bos, delayed[:, :, :-1]], dim=2))
        positions = torch.cat([prefix_positions, self._target_positions(inputs.shape[1], target.device)])
        hidden = self.transformer(torch.cat([prefix, inputs], dim=1), positions)[:, prefix.shape[1] :]
        if self.config.pattern == "flat":  # position j predicts flat code j, of level j % Q
            logits = torch.stack([self.heads(hidden[:, level::levels], level) for level in range(levels)], dim=1)
        else:  # slot (k, s) of the pattern holds frame s - k of level k
            slots = self.heads(hidden)  # [B, Q, F + Q - 1, V]
            logits = torch.stack([slots[:, level, level : level + frames] for level in range(levels)], dim=1)
        return logits.float(), target

    def forward(self, batch: Mapping[str, Tensor], cond_dropout: float = 0.0) -> tuple[Tensor, dict[str, Tensor]]:
        """Teacher-forced cross-entropy of one batch of aligned windows -> (loss, namespaced scalars).

        Every level weighs the same; `cond_dropout` is the probability of training a row unconditionally.
        """
        null_rows = None
        if cond_dropout > 0 and self.config.guided:
            batch_size = next(iter(batch.values())).shape[0]
            null_rows = torch.rand(batch_size, device=self.segments.device) < cond_dropout
        logits, target = self.teacher_forced_logits(batch, null_rows)
        losses = F.cross_entropy(logits.permute(0, 3, 1, 2), target, reduction="none").mean(dim=(0, 2))  # [Q]
        correct = (logits.argmax(-1) == target).float().mean(dim=(0, 2))
        loss = losses.mean()
        scalars = {"loss/ce": loss.detach(), "metrics/accuracy": correct.mean()}
        for level in range(losses.shape[0]):
            scalars[f"loss/level_{level}"] = losses[level].detach()
            scalars[f"metrics/accuracy_level_{level}"] = correct[level]
        return loss, scalars

    # ---- generation --------------------------------------------------------------------------------

    @torch.inference_mode()
    def generate_window(
        self,
        conditions: Mapping[str, Tensor],
        prompt: Tensor,
        num_frames: int,
        sampler: Sampler,
        guidance_scale: float = 1.0,
        on_step: StepCallback | None = None,
    ) -> Tensor:
        """One window: condition slices `[B, K_s, F_s]`, the known first frames `prompt [B, Q, P]` ->
        `[B, Q, num_frames]` (the prompt, then `num_frames - P` sampled frames)."""
        batch_size, levels, known = prompt.shape
        if levels != self.config.num_levels or not 0 <= known < num_frames:
            raise ValueError(f"prompt [B, {levels}, {known}] for a window of {num_frames} frames")
        guided = guidance_scale != 1.0 and bool(self.config.guided)
        rows = 2 * batch_size if guided else batch_size
        if guided:  # conditional rows first, then the same rows with null conditions
            conditions = {name: torch.cat([value, value]) for name, value in conditions.items()}
            null_rows = torch.arange(rows, device=prompt.device) >= batch_size
        else:
            null_rows = None
        prefix, prefix_positions = self._prefix(conditions, null_rows)
        prompt = prompt.long()
        if self.config.pattern == "flat":
            return self._generate_flat(
                prefix, prefix_positions, prompt, num_frames, sampler, guidance_scale if guided else None, on_step
            )
        return self._generate_delay(
            prefix, prefix_positions, prompt, num_frames, sampler, guidance_scale if guided else None, on_step
        )

    def _logits(self, hidden: Tensor, head: int | None, scale: float | None) -> Tensor:
        logits = self.heads(hidden, head).float()
        return guide(logits, scale) if scale is not None else logits

    def _generate_flat(
        self,
        prefix: Tensor,
        prefix_positions: Tensor,
        prompt: Tensor,
        num_frames: int,
        sampler: Sampler,
        scale: float | None,
        on_step: StepCallback | None,
    ) -> Tensor:
        batch_size, levels, known_frames = prompt.shape
        total, known = num_frames * levels, known_frames * levels
        device = prompt.device
        out = torch.empty(batch_size, total, dtype=torch.long, device=device)
        out[:, :known] = flatten_frames(prompt)
        level_of = torch.arange(total, device=device) % levels
        rotation = self.transformer.rotary(torch.cat([prefix_positions, self._target_positions(total, device)]))
        start = prefix.shape[1]
        bos = torch.full_like(level_of[:1], -1)
        tokens = torch.cat([out[:, :1], out[:, :known]], dim=1)  # the first slot is replaced by BOS
        inputs = self._embed_flat(tokens, torch.cat([bos, level_of[:known]]))
        if scale is not None:
            inputs = torch.cat([inputs, inputs])
        cache = self.transformer.new_cache(prefix.shape[0], start + total)
        hidden = self.transformer(
            torch.cat([prefix, inputs], dim=1), cache=cache, rotation=rotation[: start + known + 1]
        )[:, -1:]
        for index in range(known, total):
            level = index % levels
            token = sampler.sample(self._logits(hidden, level, scale))[:, 0]  # [B]
            out[:, index] = token
            if on_step is not None:
                on_step(1)
            if index + 1 < total:
                step_input = self._embed_flat(token[:, None], level_of[index : index + 1])
                if scale is not None:
                    step_input = torch.cat([step_input, step_input])
                position = start + index + 1
                hidden = self.transformer.step(step_input, cache, rotation[position : position + 1])
        return unflatten_frames(out, levels)

    def _generate_delay(
        self,
        prefix: Tensor,
        prefix_positions: Tensor,
        prompt: Tensor,
        num_frames: int,
        sampler: Sampler,
        scale: float | None,
        on_step: StepCallback | None,
    ) -> Tensor:
        batch_size, levels, known = prompt.shape
        cardinality, steps, device = self.config.cardinality, num_frames + levels - 1, prompt.device
        padded = torch.zeros(batch_size, levels, num_frames, dtype=torch.long, device=device)
        padded[:, :, :known] = prompt
        delayed = build_delay_pattern(padded, empty=cardinality)  # prompt slots filled, the rest sampled below
        frame_of = torch.arange(steps, device=device)[None, :] - torch.arange(levels, device=device)[:, None]
        sample_here = (frame_of >= known) & delay_valid_mask(levels, num_frames, device)  # [Q, S]
        bos = torch.full_like(delayed[:, :, :1], cardinality + 1)
        inputs = self._embed_frames(torch.cat([bos, delayed[:, :, :known]], dim=2))
        if scale is not None:
            inputs = torch.cat([inputs, inputs])
        rotation = self.transformer.rotary(torch.cat([prefix_positions, self._target_positions(steps, device)]))
        start = prefix.shape[1]
        cache = self.transformer.new_cache(prefix.shape[0], start + steps)
        hidden = self.transformer(
            torch.cat([prefix, inputs], dim=1), cache=cache, rotation=rotation[: start + known + 1]
        )[:, -1:]
        for step in range(known, steps):
            tokens = sampler.sample(self._logits(hidden, None, scale)[:, :, 0])  # [B, Q]
            delayed[:, :, step] = torch.where(sample_here[:, step], tokens, delayed[:, :, step])
            if on_step is not None:
                on_step(1)
            if step + 1 < steps:
                step_input = self._embed_frames(delayed[:, :, step : step + 1])
                if scale is not None:
                    step_input = torch.cat([step_input, step_input])
                position = start + step + 1
                hidden = self.transformer.step(step_input, cache, rotation[position : position + 1])
        return undo_delay_pattern(delayed)

    def generation_steps(self, num_frames: int) -> int:
        """Sampling steps `generate` will take for `num_frames` target frames (for progress reporting)."""
        plan = self.window_plan(num_frames)
        per_frame = self.config.num_levels if self.config.pattern == "flat" else 1
        drain = 0 if self.config.pattern == "flat" else self.config.num_levels - 1
        return sum((stop - end) * per_frame + drain for _, end, stop in plan)

    def window_plan(self, num_frames: int) -> list[tuple[int, int, int]]:
        """Windows `(start, generated_before, stop)` covering `num_frames` (rounded up to the grid): frames
        `[start, generated_before)` are the prompt, `[generated_before, stop)` are sampled."""
        grid = self.config.grid_frames
        total = math.ceil(num_frames / grid) * grid
        window, prompt = self.config.window_frames(), self.config.prompt_frames()
        plan, end = [], 0
        while end < total:
            start = 0 if end == 0 else max(0, min(end - prompt, total - window))
            stop = min(start + window, total)
            plan.append((start, end, stop))
            end = stop
        return plan

    @torch.inference_mode()
    def generate(
        self,
        conditions: Mapping[str, Tensor],
        num_frames: int,
        sampler: Sampler,
        guidance_scale: float = 1.0,
        on_step: StepCallback | None = None,
    ) -> Tensor:
        """Condition streams `[B, K_s, F_s]` (any length: cut or extended to the span) -> `[B, Q, num_frames]`,
        generated window by window as described in the module docstring."""
        plan = self.window_plan(num_frames)
        total = plan[-1][2]
        fitted = {}
        for info in self.config.conditions:  # condition frames per target frame, e.g. 0.5 for 25 Hz vs 50 Hz
            per = info.frame_rate / self.config.target_rate
            fitted[info.name] = (fit_length(conditions[info.name], round(total * per)), per)
        batch_size = sampler.batch_size
        device = self.heads.weight.device
        out = torch.zeros(batch_size, self.config.num_levels, total, dtype=torch.long, device=device)
        for start, end, stop in plan:
            window = {
                name: tokens[..., round(start * per) : round(stop * per)].to(device)
                for name, (tokens, per) in fitted.items()
            }
            out[:, :, start:stop] = self.generate_window(
                window, out[:, :, start:end], stop - start, sampler, guidance_scale, on_step
            )
        return out[:, :, :num_frames]

    # ---- checkpoints -------------------------------------------------------------------------------

    def save_pretrained(
        self, directory: str | Path, *, extra: dict[str, Any] | None = None, weights_dtype: torch.dtype | None = None
    ) -> Path:
        """Write a `cascade_stage` checkpoint; `extra` defaults to the notes the stage was loaded with.

        `weights_dtype` (e.g. `torch.float16`) stores floating-point weights at that precision, half the
        bytes for a shipped model; loading casts them back to the model's dtype.
        """
        notes = self.training_notes if extra is None else extra
        tensors = self.state_dict()
        if weights_dtype is not None:
            tensors = {k: v.to(weights_dtype) if v.is_floating_point() else v for k, v in tensors.items()}
        return save_checkpoint(
            directory, kind=CHECKPOINT_KIND, config=self.config.to_dict(), tensors=tensors, extra=notes
        )

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str | torch.device = "cpu") -> StageLM:
        checkpoint = load_checkpoint(directory, kind=CHECKPOINT_KIND, device=str(device))
        model = cls(StageConfig.from_dict(checkpoint.config))
        model.load_state_dict(checkpoint.tensors)
        model.training_notes = dict(checkpoint.extra)
        return model.to(device).eval()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
