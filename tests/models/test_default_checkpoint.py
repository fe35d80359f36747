"""The model shipped in models/checkpoints/default: complete, consistent, small, and it accompanies a vocal."""

import json

import numpy as np
import pytest

from core.audio import Audio, load_audio
from pipelines.inference.accompanist import Accompanist, default_model_dir
from pipelines.inference.engine import GenerationOptions

EXAMPLE = default_model_dir().parents[2] / "pipelines" / "inference" / "examples" / "vocal.flac"


@pytest.fixture(scope="module")
def engine():
    return Accompanist.from_pretrained()  # no argument: the shipped default


@pytest.fixture(scope="module")
def vocal():
    audio = load_audio(EXAMPLE)
    return Audio(audio.samples[:, : 3 * audio.sample_rate], audio.sample_rate)  # 3 s keep the test quick


def test_the_default_model_directory_is_complete_and_lean():
    directory = default_model_dir()
    manifest = json.loads((directory / "singsong.json").read_text())
    assert manifest["featurization"] == "MB" and manifest["vocal_noise_snr_db"] is not None
    assert manifest["sampling"]["key_strength"] > 0  # plans follow the vocal's key (plan_selection.py)
    cascade = json.loads((directory / "cascade" / "cascade.json").read_text())
    assert cascade["stages"] == ["parallel", "semantic"] and cascade["acoustic"] == "parallel"
    assert (directory / "README.md").is_file()  # the model card: data, training budget, figures, limits
    total = sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())
    assert total < 40 * 2**20, f"{total / 2**20:.1f} MiB: keep the shipped model small (float16 stage weights)"


def test_the_default_model_plans_harmony_it_can_steer(engine):
    assert engine.plan_critic is not None  # harmony tokens: the key prior and best-of-N plans apply


def test_the_default_model_accompanies_the_example_vocal(engine, vocal):
    first, again = (engine.accompany_batch([vocal], [GenerationOptions(seed=1)])[0][0] for _ in range(2))
    other = engine.accompany_batch([vocal], [GenerationOptions(seed=2)])[0][0]
    assert first.accompaniment.shape == first.mix.shape == vocal.samples.shape
    assert first.sample_rate == vocal.sample_rate
    for take in (first, other):
        assert np.isfinite(take.mix).all() and np.abs(take.mix).max() < 1.0
        assert np.sqrt(np.mean(take.accompaniment**2)) > 1e-3  # an accompaniment, not silence
    assert np.array_equal(first.accompaniment, again.accompaniment)  # a seed reproduces its take
    assert not np.allclose(first.accompaniment, other.accompaniment)  # another seed gives another one
