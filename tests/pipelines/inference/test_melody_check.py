"""The per-vocal melody check: coverage figures, the warning, and how engines and callers attach it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from core.audio import Audio, load_audio
from pipelines.inference.engine import (
    AccompanimentEngine,
    GenerationOptions,
    ProgressCallback,
    Take,
    take_rows,
    with_melody_checks,
)
from pipelines.inference.melody_check import MelodyCheck, check_melody

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "pipelines" / "inference" / "examples" / "vocal.flac"
SPEECH = ROOT / "tests" / "fixtures" / "speech" / "espeak-en-us.opus"


def test_a_sung_vocal_passes_and_speech_noise_and_silence_are_flagged():
    sung = check_melody(load_audio(EXAMPLE))
    assert sung.coverage > 0.5 and sung.warnings == () and not sung.low
    speech = check_melody(load_audio(SPEECH))
    assert speech.coverage < 0.15 and speech.low
    (warning,) = speech.warnings
    assert warning.startswith("little or no sung melody:") and f"{speech.coverage:.0%} of the vocal" in warning
    noise = Audio(np.random.default_rng(1).standard_normal((2, 22050 * 4)).astype(np.float32) * 0.2, 22050)
    silence = Audio(np.zeros((1, 16000 * 3), np.float32), 16000)
    for audio in (noise, silence):
        check = check_melody(audio)
        assert check.coverage == 0.0 and check.low, check


class _Echo(AccompanimentEngine):
    """An engine that returns the vocal itself and reports no melody check (as a third-party engine might)."""

    def __init__(self) -> None:
        self.calls = 0

    def accompany_batch(
        self, vocals: Sequence[Audio], options: Sequence[GenerationOptions], progress: ProgressCallback | None = None
    ) -> list[list[Take]]:
        self.calls += 1
        results: list[list[Take]] = [[] for _ in vocals]
        for index, take, seed in take_rows(vocals, options):
            vocal = vocals[index]
            results[index].append(Take(vocal.samples, vocal.samples, vocal.sample_rate, seed, take))
        return results


def test_with_melody_checks_fills_what_an_engine_left_out_once_per_vocal(monkeypatch):
    sung, speech = load_audio(EXAMPLE), load_audio(SPEECH)
    engine = _Echo()
    results = engine.accompany_batch([sung, speech], [GenerationOptions(seed=1, takes=2), GenerationOptions(seed=2)])
    assert all(take.melody is None for takes in results for take in takes)
    kept = MelodyCheck(0.42)
    results[1][0].melody = kept  # a check the engine made itself is kept, and shared with its other takes
    calls = []
    monkeypatch.setattr(
        "pipelines.inference.engine.check_melody", lambda vocal, tokenizer=None: calls.append(vocal) or MelodyCheck(1)
    )
    with_melody_checks([sung, speech], results)
    assert calls == [sung], "one check per vocal, none where the engine made one"
    assert [take.melody for take in results[0]] == [MelodyCheck(1), MelodyCheck(1)]
    assert results[1][0].melody is kept
    with pytest.raises(ValueError):
        with_melody_checks([sung], results)  # one result list per vocal


def test_the_single_vocal_wrapper_reports_the_check():
    (take,) = _Echo().accompany(load_audio(SPEECH), GenerationOptions(seed=0))
    assert take.melody is not None and take.melody.low
