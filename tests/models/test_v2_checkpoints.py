"""The committed checkpoints a next training builds on load, fit together, and decode (no training here):
the default model's stage 2 (what `train cascade --init-from` continues) and codec_v4, whose token format it
shares (a stage 2 for codec_v4 is trained on the same layout)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.cascade import MaskedStageLM, SamplingConfig, StageModel
from models.cascade.sampling import Sampler
from models.loading import load_tokenizer

CHECKPOINTS = Path(__file__).resolve().parents[2] / "models" / "checkpoints"


@pytest.mark.parametrize("codec_dir", ["default/codec", "codec_v4"])
def test_default_parallel_stage_and_spectral_codecs_fit_together(codec_dir):
    codec = load_tokenizer(CHECKPOINTS / codec_dir)
    stage = StageModel.from_pretrained(CHECKPOINTS / "default" / "cascade" / "parallel")
    assert isinstance(stage, MaskedStageLM) and stage.config.stage == "parallel"
    assert stage.config.num_levels == codec.num_codebooks and stage.config.cardinality == codec.cardinality
    assert stage.config.target_rate == codec.frame_rate == 25.0
    assert int(stage.training_notes["step"]) > 0  # what `train cascade --init-from` continues from
    frames = 25  # one second
    conditions = {
        "vocals.melody": torch.randint(0, 25, (1, 1, frames)),
        "instrumental.semantic": torch.randint(0, 512, (1, 1, frames)),
    }
    codes = stage.generate(conditions, frames, Sampler(SamplingConfig(top_k=50), [0]))
    assert codes.shape == (1, 8, frames) and int(codes.max()) < codec.cardinality
    audio = codec.decode(codes)
    assert audio.shape == (1, 1, frames * codec.hop_length) and torch.isfinite(audio).all()
    assert float(audio.abs().max()) > 0
