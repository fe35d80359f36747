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

**Windows.** Inputs longer than the training window are generated window by window, each continuing
the last seconds of the one before (`base.py`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.cascade.base import StageModel
from models.cascade.config import StageConfig, StepCallback
from models.cascade.patterns import (
    build_delay_pattern,
    delay_valid_mask,
    flatten_frames,
    undo_delay_pattern,
    unflatten_frames,
)
from models.cascade.sampling import Sampler, guide
from models.cascade.transformer import MultiHead, MultiStreamEmbedding, Transformer


class StageLM(StageModel):
    """The token LM of one stage (see the module docstring). Batches are dicts `stream -> [B, K, F]`."""

    patterns = ("flat", "delay")

    def __init__(self, config: StageConfig) -> None:
        super().__init__(config)
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

    def _window_steps(self, new_frames: int) -> int:
        """One step per code (flat) or per frame plus the pattern's drain (delay)."""
        if self.config.pattern == "flat":
            return new_frames * self.config.num_levels
        return new_frames + self.config.num_levels - 1
