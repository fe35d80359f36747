"""`singsong train cascade` on a tiny token cache written by the real cache writer (clock-like stub tokenizers)."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch

from core.errors import SingsongError
from models.cascade import Cascade, SamplingConfig, build_stage_config
from models.checkpoint import has_training_state, load_checkpoint
from models.tokenizer import AudioTokenizer
from pipelines.evaluation import cascade as cascade_eval
from pipelines.inference import assemble
from pipelines.tokens.cache import TokenCacheWriter, build_token_cache, default_streams, pair_sources
from pipelines.tokens.reader import TokenCache
from pipelines.training import cascade as cascade_training
from pipelines.training.cascade import CascadeTrainOptions, train_cascade
from pipelines.training.cascade_data import WindowSampler, cache_streams

RATE = 8000
OFFSET = 10  # the instrumental's tokens are the vocal's + OFFSET


class ClockTokenizer(AudioTokenizer):
    """Tokens are quantised frame means of the input. The test audio is a ramp of 0.25/s, so token j of a
    25 Hz stream is j and tokens 2j, 2j+1 of a 50 Hz stream are j: misaligned windows are easy to see."""

    def __init__(self, frame_rate: float, num_codebooks: int) -> None:
        self._frame_rate, self._codebooks = frame_rate, num_codebooks

    sample_rate = property(lambda self: RATE)
    channels = property(lambda self: 1)
    frame_rate = property(lambda self: self._frame_rate)
    num_codebooks = property(lambda self: self._codebooks)
    cardinality = property(lambda self: 128)

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        hop = round(RATE / self._frame_rate)
        frames = math.ceil(wav.shape[-1] / hop)
        padded = torch.nn.functional.pad(wav.mean(1), (0, frames * hop - wav.shape[-1]), mode="replicate")
        base = (padded.view(wav.shape[0], frames, hop).mean(-1) * 100).floor().long().clamp(0, 127)
        return torch.stack([(base + 3 * level) % 128 for level in range(self._codebooks)], dim=1)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cascade_cache")
    lines = []
    for i, (seconds, split) in enumerate([(2.0, "train"), (2.4, "train"), (3.0, "train"), (2.0, "valid")]):
        t = np.arange(int(seconds * RATE)) / RATE
        sf.write(root / f"v{i}.wav", (0.25 * t).astype(np.float32), RATE, subtype="FLOAT")
        sf.write(root / f"i{i}.wav", (0.25 * t + OFFSET / 100).astype(np.float32), RATE, subtype="FLOAT")
        lines.append({"id": f"item{i}", "split": split, "vocals": f"v{i}.wav", "instrumental": f"i{i}.wav"})
    (root / "pairs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    writer = TokenCacheWriter(
        root / "cache",
        semantic=ClockTokenizer(25.0, 1),
        codec=ClockTokenizer(50.0, 3),
        streams=default_streams(num_coarse_levels=1),
        fingerprints={"stub": 1},
    )
    build_token_cache(writer, pair_sources(root / "pairs.jsonl"), progress=False)
    return root / "cache"


def options(cache_dir, out, **overrides) -> CascadeTrainOptions:
    base = CascadeTrainOptions(
        stage="semantic",
        cache=cache_dir,
        out=out,
        d_model=32,
        layers=2,
        heads=2,
        window_seconds=1.0,
        batch_size=4,
        steps=6,
        lr=3e-3,
        warmup=2,
        log_every=2,
        valid_every=3,
        valid_batches=2,
        save_every=4,
        threads=1,
        progress=False,
    )
    return replace(base, **overrides)


def test_windows_are_aligned_across_streams_and_noise_reads_the_noisy_twin(cache_dir):
    cache = TokenCache(cache_dir)
    config = build_stage_config("coarse", cache_streams(cache), ["vocals.semantic"], window_seconds=1.0)
    clean = WindowSampler(cache, config, "train", noise_prob=0.0, short_window_prob=0.5)
    noisy = WindowSampler(cache, config, "train", noise_prob=1.0, short_window_prob=0.5)
    lengths = set()
    for seed in range(6):
        batch = clean.batch(3, np.random.default_rng(seed))
        semantic, coarse = batch["vocals.semantic"][:, 0], batch["instrumental.coarse"][:, 0]
        lengths.add(semantic.shape[1])
        assert coarse.shape[1] == 2 * semantic.shape[1]
        assert torch.equal(coarse[:, 0::2] - OFFSET, semantic) and torch.equal(coarse[:, 1::2] - OFFSET, semantic)
        assert torch.equal(batch["instrumental.semantic"][:, 0] - OFFSET, semantic)
        noisy_batch = noisy.batch(3, np.random.default_rng(seed))  # same windows, noisy vocal condition
        assert torch.equal(noisy_batch["instrumental.coarse"], batch["instrumental.coarse"])
        assert (noisy_batch["vocals.semantic"][:, 0] - semantic).abs().max() <= 1
    assert 25 in lengths and min(lengths) < 25  # full 1 s windows and shorter ones
    assert not all(
        torch.equal(
            noisy.batch(3, np.random.default_rng(s))["vocals.semantic"],
            clean.batch(3, np.random.default_rng(s))["vocals.semantic"],
        )
        for s in range(6)
    )


def test_training_lowers_the_loss_validates_saves_and_resumes(cache_dir, tmp_path):
    run = tmp_path / "run"
    first = train_cascade(options(cache_dir, run, steps=40, log_every=10, valid_every=20, save_every=100))
    assert (first.start_step, first.step, len(first.losses)) == (0, 40, 40)
    assert np.mean(first.losses[-5:]) < 0.7 * np.mean(first.losses[:5])
    assert [v["step"] for v in first.valid] == [20, 40]
    assert first.valid[-1]["valid/loss_ce"] < first.valid[0]["valid/loss_ce"]
    checkpoint = load_checkpoint(run / "model", kind="cascade_stage")
    assert checkpoint.extra["step"] == 40 and has_training_state(run / "model")
    best = load_checkpoint(run / "best", kind="cascade_stage")  # the lowest validation loss, without state
    assert best.extra["valid"]["valid/loss_ce"] == min(v["valid/loss_ce"] for v in first.valid)
    assert best.extra["step"] in (20, 40) and not has_training_state(run / "best")
    assert checkpoint.extra["condition_noise"] == {
        "vocals.semantic": {"stream": "vocals.semantic_noisy", "probability": 1.0}
    }
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert {"loss/ce", "loss/level_0", "metrics/accuracy", "train/lr"} <= set(history[0])
    assert any("valid/loss_ce" in entry for entry in history)
    assert any((run / "tensorboard").iterdir())

    resumed = train_cascade(options(cache_dir, run, steps=44, log_every=10, valid_every=20, save_every=100))
    assert (resumed.start_step, resumed.step) == (40, 44)
    assert load_checkpoint(run / "model").extra["step"] == 44
    # A time budget already spent stops at once, still saving a resumable state.
    stopped = train_cascade(options(cache_dir, run, steps=100, max_minutes=1e-9))
    assert stopped.stopped_early and stopped.step == 44


def test_cli_trains_stages_assembles_and_evaluates_a_model(cache_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="singsong")
    top = parser.add_subparsers(dest="group")
    groups = {name: top.add_parser(name).add_subparsers(dest="command") for name in ("train", "eval")}
    for module in (cascade_training, assemble, cascade_eval):  # train cascade, cascade-assemble, eval cascade
        module.register(groups)
    tiny = [
        "--cache",
        str(cache_dir),
        "--d-model",
        "32",
        "--layers",
        "2",
        "--heads",
        "2",
        "--window-seconds",
        "1",
        "--batch-size",
        "2",
        "--steps",
        "3",
        "--threads",
        "1",
        "--no-progress",
        "--valid-batches",
        "1",
    ]
    for stage in ("semantic", "delay"):
        args = parser.parse_args(["train", "cascade", "--stage", stage, "--out", str(tmp_path / stage), *tiny])
        assert args.handler(args) == 0
        assert has_training_state(tmp_path / stage / "model")
    model = tmp_path / "model"
    args = parser.parse_args(
        [
            "train",
            "cascade-assemble",
            "--semantic",
            str(tmp_path / "semantic"),
            "--delay",
            str(tmp_path / "delay"),
            "--out",
            str(model),
            "--featurization",
            "S",
        ]
    )
    assert args.handler(args) == 0
    info = json.loads((model / "cascade.json").read_text())
    assert info["featurization"] == "S" and info["stages"] == ["delay", "semantic"]
    assert info["notes"]["condition_noise"]["delay"]["vocals.semantic"]["probability"] == 1.0
    args = parser.parse_args(
        [
            "eval",
            "cascade",
            "--model",
            str(model),
            "--cache",
            str(cache_dir),
            "--split",
            "valid",
            "--batches",
            "1",
            "--batch-size",
            "2",
            "--json",
            str(tmp_path / "e.json"),
        ]
    )
    assert args.handler(args) == 0
    assert "semantic" in capsys.readouterr().out
    report = json.loads((tmp_path / "e.json").read_text())
    assert set(report) == {"semantic", "delay"}
    for stage in ("semantic", "delay"):  # both depend on the vocal: scored with another window's vocal too
        assert np.isfinite(report[stage]["valid/loss_ce_other_vocal"])
        assert report[stage]["valid/loss_ce_other_vocal"] != report[stage]["valid/loss_ce"]
    # One stage's run directory, before any model directory exists: the same figures as inside the model.
    args.model, args.json = str(tmp_path / "semantic"), str(tmp_path / "e1.json")
    assert args.handler(args) == 0
    alone = json.loads((tmp_path / "e1.json").read_text())
    assert set(alone) == {"semantic"} and alone["semantic"] == pytest.approx(report["semantic"], rel=1e-4)

    cascade = Cascade.from_pretrained(model)
    assert cascade.stream_specs()["instrumental.fine"] == {"codebooks": 2, "cardinality": 128, "frame_rate": 50.0}
    vocal = torch.from_numpy(TokenCache(cache_dir).tokens(0, "vocals.semantic").astype(np.int64))[None]
    codes = cascade.generate({"vocals.semantic": vocal}, 100, SamplingConfig(top_k=20), seeds=[0])
    assert codes.shape == (1, 3, 100)


def test_cli_trains_and_assembles_a_parallel_acoustic_stage(cache_dir, tmp_path):
    """The SoundStorm-style back-end through the same commands: train --stage parallel, assemble --parallel."""
    parser = argparse.ArgumentParser(prog="singsong")
    top = parser.add_subparsers(dest="group")
    groups = {name: top.add_parser(name).add_subparsers(dest="command") for name in ("train", "eval")}
    for module in (cascade_training, assemble):
        module.register(groups)
    tiny = ["--cache", str(cache_dir), "--d-model", "32", "--layers", "1", "--heads", "2", "--window-seconds", "1"]
    tiny += ["--batch-size", "2", "--steps", "2", "--threads", "1", "--no-progress", "--valid-batches", "1"]
    runs = {"semantic": ["--pattern", "masked", "--iterations", "3"], "parallel": ["--iterations", "2,1"]}
    for stage, extra in runs.items():
        args = parser.parse_args(["train", "cascade", "--stage", stage, "--out", str(tmp_path / stage), *tiny, *extra])
        assert args.handler(args) == 0
    model = tmp_path / "model"
    stages = ["--semantic", str(tmp_path / "semantic"), "--parallel", str(tmp_path / "parallel")]
    args = parser.parse_args(["train", "cascade-assemble", *stages, "--out", str(model)])
    assert args.handler(args) == 0
    cascade = Cascade.from_pretrained(model)
    assert cascade.acoustic == "parallel" and cascade.stages["parallel"].config.iterations == (2, 1)
    # Decoding passes are a decoding choice: set at assembly, fewer than in training.
    fast = tmp_path / "fast"
    args = parser.parse_args(["train", "cascade-assemble", *stages, "--parallel-passes", "1", "--out", str(fast)])
    assert args.handler(args) == 0
    assert Cascade.from_pretrained(fast).stages["parallel"].config.iterations == (1,)
    args = parser.parse_args(["train", "cascade-assemble", *stages, "--semantic-passes", "0", "--out", str(fast)])
    with pytest.raises(SingsongError, match="iterations"):
        args.handler(args)
    assert cascade.stages["semantic"].config.pattern == "masked"
    vocal = torch.from_numpy(TokenCache(cache_dir).tokens(0, "vocals.semantic").astype(np.int64))[None]
    steps = []
    codes = cascade.generate({"vocals.semantic": vocal}, 60, SamplingConfig(top_k=20), seeds=[0], progress=steps.append)
    assert codes.shape == (1, 3, 60) and steps[-1] == 1.0


def test_init_from_continues_a_committed_checkpoint_with_a_fresh_optimizer(cache_dir, tmp_path):
    """--init-from: a new run starts from a stage checkpoint's weights and step (what a later session has)."""
    from models.cascade import StageModel

    first = train_cascade(options(cache_dir, tmp_path / "first", steps=4, lr=1e-2))
    shipped = tmp_path / "shipped"
    StageModel.from_pretrained(first.model_dir).save_pretrained(shipped, weights_dtype=torch.float16)
    second = train_cascade(options(cache_dir, tmp_path / "second", steps=6, lr=1e-2, init_from=shipped))
    assert (second.start_step, second.step) == (4, 6)
    assert load_checkpoint(second.model_dir).extra["step"] == 6
    other = options(cache_dir, tmp_path / "third", steps=6, layers=1, init_from=shipped)
    with pytest.raises(SingsongError, match="differs"):
        train_cascade(other)


def test_cli_choices_match_the_model_package():
    from models.cascade.config import FEATURIZATIONS, STAGES
    from pipelines.training.cascade import CLI_FEATURIZATIONS, CLI_STAGES

    assert tuple(STAGES) == CLI_STAGES and sorted(FEATURIZATIONS) == sorted(CLI_FEATURIZATIONS)
