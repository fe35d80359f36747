"""Tiny stream specs and stage models shared by the cascade tests (d_model 32, 2 layers, vocabularies <= 16)."""

from __future__ import annotations

import torch

from models.cascade import StageModel, StreamInfo, TransformerConfig, build_stage_config, build_stage_model

TINY = TransformerConfig(d_model=32, num_layers=2, num_heads=2)
#: 25 Hz semantic and 50 Hz acoustic streams, as in the default setup, with tiny vocabularies.
STREAMS = {
    "vocals.semantic": StreamInfo("vocals.semantic", 1, 8, 25.0),
    "vocals.coarse": StreamInfo("vocals.coarse", 2, 16, 50.0),
    "vocals.melody": StreamInfo("vocals.melody", 2, 12, 25.0),
    "vocals.beat": StreamInfo("vocals.beat", 1, 5, 25.0),
    "instrumental.semantic": StreamInfo("instrumental.semantic", 1, 8, 25.0),
    "instrumental.coarse": StreamInfo("instrumental.coarse", 2, 16, 50.0),
    "instrumental.fine": StreamInfo("instrumental.fine", 2, 16, 50.0),
}


def make_stage(
    stage: str,
    conditions=("vocals.semantic",),
    window_seconds: float = 0.4,
    seed: int = 0,
    *,
    pattern: str | None = None,
    iterations: tuple[int, ...] | None = None,
) -> StageModel:
    torch.manual_seed(seed)
    config = build_stage_config(
        stage,
        STREAMS,
        conditions,
        transformer=TINY,
        window_seconds=window_seconds,
        pattern=pattern,
        iterations=iterations,
    )
    return build_stage_model(config).eval()


def random_batch(stage: StageModel, batch_size: int, seconds: float, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tokens of every stream of `stage`, `seconds` long."""
    generator = torch.Generator().manual_seed(seed)
    return {
        info.name: torch.randint(
            0, info.cardinality, (batch_size, info.codebooks, round(seconds * info.frame_rate)), generator=generator
        )
        for info in stage.config.streams
    }
