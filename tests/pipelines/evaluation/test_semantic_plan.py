"""Harmony plans scored against the vocal without audio (`pipelines/evaluation/semantic_plan.py`)."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.evaluation.semantic_plan import format_plan_table, plan_fit, plan_scores


def _triads() -> np.ndarray:
    """Token r = the major triad on root r, as a pitch-class profile `[12, 12]`."""
    chroma = np.zeros((12, 12))
    for root in range(12):
        chroma[root, [root, (root + 4) % 12, (root + 7) % 12]] = [1.0, 0.8, 0.8]
    return chroma


def _melody(notes: list[int], frames_per_note: int = 10) -> np.ndarray:
    """Melody tokens (1 + pc held, 13 + pc at an onset) for a list of pitch classes."""
    tokens = []
    for pc in notes:
        tokens += [13 + pc] + [1 + pc] * (frames_per_note - 1)
    return np.array(tokens)


def test_the_right_chords_score_above_a_shifted_plan_and_a_drone():
    chroma = _triads()
    # C E G over C major, then F A C over F major (two bars of 2 s).
    melody = _melody([0, 4, 7, 0, 5, 9, 0, 5])
    truth = np.array([0] * 40 + [5] * 40)
    right = plan_scores(melody, truth, truth, chroma)
    shifted = plan_scores(melody, (truth + 1) % 12, truth, chroma)
    drone = plan_scores(melody, np.zeros(80, dtype=np.int64), truth, chroma)
    assert right["margin"] > 0.5 and right["chord_agree"] == 1.0
    assert shifted["margin"] < 0.1 and shifted["chord_agree"] == 0.0
    assert right["margin"] > drone["margin"] > shifted["margin"]
    assert right["changes_per_s"] == pytest.approx(1 / 3.2) and drone["changes_per_s"] == 0.0


def test_unvoiced_melody_scores_nothing_and_the_table_prints():
    chroma = _triads()
    silent = np.zeros(50, dtype=np.int64)
    scores = plan_scores(silent, np.zeros(50, dtype=np.int64), np.zeros(50, dtype=np.int64), chroma)
    assert scores["margin"] == 0.0 and scores["chord_agree"] == 0.0
    table = format_plan_table({"truth": scores})
    assert "| truth | 0.000 | 0.000 | 0.00 | 0.000 |" in table


def test_key_and_tempo_of_a_plan_against_the_vocal():
    chroma = _triads()
    melody = _melody([0, 4, 7, 5, 9, 0, 7, 11] * 6, frames_per_note=12)  # C major, a note a beat at 125 BPM
    onsets = np.zeros(12)
    onsets[7] = 1.0  # token 7 (G major) carries the onsets, token 0 (C major) holds
    frames = len(melody)
    on_beat = np.where(np.arange(frames) % 12 == 0, 7, 0)
    off_tempo = np.where(np.arange(frames) % 17 == 0, 7, 0)  # 88 BPM: neither the tempo nor half/double it
    in_key = plan_scores(melody, on_beat, on_beat, chroma, onsets)
    assert in_key["key_ok"] == 1.0 and in_key["tempo_ok"] == 1.0
    assert plan_scores(melody, off_tempo, on_beat, chroma, onsets)["tempo_ok"] == 0.0
    assert plan_scores(melody, (on_beat + 6) % 12, on_beat, chroma, onsets)["key_ok"] == 0.0  # a tritone away
    assert "tempo_ok" not in plan_scores(melody, on_beat, on_beat, chroma)


def test_plan_fit_is_the_margin_plus_a_graded_key_agreement():
    chroma = _triads()
    melody = _melody([0, 4, 7, 0, 5, 9, 0, 5])
    right = np.array([0] * 40 + [5] * 40)
    margin, key_corr = plan_fit(melody, right, chroma)
    assert margin == pytest.approx(plan_scores(melody, right, right, chroma)["margin"])
    tritone_margin, tritone_key = plan_fit(melody, (right + 6) % 12, chroma)
    near_margin, near_key = plan_fit(melody, (right + 7) % 12, chroma)  # the dominant: a neighbouring key
    assert key_corr > near_key > tritone_key and key_corr > 0.5
    assert margin > near_margin and margin > tritone_margin
    assert plan_fit(np.zeros(80, dtype=np.int64), right, chroma) == (0.0, 0.0)
