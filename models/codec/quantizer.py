"""Residual vector quantizer (SoundStream's RVQ) on top of `vector_quantize_pytorch.ResidualVQ`.

Level 1 quantizes the latent, level 2 the residual left by level 1, and so on (Zeghidour et al., 2021,
arXiv:2107.03312, Algorithm 1); the first levels therefore carry the coarse structure, which is what makes
the AudioLM coarse/fine token split meaningful. Codebooks are learnt without gradients:

* k-means initialisation on the first training batch (SoundStream §3.3; few iterations, it is slow on CPU);
* exponential-moving-average codebook updates (van den Oord et al., 2017, VQ-VAE appendix; decay 0.99);
* dead-code restarts: an entry whose EMA usage falls below `dead_code_ratio` times the mean usage is
  replaced by a random encoder output of the current batch (Dhariwal et al., 2020, Jukebox);
* a commitment loss `||z - sg(q)||^2` pulls the encoder towards its codes.

The encoder receives the plain straight-through gradient `z + sg(q - z)` (identity through the quantizer).
We compute it ourselves from the per-level codes rather than use the library's summed output, because that
lets us apply *quantizer dropout* per example (SoundStream; DAC, Kumar et al., 2023): with probability
`dropout` an example is reconstructed from only its first `n ~ U{1..K}` levels, which teaches the decoder
to work from coarse codes alone. All levels still see every example for the EMA and k-means statistics.

Inference (`quantize` / `dequantize`) is a plain nearest-neighbour search over the stored codebooks: it
never changes the codebooks (the library's forward initialises them on first use, even in eval mode) and is
identical for any split of the frames into chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from vector_quantize_pytorch import ResidualVQ


@dataclass
class QuantizerOutput:
    quantized: torch.Tensor  # [B, D, F] (straight-through: gradients reach the encoder)
    codes: torch.Tensor  # [B, K, F] int64
    commit_loss: torch.Tensor  # scalar, summed over levels
    perplexity: torch.Tensor  # [K] exp(entropy) of each level's code distribution in the batch
    usage: torch.Tensor  # [K] fraction of each codebook used in the batch
    levels_used: torch.Tensor  # [B] levels that formed each example's `quantized` (quantizer dropout)


def code_counts(codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """How often each code occurs at each level: `[B, K, F]` -> `[K, codebook_size]` int64."""
    levels = codes.shape[1]
    offsets = torch.arange(levels, device=codes.device)[None, :, None] * codebook_size
    flat = (codes + offsets).flatten()
    return torch.bincount(flat, minlength=levels * codebook_size).view(levels, codebook_size)


class ResidualQuantizer(nn.Module):
    """`[B, D, F]` latents <-> `[B, K, F]` codes with K residual levels of `codebook_size` entries each."""

    def __init__(
        self,
        *,
        dim: int,
        num_levels: int,
        codebook_size: int,
        ema_decay: float = 0.99,
        kmeans_iters: int = 4,
        dead_code_ratio: float = 0.1,
        commitment_weight: float = 1.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_levels = num_levels
        self.codebook_size = codebook_size
        self.dropout = dropout
        self.dead_code_ratio = dead_code_ratio
        self.rvq = ResidualVQ(
            dim=dim,
            num_quantizers=num_levels,
            codebook_size=codebook_size,
            decay=ema_decay,
            kmeans_init=True,
            kmeans_iters=kmeans_iters,
            # > 0 enables restarts; the actual threshold is set per batch in `forward`.
            threshold_ema_dead_code=dead_code_ratio,
            commitment_weight=commitment_weight,
            rotation_trick=False,  # plain straight-through estimator, as in SoundStream / EnCodec
        )

    @property
    def initialized(self) -> bool:
        """Whether the codebooks have been k-means initialised (by a first training-mode forward)."""
        return all(bool(layer._codebook.initted) for layer in self.rvq.layers)

    @property
    def codebooks(self) -> torch.Tensor:
        """`[K, codebook_size, D]` codebook vectors."""
        return self.rvq.codebooks

    @torch.no_grad()
    def initialize(self, latent: torch.Tensor, *, frames_per_step: int | None = None) -> None:
        """k-means-initialise every level from `[B, D, F]` latents (a no-op if already initialised).

        The EMA statistics are counts per training step, so after initialising from a batch larger than a
        training batch they are rescaled to `frames_per_step` frames: otherwise every code would look
        many times more used than it can be, and dead codes would take hundreds of steps to be restarted.
        """
        if self.initialized:
            return
        was_training = self.training
        self.train()
        self.rvq(latent.transpose(1, 2).float())
        self.train(was_training)
        if frames_per_step:
            factor = frames_per_step / (latent.shape[0] * latent.shape[2])
            for layer in self.rvq.layers:
                layer._codebook.cluster_size.mul_(factor)
                layer._codebook.embed_avg.mul_(factor)

    def _set_dead_code_threshold(self, threshold: float) -> None:
        for layer in self.rvq.layers:
            layer._codebook.threshold_ema_dead_code = threshold
            layer._codebook.reset_cluster_size = threshold

    @torch.no_grad()
    def quantize(self, latent: torch.Tensor, num_levels: int | None = None) -> torch.Tensor:
        """Nearest-neighbour RVQ: `[B, D, F]` -> `[B, K, F]` int64 codes (first `num_levels` levels)."""
        return self._search(latent, self.num_levels if num_levels is None else num_levels)[0]

    def _search(self, latent: torch.Tensor, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy residual search; returns codes `[B, levels, F]` and the summed per-level commitment MSE."""
        residual = self.rvq.project_in(latent.transpose(1, 2).float())  # [B, F, D]
        codebooks = self.codebooks.float()
        codes = []
        commit = residual.new_zeros(())
        for level in range(levels):
            book = codebooks[level]  # [C, D]
            # ||r - e||^2 = ||r||^2 - 2 r.e + ||e||^2; the ||r||^2 term does not change the argmin.
            scores = residual @ book.t() * 2 - book.pow(2).sum(-1)
            index = scores.argmax(-1)  # [B, F]
            residual = residual - book[index]
            commit = commit + residual.pow(2).mean()  # = mse(level input, its code vector)
            codes.append(index)
        return torch.stack(codes, dim=1), commit

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        """`[B, K', F]` codes (K' <= K, the first levels) -> `[B, D, F]`: the sum of their code vectors."""
        codebooks = self.codebooks
        total = torch.zeros(
            codes.shape[0], codes.shape[2], codebooks.shape[-1], dtype=codebooks.dtype, device=codes.device
        )
        for level in range(codes.shape[1]):
            total = total + codebooks[level][codes[:, level]]
        return self.rvq.project_out(total).transpose(1, 2)

    def forward(self, latent: torch.Tensor) -> QuantizerOutput:
        """Quantize `[B, D, F]` latents.

        In training mode this updates the codebooks (k-means init, EMA, dead-code restarts) and applies
        quantizer dropout; in eval mode it is deterministic and leaves the codebooks untouched.
        """
        batch = latent.shape[0]
        x = latent.transpose(1, 2)  # [B, F, D]
        levels_used = torch.full((batch,), self.num_levels, dtype=torch.long, device=latent.device)
        if self.training:
            mean_count = batch * latent.shape[-1] / self.codebook_size
            self._set_dead_code_threshold(self.dead_code_ratio * mean_count)
            _, indices, losses, level_codes = self.rvq(x.float(), return_all_codes=True)
            codes = indices.permute(0, 2, 1)  # [B, K, F]
            commit_loss = losses.sum()
            if self.dropout > 0:
                drop = torch.rand(batch, device=latent.device) < self.dropout
                random_levels = torch.randint(1, self.num_levels + 1, (batch,), device=latent.device)
                levels_used = torch.where(drop, random_levels, levels_used)
            keep = torch.arange(self.num_levels, device=latent.device)[:, None] < levels_used[None, :]
            # `level_codes` [K, B, F, D] are looked up from the (already EMA-updated) codebooks, without grad.
            target = (level_codes * keep[:, :, None, None].to(level_codes.dtype)).sum(0)
        else:
            codes, commit_loss = self._search(latent, self.num_levels)
            target = self.dequantize(codes).transpose(1, 2)
        quantized = x + (target.to(x.dtype) - x).detach()
        counts = code_counts(codes, self.codebook_size).float()  # [K, C]
        probs = counts / counts.sum(-1, keepdim=True).clamp_min(1)
        entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)
        return QuantizerOutput(
            quantized=quantized.transpose(1, 2),
            codes=codes,
            commit_loss=commit_loss,
            perplexity=entropy.exp(),
            usage=(counts > 0).float().mean(-1),
            levels_used=levels_used,
        )
