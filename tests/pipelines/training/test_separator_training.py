"""Separator training: a smoke run exports a demucs repository that demucs loads, and runs resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import SingsongError
from pipelines.separation.data import StemCropDataset, corpus_songs
from pipelines.training.separator import SeparatorTrainOptions, train_separator


def _options(corpus: Path, out: Path, **overrides) -> SeparatorTrainOptions:
    base = {
        "data": corpus,
        "out": out,
        "name": "smoke",
        "channels": 4,
        "depth": 3,
        "sample_rate": 8000,
        "segment": 0.5,
        "batch_size": 2,
        "steps": 3,
        "warmup": 1,
        "save_every": 2,
        "log_every": 1,
        "device": "cpu",
        "progress": False,
        "split": "all",
    }
    return SeparatorTrainOptions(**{**base, **overrides})


def test_training_exports_a_repository_that_demucs_loads_and_resumes(tmp_path: Path, tiny_corpus: Path) -> None:
    from demucs.pretrained import get_model

    out = tmp_path / "repo"
    first = train_separator(_options(tiny_corpus, out))
    assert (first.start_step, first.step) == (0, 3) and len(first.losses) == 3
    assert all(np.isfinite(first.losses))
    assert first.exported.parent == out and first.exported.name.startswith("smoke-")
    model = get_model("smoke", repo=out)
    assert list(model.sources) == ["vocals", "instrumental"] and model.samplerate == 8000
    with torch.no_grad():
        assert model(torch.randn(1, 2, 4000)).shape == (1, 2, 2, 4000)
    history = [json.loads(line) for line in (out / "run" / "smoke" / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [1, 2, 3]

    second = train_separator(_options(tiny_corpus, out, steps=5))
    assert (second.start_step, second.step) == (3, 5) and len(second.losses) == 2
    assert second.total_minutes > second.minutes
    assert len(list(out.glob("smoke-*.th"))) == 1  # the export was replaced, not duplicated
    with pytest.raises(SingsongError, match="architecture"):
        train_separator(_options(tiny_corpus, out, steps=6, channels=8))


def test_crops_are_mixtures_of_their_sources(tiny_corpus: Path) -> None:
    songs = corpus_songs(tiny_corpus, split="all", stems=("vocals", "drums", "bass", "other"))
    four = StemCropDataset(
        songs,
        sources=("drums", "bass", "other", "vocals"),
        sample_rate=8000,
        segment_samples=4000,
        remix=1.0,
        progress=False,
    )
    mix, sources = four.batch(3, np.random.default_rng(1))
    assert mix.shape == (3, 2, 4000) and sources.shape == (3, 4, 2, 4000)
    torch.testing.assert_close(mix, sources.sum(dim=1))
    assert sources.abs().amax(dim=(2, 3)).min() > 0  # no source is silent in every channel
