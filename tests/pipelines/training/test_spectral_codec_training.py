"""`singsong train codec --kind spectral` on the tiny stem corpus: clips, loss drop, checkpoint, resume."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from core.errors import SingsongError
from models.codec.spectral import SpectralCodec
from models.loading import load_tokenizer
from pipelines.training import codec as codec_training
from pipelines.training.spectral_codec import song_clips


def _train(corpus: Path, out: Path, steps: int, *extra: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    groups = {"train": parser.add_subparsers().add_parser("train").add_subparsers()}
    codec_training.register(groups)
    command = f"train codec --kind spectral --data {corpus} --out {out} --split all --preset tiny --steps {steps}"
    command += " --batch-size 4 --segment-seconds 0.5 --lr 3e-3 --warmup 2 --log-every 5 --save-every 100 --threads 1"
    args = parser.parse_args([*command.split(), *extra])
    return args.handler(args), args.kind


def test_song_clips_pair_each_mixture_with_its_instrumental_stems(tiny_corpus: Path) -> None:
    clips = song_clips(tiny_corpus, None, "mixture,instrumental")
    mixtures = [c for c in clips if len(c) == 1]
    instrumentals = [c for c in clips if len(c) == 3]
    assert len(mixtures) == len(instrumentals) == 4
    assert all(m[0].name == "mixture.flac" for m in mixtures)
    assert all([p.stem for p in c] == ["drums", "bass", "other"] for c in instrumentals)
    assert len(song_clips(tiny_corpus, None, "instrumental")) == 4
    with pytest.raises(SingsongError, match="--sources"):
        song_clips(tiny_corpus, None, "vocals")


def test_training_lowers_the_loss_saves_loads_and_resumes(tiny_corpus: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert _train(tiny_corpus, run, 30) == (0, "spectral")
    assert "done at step 30/30" in capsys.readouterr().out
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    losses = [h["loss/mel_l1"] for h in history]
    assert len(history) == 6 and losses[-1] < 0.8 * losses[0], losses
    assert all(0 < h["codebook/perplexity_0"] <= 16 for h in history)
    assert (run / "tensorboard").is_dir()
    codec = load_tokenizer(run / "model")
    assert isinstance(codec, SpectralCodec) and codec.config.n_mels == 32
    assert json.loads((run / "model" / "config.json").read_text())["extra"]["step"] == 30
    # the standardisation was fitted to the data (not the initial floor / unit values)
    assert float(codec.feature_std.mean()) != pytest.approx(1.0) and np.isfinite(codec.feature_mean.numpy()).all()
    assert _train(tiny_corpus, run, 40, "--export", str(tmp_path / "shipped"))[0] == 0  # resumes from step 30
    shipped = load_tokenizer(tmp_path / "shipped")
    assert isinstance(shipped, SpectralCodec) and not (tmp_path / "shipped" / "training_state.json").exists()
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history][-2:] == [35, 40]
    assert json.loads((run / "model" / "config.json").read_text())["extra"]["step"] == 40
