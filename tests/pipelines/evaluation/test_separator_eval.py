"""Separation metrics on signals with known answers, and the evaluation report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipelines.evaluation.separator import EvalOptions, evaluate_separator, format_report
from pipelines.separation.metrics import framewise_sdr, sdr, si_sdr


def test_sdr_of_known_distortions() -> None:
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, 48_000))
    noise = rng.standard_normal((2, 48_000))
    noise *= np.linalg.norm(ref) / np.linalg.norm(noise) / 10  # exactly 20 dB below
    assert sdr(ref, ref + noise) == pytest.approx(20.0, abs=1e-6)
    assert sdr(ref, np.zeros_like(ref)) == pytest.approx(0.0, abs=1e-6)
    assert sdr(ref, 0.5 * ref) == pytest.approx(20 * np.log10(2), abs=1e-6)  # a gain error costs SDR...
    assert si_sdr(ref, 0.5 * ref) > 100  # ...but not SI-SDR
    assert si_sdr(ref, ref + noise) == pytest.approx(20.0, abs=0.2)
    assert sdr(ref, ref) > 100
    with pytest.raises(ValueError):
        sdr(ref, ref[:, :10])


def test_framewise_sdr_ignores_silent_frames_and_takes_the_median() -> None:
    rate = 1000
    ref = np.zeros((1, 5 * rate))
    ref[:, : 3 * rate] = np.sin(np.arange(3 * rate) * 0.3)
    est = ref.copy()
    est[:, :rate] *= 0.0  # frame 0: 0 dB; frames 1-2: perfect; frames 3-4: silent reference, ignored
    est[:, 3 * rate :] = 1.0
    assert framewise_sdr(ref, est, rate) > 100  # median of (0, inf, inf)
    est[:, rate : 2 * rate] *= 0.0
    assert framewise_sdr(ref, est, rate) == pytest.approx(0.0, abs=1e-6)
    assert framewise_sdr(np.zeros((1, 2000)), np.ones((1, 2000)), rate) is None


def test_evaluation_report_for_a_trained_export(tmp_path: Path, tiny_corpus: Path, tiny_repo) -> None:
    repo, name = tiny_repo
    report = evaluate_separator(
        EvalOptions(
            name=name, repo=repo, data=tiny_corpus, split="all", shifts=0, device="cpu", report=tmp_path / "r.json"
        )
    )
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["songs"] == report["songs"] == 4 and len(saved["per_song"]) == 4
    for stem in ("vocals", "instrumental"):
        metrics = saved["stems"][stem]
        assert set(metrics) == {"sdr", "si_sdr", "frame_sdr", "input_sdr"}
        assert np.isfinite(metrics["sdr"]["median"])
    # input SDRs of vocals and instrumental are mirror images (v + i = mixture)
    song = saved["per_song"][0]
    assert song["vocals"]["input_sdr"] == pytest.approx(-song["instrumental"]["input_sdr"], abs=0.01)
    assert "SDR" in format_report(report) and "9.0 dB" in saved["anchor"]
