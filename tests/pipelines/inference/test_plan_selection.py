"""Best-of-N harmony plans: the critic prefers plans in the vocal's harmony; the engine samples N per take."""

import numpy as np
import pytest
import torch

from core.audio import Audio
from models.semantic.harmony import HarmonyFeatureExtractor
from models.semantic.kmeans import KMeansConfig
from models.semantic.tokenizer import fit_semantic_tokenizer
from pipelines.inference.accompanist import Accompanist
from pipelines.inference.engine import GenerationOptions
from pipelines.inference.plan_selection import HarmonyPlanCritic, KeyPrior

from .test_accompanist import _make_model, _tone

C, E, G, F_SHARP, A_SHARP, C_SHARP = 0, 4, 7, 6, 10, 1


def _triad(*pitch_classes: int) -> np.ndarray:
    chroma = np.full(12, 0.05)
    chroma[list(pitch_classes)] = 1.0
    return chroma


def _melody_tokens(pitch_classes: list[int], frames_per_note: int = 10) -> np.ndarray:
    """Melody tokens (25 Hz): 13 + pc on a note's first frame (onset), 1 + pc while it is held."""
    return np.concatenate([[13 + pc] + [1 + pc] * (frames_per_note - 1) for pc in pitch_classes])


def test_the_critic_prefers_the_plan_in_the_vocals_harmony():
    critic = HarmonyPlanCritic(np.stack([_triad(C, E, G), _triad(F_SHARP, A_SHARP, C_SHARP)]))
    melody = torch.from_numpy(_melody_tokens([C, E, G, E, C, G] * 3))[None, None].repeat(2, 1, 1)
    frames = melody.shape[-1]
    plans = torch.stack([torch.zeros(1, frames), torch.ones(1, frames)]).long()  # C major / F# major
    scores = critic({"vocals.melody": melody}, plans)
    assert scores.shape == (2,) and scores[0] > scores[1] + 0.3
    with pytest.raises(ValueError, match=r"vocals\.melody"):
        critic({"vocals.semantic": melody}, plans)


def test_the_key_prior_favours_tokens_in_the_vocals_key():
    chroma = np.stack([_triad(C, E, G), _triad(F_SHARP, A_SHARP, C_SHARP), _triad(G, 11, 2), np.ones(12)])
    prior = KeyPrior(chroma, strength=10.0)
    c_major = _melody_tokens([C, E, G, E, C, G, 5, 2, 11, C] * 2)  # a C major melody
    f_sharp = np.where(c_major > 12, 13, 1) + ((c_major - 1) % 12 + 6) % 12  # the same melody a tritone up
    silent = np.zeros_like(c_major)  # no voiced frame: no key to follow
    melody = torch.from_numpy(np.stack([c_major, f_sharp, silent]))[:, None]
    bias = prior({"vocals.melody": melody}).numpy()
    assert bias.shape == (3, 4) and bias.dtype == np.float32
    assert bias[0, 0] > bias[0, 2] > 0 > bias[0, 1]  # C major triad, then G major (a fifth), F# major last
    assert bias[1, 1] > 0 > bias[1, 0]  # the transposed melody prefers the transposed triad
    assert bias[0, 3] == 0 and (bias[2] == 0).all()  # a flat chroma and an unvoiced row get no pull
    assert np.allclose(KeyPrior(chroma, 5.0)({"vocals.melody": melody}).numpy(), bias / 2)
    with pytest.raises(ValueError, match="strength"):
        KeyPrior(chroma, -1.0)
    with pytest.raises(ValueError, match=r"vocals\.melody"):
        prior({"vocals.semantic": melody})


def test_a_critic_exists_only_for_harmony_tokenizers():
    extractor = HarmonyFeatureExtractor()
    wave = torch.from_numpy(_tone(4.0, extractor.sample_rate))[None]
    harmony, _ = fit_semantic_tokenizer(extractor, [extractor.extract(wave)[0]], kmeans=KMeansConfig(k=4, seed=0))
    critic = HarmonyPlanCritic.for_tokenizer(harmony)
    assert critic is not None and critic.chroma.shape == (4, 12) and (critic.chroma >= 0).all()
    assert HarmonyPlanCritic.for_tokenizer(object()) is None


def test_the_engine_scores_n_plans_per_take_and_is_reproducible(tmp_path):
    engine = Accompanist.from_pretrained(_make_model(tmp_path / "model"))
    assert engine.plan_critic is None  # the tiny model's semantic tokens are not harmony tokens
    vocal = Audio(_tone(1.0, 16000), 16000)
    plain = engine.accompany(vocal, GenerationOptions(seed=3))[0].accompaniment
    ignored = engine.accompany(vocal, GenerationOptions(seed=3, plan_candidates=4))[0].accompaniment
    np.testing.assert_array_equal(plain, ignored)  # no critic: plain sampling (and a warning)
    chroma = np.random.default_rng(0).random((engine.semantic.cardinality, 12))
    critic = HarmonyPlanCritic(chroma)
    calls = []
    engine.plan_critic = lambda conditions, plans: calls.append(len(plans)) or critic(conditions, plans)
    takes = engine.accompany(vocal, GenerationOptions(seed=3, plan_candidates=4, takes=2))
    again = engine.accompany(vocal, GenerationOptions(seed=3, plan_candidates=4, takes=2))
    assert calls == [8, 8]  # 4 candidates x 2 takes, in one batch
    for first, second in zip(takes, again, strict=True):
        np.testing.assert_array_equal(first.accompaniment, second.accompaniment)
    with pytest.raises(ValueError, match="plan_candidates"):
        GenerationOptions(plan_candidates=9).validate()


def test_the_engine_applies_the_key_prior_only_when_asked(tmp_path):
    engine = Accompanist.from_pretrained(_make_model(tmp_path / "model"))
    vocal = Audio(_tone(1.0, 16000), 16000)
    plain = engine.accompany(vocal, GenerationOptions(seed=3))[0].accompaniment
    ignored = engine.accompany(vocal, GenerationOptions(seed=3, key_strength=8.0))[0].accompaniment
    np.testing.assert_array_equal(plain, ignored)  # no harmony tokens: no prior (and a warning)
    engine.plan_critic = HarmonyPlanCritic(np.random.default_rng(0).random((engine.semantic.cardinality, 12)))
    assert engine._plan_selection(1, 0.0) == {}
    chosen = engine._plan_selection(1, 8.0)
    assert isinstance(chosen["plan_prior"], KeyPrior) and chosen["plan_prior"].strength == 8.0
    assert engine._plan_selection(2, 8.0)["plan_prior"] is chosen["plan_prior"]  # built once per strength
    with pytest.raises(ValueError, match="key_strength"):
        GenerationOptions(key_strength=51.0).validate()
