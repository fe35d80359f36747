"""The parallel (masked, SoundStorm-style) stage: layout, loss, decoding, checkpoints."""

from __future__ import annotations

import pytest
import torch

from models.cascade import MaskedStageLM, SamplingConfig, StageModel, build_stage_config
from models.cascade.sampling import Sampler

from .conftest import STREAMS, TINY, make_stage, random_batch


def test_parallel_stage_config_is_masked_and_bidirectional():
    config = build_stage_config("parallel", STREAMS, ["vocals.melody"], transformer=TINY)
    assert config.pattern == "masked" and not config.transformer.causal and config.iterations
    assert [t.name for t in config.targets] == ["instrumental.coarse", "instrumental.fine"]
    assert [c.name for c in config.conditions] == ["vocals.melody", "instrumental.semantic"]
    semantic = build_stage_config("semantic", STREAMS, ["vocals.melody"], pattern="masked", iterations=(8,))
    assert semantic.iterations == (8,) and not semantic.transformer.causal
    with pytest.raises(ValueError, match="cannot use"):
        build_stage_config("delay", STREAMS, ["vocals.melody"], pattern="masked")
    assert build_stage_config("delay", STREAMS, ["vocals.melody"]).transformer.causal


def test_training_loss_is_finite_and_evaluation_is_deterministic():
    stage = make_stage("parallel", ("vocals.melody",))
    batch = random_batch(stage, 3, 0.4)
    stage.train()
    loss, scalars = stage(batch, cond_dropout=0.5)
    loss.backward()
    assert torch.isfinite(loss) and stage.heads.weight.grad is not None
    stage.eval()
    with torch.no_grad():
        first, scalars = stage(batch)
        second, _ = stage(batch)
    assert float(first) == float(second)
    assert {f"loss/level_{q}" for q in range(4)} <= set(scalars)


def _copy_task(stage: StageModel, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Level 0 of the target repeats the melody's first codebook (two frames per 25 Hz frame); every later
    level is a fixed function of the level before: a task that needs the condition and the given levels."""
    frames = round(0.4 * 50)
    melody = torch.randint(0, 12, (batch_size, 2, frames // 2), generator=generator)
    semantic = torch.randint(0, 8, (batch_size, 1, frames // 2), generator=generator)
    levels = [melody[:, 0].repeat_interleave(2, dim=-1)]
    for _ in range(3):
        levels.append((levels[-1] * 5 + 3) % 16)
    codes = torch.stack(levels, dim=1)
    return {
        "vocals.melody": melody,
        "instrumental.semantic": semantic,
        "instrumental.coarse": codes[:, :2],
        "instrumental.fine": codes[:, 2:],
    }


def test_learns_a_conditional_task_and_decodes_it_in_parallel():
    stage = make_stage("parallel", ("vocals.melody",), iterations=(4, 1)).train()
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(stage.parameters(), lr=3e-3)
    for _ in range(300):
        loss, _ = stage(_copy_task(stage, 16, generator))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    stage.eval()
    batch = _copy_task(stage, 4, generator)
    truth = stage.target_codes(batch)
    conditions = {c.name: batch[c.name] for c in stage.config.conditions}
    steps = []
    codes = stage.generate(
        conditions, truth.shape[-1], Sampler(SamplingConfig(top_k=3), [0, 1, 2, 3]), 1.0, steps.append
    )
    assert codes.shape == truth.shape
    assert (codes == truth).float().mean() > 0.95
    assert sum(steps) == stage.generation_steps(truth.shape[-1]) == 4 + 1 + 1 + 1


def test_prompt_frames_are_kept_and_takes_are_reproducible():
    stage = make_stage("parallel", ("vocals.melody",), iterations=(3, 2, 1))
    batch = random_batch(stage, 2, 0.4, seed=3)
    truth = stage.target_codes(batch)
    conditions = {c.name: batch[c.name] for c in stage.config.conditions}
    config = SamplingConfig(top_k=4, guidance_scale=2.0)
    first = stage.generate_window(conditions, truth[:, :, :6], truth.shape[-1], Sampler(config, [7, 8]), 2.0)
    again = stage.generate_window(conditions, truth[:, :, :6], truth.shape[-1], Sampler(config, [7, 8]), 2.0)
    other = stage.generate_window(conditions, truth[:, :, :6], truth.shape[-1], Sampler(config, [9, 8]), 2.0)
    assert torch.equal(first[:, :, :6], truth[:, :, :6])
    assert torch.equal(first, again) and not torch.equal(first[0], other[0])
    assert int(first.max()) < 16 and int(first.min()) >= 0  # never a MASK id


def test_long_inputs_are_generated_window_by_window():
    stage = make_stage("parallel", ("vocals.melody",), iterations=(2, 1))
    batch = random_batch(stage, 1, 1.0, seed=4)  # 2.5 windows of 0.4 s
    conditions = {c.name: batch[c.name] for c in stage.config.conditions}
    codes = stage.generate(conditions, 50, Sampler(SamplingConfig(top_k=4), [0]))
    assert codes.shape == (1, 4, 50) and len(stage.window_plan(50)) > 2


def test_masked_semantic_stage_and_checkpoint_round_trip(tmp_path):
    stage = make_stage("semantic", ("vocals.melody",), pattern="masked", iterations=(3,))
    assert isinstance(stage, MaskedStageLM) and stage.config.num_levels == 1
    stage.training_notes = {"step": 5}
    stage.save_pretrained(tmp_path / "semantic", weights_dtype=torch.float16)
    loaded = StageModel.from_pretrained(tmp_path / "semantic")
    assert isinstance(loaded, MaskedStageLM) and loaded.config == stage.config
    assert loaded.training_notes["step"] == 5
    batch = random_batch(stage, 2, 0.4, seed=5)
    conditions = {c.name: batch[c.name] for c in stage.config.conditions}
    sampler = SamplingConfig(temperature=0.0)
    expected = stage.half().float().generate(conditions, 10, Sampler(sampler, [0, 1]))
    assert torch.equal(loaded.generate(conditions, 10, Sampler(sampler, [0, 1])), expected)
