"""A parallel stage: masked token modelling over residual-VQ levels, decoded by confidence (SoundStorm).

SoundStorm (Borsos et al., 2023) replaces AudioLM's autoregressive acoustic stages with one bidirectional
model conditioned on the semantic tokens, which fills the codec's residual levels coarse to fine, each in a
few parallel passes with MaskGIT's confidence-based decoding (Chang et al., 2022). It matched AudioLM's
acoustic quality at two orders of magnitude less generation time. Here that matters twice: on 2 CPU cores
the autoregressive delay stage costs one forward pass per frame (250 per 10 s window, each over the whole
prefix), this stage ~15 passes per window; and a model that sees the whole window at once (the vocal's
future included) is what an accompaniment needs at chord changes.

**Input** per target frame `t` (all streams aligned by time; a condition at another rate is read at the
frame covering `t`): the sum of one embedding per condition stream (vocal melody, instrumental semantic
tokens; null ids for classifier-free guidance, as in `stage.py`) and one embedding per target level, of the
code or of a MASK id. A non-causal transformer (`transformer.py`, `causal=False`, rotary positions = frame
index) and one output head per level.

**Training** (per window): a level `q` is drawn uniformly; levels below it are given, level `q` is masked on
a share `cos(pi/2 u)` of its frames (`u ~ U(0, 1)`: MaskGIT's schedule), the levels above are masked
everywhere; with probability `PROMPT_PROBABILITY` a random prefix (up to half the window) is given at every
level, as when a window continues the previous one. The loss is the cross-entropy of level `q`'s masked
codes. In `eval()` mode the masks come from a fixed seed and every level is scored, so validation losses
are comparable between runs and between a song's own and another song's vocal.

**Decoding** of one window: the prompt frames are given; level 0 takes `iterations[0]` passes: each pass
samples every still-masked frame (temperature, top-k, guidance: `sampling.py`), keeps the most confident
ones (log-probability plus Gumbel noise that anneals to zero) and masks the rest again, following the
cosine schedule, so that after the last pass nothing is masked; later levels take `iterations[q]` passes
(the last entry repeats), one pass being greedy (argmax), as SoundStorm found best for fine levels.
A 1-level target (`instrumental.semantic`) makes this a MaskGIT semantic stage conditioned on the vocal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.cascade.base import StageModel
from models.cascade.config import StageConfig, StepCallback
from models.cascade.sampling import Sampler, filter_logits, guide
from models.cascade.transformer import MultiHead, MultiStreamEmbedding, Transformer

#: Share of training windows whose first frames (up to half) are given at every level, as a prompt.
PROMPT_PROBABILITY = 0.3
#: Scale of the Gumbel noise on the confidences of the first decoding pass (annealed linearly to 0).
CHOICE_TEMPERATURE = 1.0
_EVAL_SEED = 1234


class MaskedStageLM(StageModel):
    """The parallel stage (see the module docstring). Batches are dicts `stream -> [B, K, F]`."""

    patterns = ("masked",)

    def __init__(self, config: StageConfig) -> None:
        super().__init__(config)
        width = config.transformer.d_model
        levels, cardinality = config.num_levels, config.cardinality
        self.mask_id = cardinality
        # One extra row per condition codebook: the null id (= cardinality) used for guidance.
        self.condition_embeddings = nn.ModuleList(
            MultiStreamEmbedding(s.codebooks, s.cardinality, width, extra=1) for s in config.conditions
        )
        self.target_embedding = MultiStreamEmbedding(levels, cardinality, width, extra=1)  # row V = MASK
        self.transformer = Transformer(config.transformer)
        self.heads = MultiHead(levels, cardinality, width)

    # ---- inputs ------------------------------------------------------------------------------------

    def _conditions(self, conditions: Mapping[str, Tensor], null_rows: Tensor | None, frames: int) -> Tensor:
        """Condition streams -> the sum of their embeddings at each of `frames` target frames `[B, F, D]`."""
        total = None
        for info, embed in zip(self.config.conditions, self.condition_embeddings, strict=True):
            tokens = conditions[info.name].long()
            if null_rows is not None and info.name in self.config.guided:
                tokens = tokens.masked_fill(null_rows[:, None, None], info.cardinality)
            centres = (torch.arange(frames, device=tokens.device) + 0.5) * (info.frame_rate / self.config.target_rate)
            index = centres.long().clamp(max=tokens.shape[-1] - 1)
            embedded = embed(tokens[..., index])
            total = embedded if total is None else total + embedded
        if total is None:
            raise ValueError("a masked stage needs at least one condition stream")
        return total

    def _hidden(self, condition: Tensor, codes: Tensor) -> Tensor:
        """Condition embeddings `[B, F, D]` + codes with MASK ids `[B, Q, F]` -> hidden states `[B, F, D]`."""
        positions = torch.arange(codes.shape[-1], device=codes.device, dtype=torch.float32)
        return self.transformer(condition + self.target_embedding(codes), positions)

    # ---- training ----------------------------------------------------------------------------------

    def _masks(self, target: Tensor, level: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """Inputs with MASK ids `[B, Q, F]` and the scored frames `[B, F]` for training levels `level [B]`."""
        batch, levels, frames = target.shape
        device = target.device

        def uniform(*shape: int) -> Tensor:
            return torch.rand(*shape, generator=generator, device=device)

        prompt = torch.where(
            uniform(batch) < PROMPT_PROBABILITY, (uniform(batch) * (frames // 2 + 1)).long(), torch.zeros_like(level)
        )
        in_prompt = torch.arange(frames, device=device)[None, :] < prompt[:, None]  # [B, F]
        share = torch.cos(0.5 * math.pi * uniform(batch))
        count = torch.clamp((share * (frames - prompt)).ceil().long(), min=1)
        scores = uniform(batch, frames).masked_fill(in_prompt, 2.0)  # prompt frames rank last: never masked
        rank = scores.argsort(dim=1).argsort(dim=1)
        scored = rank < count[:, None]
        level_index = torch.arange(levels, device=device)[None, :, None]
        above = (level_index > level[:, None, None]) & ~in_prompt[:, None, :]
        here = (level_index == level[:, None, None]) & scored[:, None, :]
        return target.masked_fill(above | here, self.mask_id), scored

    def _level_loss(
        self, batch: Mapping[str, Tensor], level: Tensor, null_rows: Tensor | None, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor]:
        """Per-row cross-entropy and accuracy `[B]` on the masked frames of each row's `level`."""
        target = self.target_codes(batch)
        inputs, scored = self._masks(target, level, generator)
        hidden = self._hidden(self._conditions(batch, null_rows, target.shape[-1]), inputs)
        logits = torch.bmm(hidden, self.heads.weight[level].transpose(1, 2)).float()  # [B, F, V]
        truth = target.gather(1, level[:, None, None].expand(-1, 1, target.shape[-1]))[:, 0]  # [B, F]
        ce = F.cross_entropy(logits.transpose(1, 2), truth, reduction="none")
        weight = scored.float() / scored.sum(dim=1, keepdim=True)
        correct = (logits.argmax(-1) == truth).float()
        return (ce * weight).sum(dim=1), (correct * weight).sum(dim=1)

    def forward(self, batch: Mapping[str, Tensor], cond_dropout: float = 0.0) -> tuple[Tensor, dict[str, Tensor]]:
        """Masked-token cross-entropy of one batch of aligned windows -> (loss, namespaced scalars).

        Training: one random level per row. `eval()`: every level in turn, with masks from a fixed seed.
        """
        device = self.heads.weight.device
        batch_size = next(iter(batch.values())).shape[0]
        if self.training:
            null_rows = None
            if cond_dropout > 0 and self.config.guided:
                null_rows = torch.rand(batch_size, device=device) < cond_dropout
            level = torch.randint(self.config.num_levels, (batch_size,), device=device)
            ce, accuracy = self._level_loss(batch, level, null_rows, None)
            return ce.mean(), {"loss/ce": ce.mean().detach(), "metrics/accuracy": accuracy.mean()}
        generator = torch.Generator(device=device).manual_seed(_EVAL_SEED)
        scalars: dict[str, Tensor] = {}
        losses, accuracies = [], []
        for index in range(self.config.num_levels):
            level = torch.full((batch_size,), index, device=device, dtype=torch.long)
            ce, accuracy = self._level_loss(batch, level, None, generator)
            losses.append(ce.mean())
            accuracies.append(accuracy.mean())
            scalars[f"loss/level_{index}"] = losses[-1]
            scalars[f"metrics/accuracy_level_{index}"] = accuracies[-1]
        loss = torch.stack(losses).mean()
        return loss, {"loss/ce": loss, "metrics/accuracy": torch.stack(accuracies).mean(), **scalars}

    # ---- generation --------------------------------------------------------------------------------

    def passes(self, level: int) -> int:
        """Decoding passes of `level` (the config's last entry repeats for the levels after it)."""
        iterations = self.config.iterations
        return iterations[min(level, len(iterations) - 1)]

    def _window_steps(self, new_frames: int) -> int:
        return sum(self.passes(level) for level in range(self.config.num_levels)) if new_frames > 0 else 0

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
        `[B, Q, num_frames]`, decoded level by level as described in the module docstring."""
        batch_size, levels, known = prompt.shape
        if levels != self.config.num_levels or not 0 <= known < num_frames:
            raise ValueError(f"prompt [B, {levels}, {known}] for a window of {num_frames} frames")
        guided = guidance_scale != 1.0 and bool(self.config.guided)
        null_rows = None
        if guided:  # conditional rows first, then the same rows with null conditions
            conditions = {name: torch.cat([value, value]) for name, value in conditions.items()}
            null_rows = torch.arange(2 * batch_size, device=prompt.device) >= batch_size
        condition = self._conditions(conditions, null_rows, num_frames)
        codes = torch.full((batch_size, levels, num_frames), self.mask_id, dtype=torch.long, device=prompt.device)
        codes[:, :, :known] = prompt.long()
        for level in range(levels):

            def logits_of(current: Tensor, level: int = level) -> Tensor:
                rows = torch.cat([current, current]) if guided else current
                logits = F.linear(self._hidden(condition, rows)[:, known:], self.heads.weight[level]).float()
                if on_step is not None:
                    on_step(1)
                return guide(logits, guidance_scale) if guided else logits

            codes[:, level, known:] = self._decode_level(codes, level, known, logits_of, sampler)
        return codes

    def _decode_level(
        self, codes: Tensor, level: int, known: int, logits_of: Callable[[Tensor], Tensor], sampler: Sampler
    ) -> Tensor:
        """Fill frames `known:` of `level` of `codes [B, Q, F]` (MaskGIT passes) -> those frames `[B, N]`.

        `codes` is updated after every pass, so each pass sees the frames decided by the earlier ones.
        """
        passes = self.passes(level)
        if passes == 1 and level > 0:  # SoundStorm: the fine levels greedily, in one pass
            return logits_of(codes).argmax(dim=-1)
        new = codes[:, level, known:].clone()
        batch_size, count = new.shape
        masked = torch.ones(batch_size, count, dtype=torch.bool, device=codes.device)
        for step in range(passes):
            logits = logits_of(codes)
            sampled = sampler.sample(logits)  # [B, N]
            noise = -torch.log(-torch.log(sampler.uniforms(count).clamp_min(1e-20)))
            if step == passes - 1:
                new = torch.where(masked, sampled, new)
            else:
                log_probs = torch.log_softmax(filter_logits(sampler.biased(logits), sampler.config), dim=-1)
                confidence = log_probs.gather(-1, sampled[..., None])[..., 0]
                confidence = confidence + CHOICE_TEMPERATURE * (1 - (step + 1) / passes) * noise
                confidence = confidence.masked_fill(~masked, float("inf"))  # decided frames stay decided
                still_masked = min(int(count * math.cos(0.5 * math.pi * (step + 1) / passes)), count - 1)
                keep = torch.zeros_like(masked).scatter(1, confidence.topk(count - still_masked, dim=1).indices, True)
                new = torch.where(masked & keep, sampled, new)
                masked = masked & ~keep
            codes[:, level, known:] = new.masked_fill(masked, self.mask_id)
        return new
