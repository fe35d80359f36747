"""`singsong train semantic` on a handful of generated vocal files (built-in features, small k)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from core.errors import SingsongError
from models.semantic.tokenizer import load_semantic_tokenizer
from pipelines.training.semantic import SemanticTrainingConfig, register, train_semantic_tokenizer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="singsong")
    top = parser.add_subparsers(dest="group")
    train = top.add_parser("train").add_subparsers(dest="command")
    register({"train": train, "_top": top})
    return parser


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Five songs, `song_i/vocals.wav` (22.05 kHz, resampled on load) plus a decoy `other.wav` stem."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    rate = 22_050
    for i, midi in enumerate((55, 57, 60, 62, 64)):
        t = np.arange(int(1.2 * rate)) / rate
        f0 = 440.0 * 2 ** ((midi - 69) / 12) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
        phase = 2 * np.pi * np.cumsum(f0) / rate
        voice = 0.2 * sum(0.6**h * np.sin((h + 1) * phase) for h in range(8)) * (t < 0.9)
        song = root / f"song_{i}"
        song.mkdir()
        sf.write(song / "vocals.wav", (voice + 0.005 * rng.standard_normal(t.size)).astype(np.float32), rate)
        sf.write(song / "other.wav", np.zeros(rate // 2, np.float32), rate)
    return root


def test_cli_trains_saves_and_reports(corpus, tmp_path, capsys):
    out = tmp_path / "semantic"
    args = _parser().parse_args(
        [
            "train",
            "semantic",
            "--data",
            str(corpus),
            "--out",
            str(out),
            "--k",
            "8",
            "--holdout-fraction",
            "0.2",
            "--seed",
            "3",
            "--no-progress",
        ]
    )
    assert args.handler(args) == 0
    printed = capsys.readouterr().out
    assert "k=8" in printed and "4 train, 1 held out, 0 skipped" in printed
    assert "frames used: 120 of 120" in printed  # 4 files x ceil(1.2 s x 25 Hz)
    assert "held-out: 30 frames" in printed

    tokenizer = load_semantic_tokenizer(out)
    assert tokenizer.cardinality == 8 and tokenizer.sample_rate == 16_000
    extra = json.loads((out / "config.json").read_text())["extra"]
    assert extra["heldout"]["frames"] == 30 and 1 <= extra["heldout"]["used"] <= 8
    assert extra["fit"]["frames_used"] == 120 and extra["stem"] == "vocals"
    tokens = tokenizer.encode(torch.zeros(1, 1, 16_000))
    assert tokens.shape == (1, 1, 25)


def test_training_is_deterministic_and_respects_limits(corpus, tmp_path):
    def run(name: str):
        config = SemanticTrainingConfig(
            data=corpus,
            out=tmp_path / name,
            k=4,
            seed=1,
            max_files=3,
            max_frames=50,
            holdout_fraction=0.0,
            progress=False,
        )
        return train_semantic_tokenizer(config)

    first, second = run("a"), run("b")
    assert second.fit == first.fit
    assert first.files_train == 3 and first.files_heldout == 0 and not first.heldout
    assert first.fit["frames_available"] == 3 * 30 and first.fit["frames_used"] == 50
    a, b = load_semantic_tokenizer(tmp_path / "a"), load_semantic_tokenizer(tmp_path / "b")
    assert torch.equal(a.centroids, b.centroids)


def test_errors(corpus, tmp_path):
    with pytest.raises(SingsongError, match="--hubert-path"):
        train_semantic_tokenizer(SemanticTrainingConfig(data=corpus, out=tmp_path / "x", backend="hubert"))
    with pytest.raises(SingsongError, match="for k=1024 clusters"):
        train_semantic_tokenizer(SemanticTrainingConfig(data=corpus, out=tmp_path / "x", progress=False))
    with pytest.raises(SingsongError, match="no audio files"):
        train_semantic_tokenizer(SemanticTrainingConfig(data=corpus, out=tmp_path / "x", stem="drums"))
    assert not (tmp_path / "x").exists()


def test_instrumental_stem_fits_harmony_tokens_on_the_accompaniment(tiny_corpus, tmp_path):
    """`--stem instrumental` reads drums + bass + other of each song (as the token cache forms it)."""
    config = SemanticTrainingConfig(
        data=tiny_corpus,
        out=tmp_path / "harmony",
        stem="instrumental",
        split=None,
        backend="harmony",
        k=4,
        seed=0,
        holdout_fraction=0.25,
        progress=False,
    )
    summary = train_semantic_tokenizer(config)
    assert summary.files_train == 3 and summary.files_heldout == 1 and not summary.files_skipped
    assert summary.fit["frames_available"] == 3 * 100  # 4 s at 25 Hz per song
    tokenizer = load_semantic_tokenizer(tmp_path / "harmony")
    assert tokenizer.extractor.backend == "harmony" and tokenizer.cardinality == 4
