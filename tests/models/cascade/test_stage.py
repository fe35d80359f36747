import pytest
import torch

from models.cascade import SamplingConfig, StageLM
from models.cascade.sampling import Sampler

from .conftest import make_stage, random_batch

STAGE_CASES = [
    ("semantic", ("vocals.semantic",)),
    ("coarse", ("vocals.semantic", "vocals.coarse")),  # SA: condition streams at 25 and 50 Hz
    ("fine", ("vocals.semantic",)),
    ("delay", ("vocals.melody",)),  # M
]


@pytest.mark.parametrize(("stage_name", "conditions"), STAGE_CASES)
def test_each_stage_overfits_one_batch(stage_name, conditions):
    stage = make_stage(stage_name, conditions).train()
    batch = random_batch(stage, 4, 0.4)
    optimizer = torch.optim.AdamW(stage.parameters(), lr=1e-2)
    first = None
    for _ in range(100):
        loss, scalars = stage(batch)
        first = first if first is not None else float(loss.detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert {"loss/ce", "loss/level_0", "metrics/accuracy"} <= set(scalars)
    assert float(loss.detach()) < 0.05 < first
    assert float(scalars["metrics/accuracy"]) == 1.0


@pytest.mark.parametrize("stage_name", ["coarse", "delay"])
def test_greedy_generation_agrees_with_the_teacher_forced_logits(stage_name):
    """Generation (prefill + KV-cache steps, prompt, delay bookkeeping) lays out the sequence as training does."""
    stage = make_stage(stage_name, ("vocals.semantic", "vocals.coarse"))
    batch = random_batch(stage, 2, 0.4, seed=1)
    target = stage.target_codes(batch)
    prompt = target[:, :, :6]
    conditions = {info.name: batch[info.name] for info in stage.config.conditions}
    greedy = SamplingConfig(temperature=0.0)
    generated = stage.generate_window(conditions, prompt, target.shape[2], Sampler(greedy, [0, 1]))
    assert generated.shape == target.shape
    assert torch.equal(generated[:, :, :6], prompt)
    split = {t.name: generated[:, i : i + t.codebooks] for i, t in zip([0, 2], stage.config.targets, strict=False)}
    with torch.no_grad():
        logits, _ = stage.teacher_forced_logits({**batch, **split})
    assert torch.equal(logits.argmax(-1)[:, :, 6:], generated[:, :, 6:])


def test_same_seed_same_take_whatever_the_batch():
    stage = make_stage("delay")
    batch = random_batch(stage, 3, 0.4, seed=2)
    conditions = {info.name: batch[info.name] for info in stage.config.conditions}
    for config in (SamplingConfig(top_k=5), SamplingConfig(top_p=0.9, guidance_scale=3.0)):
        together = stage.generate(conditions, 20, Sampler(config, [5, 6, 7]), config.guidance_scale)
        alone = stage.generate(
            {k: v[1:2] for k, v in conditions.items()}, 20, Sampler(config, [6]), config.guidance_scale
        )
        again = stage.generate(
            {k: v[1:2] for k, v in conditions.items()}, 20, Sampler(config, [6]), config.guidance_scale
        )
        other = stage.generate(
            {k: v[1:2] for k, v in conditions.items()}, 20, Sampler(config, [8]), config.guidance_scale
        )
        assert torch.equal(together[1:2], alone) and torch.equal(alone, again)
        assert not torch.equal(alone, other)


def test_guidance_scale_zero_ignores_the_condition_and_one_does_not():
    stage = make_stage("semantic")
    first = {"vocals.semantic": torch.zeros(1, 1, 10, dtype=torch.long)}
    second = {"vocals.semantic": torch.full((1, 1, 10), 7, dtype=torch.long)}
    with torch.no_grad():  # make the model depend strongly on its condition
        stage.condition_embeddings[0].table.weight.mul_(50)

    def run(conditions, scale):
        return stage.generate(conditions, 10, Sampler(SamplingConfig(temperature=0.05), [1]), scale)

    assert torch.equal(run(first, 0.0), run(second, 0.0))  # guided logits = unconditional logits
    assert not torch.equal(run(first, 1.0), run(second, 1.0))
    assert run(first, 3.0).shape == (1, 1, 10)


@pytest.mark.parametrize("stage_name", ["coarse", "delay"])
def test_long_inputs_are_generated_in_windows_continuing_the_previous_output(stage_name, monkeypatch):
    stage = make_stage(stage_name)  # 0.4 s windows = 20 frames, prompts of 10 frames
    frames = 51  # > 2 windows; not a multiple of the grid (2 frames per 25 Hz step)
    plan = stage.window_plan(frames)
    assert plan == [(0, 0, 20), (10, 20, 30), (20, 30, 40), (30, 40, 50), (32, 50, 52)]  # last: anchored at the end
    calls = []
    original = StageLM.generate_window

    def recording(self, conditions, prompt, num_frames, *args, **kwargs):
        out = original(self, conditions, prompt, num_frames, *args, **kwargs)
        calls.append((conditions, prompt.clone(), out.clone()))
        return out

    monkeypatch.setattr(StageLM, "generate_window", recording)
    batch = random_batch(stage, 2, 1.1)  # 27/55 frames at 25/50 Hz for a 52-frame span: cut to 26/52
    conditions = {info.name: batch[info.name] for info in stage.config.conditions}
    out = stage.generate(conditions, frames, Sampler(SamplingConfig(), [0, 1]))
    assert out.shape == (2, stage.config.num_levels, frames)
    assert len(calls) == len(plan)
    for (start, end, stop), (window_conditions, prompt, window) in zip(plan, calls, strict=True):
        assert window.shape[2] == stop - start
        assert window_conditions["vocals.semantic"].shape[2] == (stop - start) // 2  # 25 Hz for 50 Hz frames
        expected = batch["instrumental.semantic"][..., start // 2 : stop // 2]
        assert torch.equal(window_conditions["instrumental.semantic"], expected)
        assert prompt.shape[2] == end - start
        if end:  # the prompt is what earlier windows generated for those frames
            assert torch.equal(prompt, out[:, :, start:end])
            assert prompt.shape[2] >= stage.config.prompt_frames()
    assert stage.generation_steps(frames) > 0
