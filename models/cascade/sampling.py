"""Sampling: temperature, top-k, nucleus (top-p), classifier-free guidance and per-row random generators.

**Reproducible takes.** Every batch row owns a `torch.Generator` seeded from its own seed, and each step
draws the same number of random numbers per row whatever else is in the batch, so a take depends only on its
seed and its input: the same vocal with the same seed gives the same accompaniment alone, in a batch of 8,
or as the 3rd of 5 takes.

Tokens are drawn with the **Gumbel-max trick** (`argmax(logits + Gumbel noise)`, one noise value per
vocabulary entry) rather than by inverse-CDF sampling, for robustness: the matrix products of a decoding
step go through different BLAS kernels for 1, 2-3 and 4+ rows, so the same row's logits differ by ~1e-5
between batch sizes. Under inverse-CDF sampling such a difference that moves one token across the top-k
threshold shifts the cumulative distribution of every later token, and a 6 s take diverged from its
batch-of-one twin about half the time (measured); under Gumbel-max a token changes only if the two best
noisy scores are within ~1e-5 of each other, which is rare (bitwise equality across batch sizes would need
batch-invariant kernels, at 2-3x the cost at batch 1).

**Classifier-free guidance** (Ho & Salimans, 2021), as used for audio by AudioGen and MusicGen (Kreuk et al.
2022; Copet et al. 2023): the model was trained with its condition randomly replaced by a learned null
pattern, so it is both conditional and unconditional. At sampling the batch is doubled (conditional rows,
then the same rows with null conditions), both halves run in one forward, and

    logits = uncond + scale * (cond - uncond)

scale 1 is the plain conditional model; larger values follow the vocal more closely at some cost in
diversity. Filtering then applies to the guided logits: temperature first, then top-k, then top-p.

**Logit bias.** A sampler may carry a per-row bias `[B, V]` added to every step's (guided) logits before
filtering: a prior from outside the model, e.g. the key of the vocal steering a harmony plan towards tokens in
that key (`pipelines/inference/plan_selection.py`), as a product of experts (Hinton, 2002) of the model and
a fixed per-row preference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

_SEED_MASK = (1 << 63) - 1


@dataclass(frozen=True)
class SamplingConfig:
    """How tokens are drawn. `top_k = 0` and `top_p = 0` disable the filters; `temperature <= 0` is greedy."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.0
    guidance_scale: float = 1.0

    def validate(self) -> None:
        if self.top_k < 0 or not 0.0 <= self.top_p <= 1.0 or self.guidance_scale < 0.0:
            raise ValueError(f"invalid sampling config {self}: need top_k >= 0, 0 <= top_p <= 1, scale >= 0")

    @property
    def guided(self) -> bool:
        return self.guidance_scale != 1.0


def guide(logits: Tensor, scale: float) -> Tensor:
    """Combine a doubled batch `[2B, ...]` (conditional rows first) into guided logits `[B, ...]`."""
    cond, uncond = logits.chunk(2, dim=0)
    return uncond + scale * (cond - uncond)


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the `k` largest logits of the last dimension (ties at the threshold are kept), -inf elsewhere."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    threshold = torch.topk(logits, k, dim=-1, sorted=False).values.amin(dim=-1, keepdim=True)  # unsorted: 5x faster
    return logits.masked_fill(logits < threshold, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Keep the smallest set of most likely tokens whose probability reaches `p` (Holtzman et al., 2020).

    The most likely token is always kept, so `p` close to 0 becomes greedy rather than empty.
    """
    if p <= 0.0 or p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs  # probability of the strictly more likely tokens
    remove_sorted = mass_before >= p
    remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def filter_logits(logits: Tensor, config: SamplingConfig) -> Tensor:
    """Temperature, then top-k, then top-p (on any `[..., V]` tensor)."""
    if config.temperature > 0 and config.temperature != 1.0:
        logits = logits / config.temperature
    return top_p_filter(top_k_filter(logits, config.top_k), config.top_p)


def row_seed(seed: int, stream: int) -> int:
    """A generator seed for sub-stream `stream` (e.g. a stage) of one take's `seed`."""
    return (int(seed) * 1_000_003 + 7919 * int(stream) + 17) & _SEED_MASK


class Sampler:
    """Draws tokens for a batch, one generator per row (see the module docstring).

    `sample(logits [B, N, V]) -> [B, N]` consumes exactly N uniforms from each row's generator.
    """

    def __init__(
        self,
        config: SamplingConfig,
        seeds: Sequence[int],
        *,
        stream: int = 0,
        device: torch.device | str = "cpu",
        logit_bias: Tensor | None = None,
    ) -> None:
        """`logit_bias [B, V]` (optional): added to row b's logits at every step (see the module docstring)."""
        config.validate()
        if logit_bias is not None and (logit_bias.ndim != 2 or logit_bias.shape[0] != len(seeds)):
            raise ValueError(f"logit_bias must be [{len(seeds)}, V], got {tuple(logit_bias.shape)}")
        self.config = config
        self.device = torch.device(device)
        self.logit_bias = None if logit_bias is None else logit_bias.to(self.device, torch.float32)
        self.generators = []
        for seed in seeds:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(row_seed(seed, stream))
            self.generators.append(generator)

    @property
    def batch_size(self) -> int:
        return len(self.generators)

    def uniforms(self, *shape: int) -> Tensor:
        """`[B, *shape]` uniforms in [0, 1), row b from generator b."""
        out = torch.empty(self.batch_size, *shape, device=self.device)
        for row, generator in zip(out, self.generators, strict=True):
            row.uniform_(generator=generator)
        return out

    def biased(self, logits: Tensor) -> Tensor:
        """`logits [B, N, V]` plus this sampler's per-row logit bias (unchanged without one)."""
        if self.logit_bias is None:
            return logits
        if logits.shape[-1] != self.logit_bias.shape[-1]:
            raise ValueError(f"logit_bias has {self.logit_bias.shape[-1]} entries, logits {logits.shape[-1]}")
        return logits.float() + self.logit_bias[:, None, :]

    def sample(self, logits: Tensor) -> Tensor:
        """`logits [B, N, V]` -> tokens `[B, N]`, N draws of V noise values from each row's generator."""
        if logits.shape[0] != self.batch_size:
            raise ValueError(f"logits for {logits.shape[0]} rows, sampler has {self.batch_size} generators")
        logits = self.biased(logits)
        noise = self.uniforms(*logits.shape[1:])  # drawn even when greedy: keeps the streams aligned
        if self.config.temperature <= 0:
            return logits.argmax(dim=-1)
        config = self.config
        if 0 < config.top_k < logits.shape[-1] and not 0.0 < config.top_p < 1.0:
            # Top-k alone: only the k candidates need noise (the same values the full path would add to them),
            # which skips the -inf fill and most of the logarithms. Differs from the full path only on exact
            # ties at the k-th logit, which the full path keeps.
            scores, candidates = torch.topk(logits.float(), config.top_k, dim=-1, sorted=False)
            if config.temperature != 1.0:
                scores = scores / config.temperature
            scores = scores + noise.gather(-1, candidates).log_().neg_().log_().neg_()
            return candidates.gather(-1, scores.argmax(dim=-1, keepdim=True)).squeeze(-1)
        gumbel = noise.log_().neg_().log_().neg_()  # -log(-log(u)); u = 0 gives -inf: that token never wins
        return (filter_logits(logits.float(), config) + gumbel).argmax(dim=-1)
