import json
from dataclasses import replace

import pytest
import torch

from models.cascade import Cascade, CascadeError, SamplingConfig, build_cascade

from .conftest import make_stage


def _cascade(acoustic: str, conditions=("vocals.semantic",)) -> Cascade:
    names = ["semantic", "coarse", "fine"] if acoustic == "cascade" else ["semantic", "delay"]
    return Cascade({name: make_stage(name, conditions, seed=i) for i, name in enumerate(names)})


def _vocal(batch_size: int, seconds: float, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {"vocals.semantic": torch.randint(0, 8, (batch_size, 1, round(seconds * 25)), generator=generator)}


@pytest.mark.parametrize("acoustic", ["cascade", "delay"])
def test_generate_returns_every_codec_level_for_a_batch_of_long_inputs(acoustic):
    cascade = _cascade(acoustic)
    assert (cascade.featurization, cascade.condition_streams, cascade.acoustic) == ("S", ["vocals.semantic"], acoustic)
    assert (cascade.num_acoustic_levels, cascade.num_coarse_levels) == (4, 2)
    assert (cascade.semantic_frame_rate, cascade.acoustic_frame_rate) == (25.0, 50.0)
    fractions = []
    frames = 61  # 1.22 s: three 0.4 s windows and more
    codes = cascade.generate(
        _vocal(2, 1.22), frames, SamplingConfig(top_k=8, guidance_scale=2.0), [3, 4], progress=fractions.append
    )
    assert codes.shape == (2, 4, frames) and codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < 16
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) > 5


def test_stream_specs_describe_every_stream_the_stages_use():
    specs = _cascade("cascade", ("vocals.semantic", "vocals.coarse")).stream_specs()
    assert set(specs) == {
        "vocals.semantic",
        "vocals.coarse",
        "instrumental.semantic",
        "instrumental.coarse",
        "instrumental.fine",
    }
    assert specs["vocals.coarse"] == {"codebooks": 2, "cardinality": 16, "frame_rate": 50.0}


def test_save_and_load_round_trip_gives_identical_generation(tmp_path):
    cascade = _cascade("delay")
    cascade.save_pretrained(tmp_path / "model")
    loaded = Cascade.from_pretrained(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "cascade.json").read_text())["stages"] == ["delay", "semantic"]
    vocal, sampling = _vocal(2, 0.6), SamplingConfig(temperature=0.9, top_p=0.95)
    assert torch.equal(cascade.generate(vocal, 30, sampling, [1, 2]), loaded.generate(vocal, 30, sampling, [1, 2]))


def test_half_precision_storage_halves_the_files_and_loads_as_float32(tmp_path):
    from safetensors import safe_open

    cascade = _cascade("delay")
    cascade.save_pretrained(tmp_path / "full")
    cascade.save_pretrained(tmp_path / "half", weights_dtype=torch.float16)
    full_size = (tmp_path / "full" / "delay" / "model.safetensors").stat().st_size
    half_size = (tmp_path / "half" / "delay" / "model.safetensors").stat().st_size
    assert half_size < 0.55 * full_size
    with safe_open(tmp_path / "half" / "delay" / "model.safetensors", "pt") as stored:
        assert {stored.get_tensor(k).dtype for k in stored.keys()} == {torch.float16}  # noqa: SIM118
    loaded = Cascade.from_pretrained(tmp_path / "half")
    for name, stage in loaded.stages.items():
        for key, value in stage.state_dict().items():
            original = cascade.stages[name].state_dict()[key]
            assert value.dtype == torch.float32
            assert torch.equal(value, original.half().float())  # exactly the rounded weights, nothing else
    codes = loaded.generate(_vocal(1, 0.6), 30, SamplingConfig(top_k=8), [1])
    assert codes.shape == (1, 4, 30)


def test_build_cascade_assembles_run_directories(tmp_path):
    for i, name in enumerate(["semantic", "coarse", "fine", "delay"]):
        make_stage(name, seed=i).save_pretrained(tmp_path / f"run_{name}" / "model", extra={"step": 7})
    runs = {name: tmp_path / f"run_{name}" for name in ["semantic", "coarse", "fine", "delay"]}
    both = build_cascade(tmp_path / "both", **runs, featurization="S")
    assert both.acoustic == "delay"  # the fast back-end is the default when both are present
    assert Cascade.from_pretrained(tmp_path / "both", acoustic="cascade").acoustic == "cascade"
    with pytest.raises(CascadeError, match="featurisation"):
        build_cascade(tmp_path / "x", semantic=runs["semantic"], delay=runs["delay"], featurization="SA")
    with pytest.raises(CascadeError, match="is a 'fine' stage"):
        build_cascade(tmp_path / "x", semantic=runs["semantic"], coarse=runs["fine"], fine=runs["fine"])


def test_a_later_stage_may_read_fewer_vocal_streams_than_the_semantic_stage():
    """Featurisation MB: the semantic stage reads melody + beat, the parallel stage the melody alone."""
    semantic = make_stage("semantic", ("vocals.melody", "vocals.beat"))
    parallel = make_stage("parallel", ("vocals.melody",), seed=1)
    cascade = Cascade({"semantic": semantic, "parallel": parallel})
    assert (cascade.condition_streams, cascade.featurization) == (["vocals.melody", "vocals.beat"], "MB")
    generator = torch.Generator().manual_seed(0)
    vocal = {
        "vocals.melody": torch.randint(0, 12, (1, 2, 15), generator=generator),
        "vocals.beat": torch.randint(0, 5, (1, 1, 15), generator=generator),
    }
    assert cascade.generate(vocal, 30, SamplingConfig(top_k=8), [0]).shape == (1, 4, 30)
    with pytest.raises(CascadeError, match=r"missing condition stream 'vocals\.beat'"):
        cascade.generate({"vocals.melody": vocal["vocals.melody"]}, 30, SamplingConfig(), [0])


def test_inconsistent_stages_and_bad_conditions_are_refused():
    unguided = make_stage("delay", ("vocals.semantic",))
    unguided.config = replace(unguided.config, guided=())
    with pytest.raises(CascadeError, match="guidance on all of them"):
        Cascade({"semantic": make_stage("semantic"), "delay": unguided})
    cascade = _cascade("delay")
    with pytest.raises(CascadeError, match="missing condition"):
        cascade.generate({"vocals.coarse": torch.zeros(1, 2, 5, dtype=torch.long)}, 10, SamplingConfig(), [0])
    with pytest.raises(CascadeError, match="expected"):
        cascade.generate(_vocal(2, 0.4), 10, SamplingConfig(), [0])  # two rows, one seed
    with pytest.raises(CascadeError, match="lie in"):
        cascade.generate({"vocals.semantic": torch.full((1, 1, 5), 8)}, 10, SamplingConfig(), [0])


def test_plan_candidates_render_the_plan_the_scorer_prefers(monkeypatch):
    """Best-of-N plans: candidate 0 is the single-sample plan; the acoustic stage gets each row's best."""
    cascade, vocal, sampling = _cascade("delay"), _vocal(2, 0.6), SamplingConfig(top_k=8)
    single = cascade.generate(vocal, 30, sampling, [5, 6])
    seen: dict[str, torch.Tensor] = {}

    def scorer(conditions, plans):  # prefer the last candidate of every row
        seen["plans"], seen["vocal"] = plans, conditions["vocals.semantic"]
        return torch.arange(len(plans), dtype=torch.float64)

    rendered = cascade.stages["delay"].generate

    def spy(conditions, *args, **kwargs):
        seen["rendered"] = conditions["instrumental.semantic"]
        return rendered(conditions, *args, **kwargs)

    monkeypatch.setattr(cascade.stages["delay"], "generate", spy)
    ties = cascade.generate(
        vocal, 30, sampling, [5, 6], plan_candidates=3, plan_scorer=lambda c, p: torch.zeros(len(p))
    )
    assert torch.equal(ties, single)  # all tied: candidate 0, the plan a single sample gives
    best = cascade.generate(vocal, 30, sampling, [5, 6], plan_candidates=3, plan_scorer=scorer)
    plans = seen["plans"]
    assert plans.shape[0] == 6 and torch.equal(seen["vocal"], vocal["vocals.semantic"].repeat(3, 1, 1))
    assert not torch.equal(plans[:2], plans[4:])  # candidates differ
    assert torch.equal(seen["rendered"], plans[4:])  # rows 4, 5 = candidate 2 of rows 0, 1
    assert not torch.equal(best, single)
    with pytest.raises(CascadeError, match="at least 1"):
        cascade.generate(vocal, 30, sampling, [5, 6], plan_candidates=0, plan_scorer=scorer)


@pytest.mark.parametrize("pattern", [None, "masked"])
def test_a_plan_prior_biases_the_semantic_tokens_of_every_row(pattern):
    """`plan_prior`: a per-row logit bias on the plan (e.g. the vocal's key); alone and with candidates."""
    stages = {"semantic": make_stage("semantic", pattern=pattern, iterations=(3,) if pattern else None)}
    cascade = Cascade({**stages, "delay": make_stage("delay", seed=1)})
    vocal, sampling = _vocal(2, 0.6), SamplingConfig(top_k=8)
    seen = []

    def prior(conditions):  # row r of the batch prefers token 2 + 3 r (rows of candidates repeat the vocal)
        seen.append(conditions["vocals.semantic"].shape[0])
        bias = torch.zeros(len(conditions["vocals.semantic"]), 8)
        bias[torch.arange(len(bias)), 2 + 3 * (torch.arange(len(bias)) % 2)] = 50.0
        return bias

    plans = {}
    monkey = cascade.stages["delay"].generate

    def spy(conditions, *args, **kwargs):
        plans["rendered"] = conditions["instrumental.semantic"]
        return monkey(conditions, *args, **kwargs)

    cascade.stages["delay"].generate = spy
    cascade.generate(vocal, 30, sampling, [5, 6], plan_prior=prior)
    assert (plans["rendered"][0] == 2).all() and (plans["rendered"][1] == 5).all()
    cascade.generate(
        vocal,
        30,
        sampling,
        [5, 6],
        plan_prior=prior,
        plan_candidates=3,
        plan_scorer=lambda c, p: -p.sum((1, 2)).double(),
    )
    assert seen == [2, 6] and (plans["rendered"][0] == 2).all() and (plans["rendered"][1] == 5).all()


def test_decodes_in_parallel_only_when_no_stage_decodes_token_by_token():
    """The engine picks generation threads by this: masked passes use both cores, token-by-token steps one."""
    masked = make_stage("semantic", pattern="masked", iterations=(2,))
    assert Cascade({"semantic": masked, "parallel": make_stage("parallel", seed=1)}).decodes_in_parallel
    assert not Cascade({"semantic": masked, "delay": make_stage("delay", seed=1)}).decodes_in_parallel
    assert not _cascade("cascade").decodes_in_parallel
