"""Smoke tests of `singsong train codec`: the loss drops, checkpoints load, runs resume and stop on time."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from models.checkpoint import has_training_state, load_checkpoint
from models.codec import load_codec
from pipelines.training import codec as codec_training
from pipelines.training.codec import CodecTrainOptions, CodecTrainResult, train_codec


@pytest.fixture(scope="module")
def tone_folder(tmp_path_factory) -> Path:
    """Three 1-second stereo 44.1 kHz files of harmonic tones (with a silent start), like corpus stems."""
    folder = tmp_path_factory.mktemp("tones")
    sr = 44_100
    t = np.arange(sr) / sr
    for i, f in enumerate((196.0, 262.0, 330.0)):
        x = 0.3 * np.sin(2 * np.pi * f * t) + 0.1 * np.sin(2 * np.pi * 2 * f * t)
        x[: sr // 5] = 0.0
        sf.write(folder / f"tone{i}.wav", np.stack([x, 0.8 * x], axis=1), sr)
    return folder


def options(data: Path, out: Path, **overrides) -> CodecTrainOptions:
    base = CodecTrainOptions(
        data=data,
        out=out,
        split=None,
        preset="tiny",
        steps=40,
        batch_size=4,
        segment_seconds=0.25,
        lr=5e-3,
        warmup=5,
        log_every=10,
        save_every=25,
        progress=False,
        threads=1,
    )
    return replace(base, **overrides)


def test_training_lowers_the_loss_saves_and_resumes(tone_folder: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    run = tmp_path / "run"
    first = train_codec(options(tone_folder, run))
    assert (first.start_step, first.step, len(first.losses)) == (0, 40, 40)
    assert not first.stopped_early
    early, late = np.mean(first.losses[:5]), np.mean(first.losses[-5:])
    assert late < 0.75 * early, (early, late)

    codec = load_codec(run)
    assert codec.num_codebooks == 2 and codec.quantizer.initialized
    assert load_checkpoint(run / "model", kind="codec").extra["step"] == 40
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [10, 20, 30, 40]
    assert {"loss/mel", "loss/commit", "codebook/perplexity_0", "train/lr"} <= set(history[0])
    assert any((run / "tensorboard").iterdir())

    # same command with more steps: continues from step 40, not from 0
    second = train_codec(options(tone_folder, run, steps=50))
    assert (second.start_step, second.step, len(second.losses)) == (40, 50, 10)
    assert load_checkpoint(run / "model").extra["step"] == 50
    # the resumed losses continue at the trained level rather than at the untrained one
    assert np.mean(second.losses) < 0.9 * early

    fresh = train_codec(options(tone_folder, run, steps=2, resume=False))
    assert (fresh.start_step, fresh.step) == (0, 2)


def test_time_budget_stops_cleanly_with_a_checkpoint(tone_folder: Path, tmp_path: Path) -> None:
    result = train_codec(options(tone_folder, tmp_path / "run", max_minutes=1e-9))
    assert result.stopped_early and result.step == 0
    assert load_codec(tmp_path / "run").quantizer.initialized  # k-means init happened and was saved


def test_adversarial_training_runs_and_saves_the_discriminator(tone_folder: Path, tmp_path: Path) -> None:
    result = train_codec(options(tone_folder, tmp_path / "run", steps=3, adversarial=True, log_every=3))
    assert result.step == 3 and all(np.isfinite(result.losses))
    history = json.loads((tmp_path / "run" / "history.jsonl").read_text().splitlines()[-1])
    assert {"loss/adversarial", "loss/feature_matching", "loss/discriminator"} <= set(history)
    assert has_training_state(tmp_path / "run" / "discriminator")
    resumed = train_codec(options(tone_folder, tmp_path / "run", steps=4, adversarial=True))
    assert (resumed.start_step, resumed.step) == (3, 4)


def test_cli_registration_maps_arguments_to_options(monkeypatch, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    groups = {"train": parser.add_subparsers(dest="group").add_parser("train").add_subparsers(dest="command")}
    codec_training.register(groups)
    args = parser.parse_args(
        [
            "train",
            "codec",
            "--data",
            "d.jsonl",
            "--out",
            str(tmp_path),
            "--stem",
            "mixture",
            "--steps",
            "7",
            "--preset",
            "tiny",
            "--config-json",
            '{"num_levels": 3}',
            "--no-resume",
            "--split",
            "all",
            "--max-minutes",
            "2.5",
        ]
    )
    captured = {}

    def fake_train(opts: CodecTrainOptions) -> CodecTrainResult:
        captured["opts"] = opts
        return CodecTrainResult(step=7, start_step=0, model_dir=tmp_path, losses=[], stopped_early=False)

    monkeypatch.setattr(codec_training, "train_codec", fake_train)
    assert args.handler(args) == 0
    opts = captured["opts"]
    assert opts.steps == 7 and opts.stem == "mixture" and opts.split is None and opts.resume is False
    assert opts.max_minutes == 2.5 and opts.preset == "tiny"
    config = codec_training.codec_config_from_options(opts.preset, opts.config_json)
    assert config.num_levels == 3 and config.sample_rate == 8000
