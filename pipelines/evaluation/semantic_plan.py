"""Judge generated harmony plans without audio: the semantic stage's samples scored against the vocal.

The instrumental semantic tokens of the default model are harmony tokens (`models/semantic/harmony.py`):
each is a k-means centroid of a pitch-class profile, a bass profile, onsets and energy. So a *generated*
token sequence can be read back as a chromagram (each token's centroid chroma) and scored against the vocal
with the fit report's harmonic support margin (`fit.harmonic_support`, control = the chroma rotated by
1..11 semitones) - seconds per song instead of minutes of decoding, and free of the acoustic stage's errors.
That is what teacher-forced losses cannot tell: whether sampling, on its own past, keeps following the
vocal or drifts into a drone.

Rows, over the songs of a cache split (vocals.melody = the clean vocal's melody tokens):

* `truth` - the song's own instrumental tokens (the ceiling);
* `generated` - sampled by the stage from the song's vocal;
* `generated, other vocal` - sampled from another song's vocal, scored against this vocal (a control:
  what following *a* vocal, not this one, scores);
* `other song` - another song's true instrumental tokens (the fit report's control).

Columns: `margin` (mean harmonic support margin), `chord_agree` (share of voiced frames whose plan's
strongest pitch class equals the truth's), `changes_per_s` (token changes per second: ~0 is a drone).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

PLAN_ROWS = ("truth", "generated", "generated, other vocal", "other song")


def centroid_chroma(tokenizer_dir: Path) -> np.ndarray:
    """`[k, 12]` pitch-class profile of every harmony token (its centroid, un-standardised)."""
    from models.semantic.tokenizer import load_semantic_tokenizer

    tokenizer = load_semantic_tokenizer(tokenizer_dir)
    raw = tokenizer.centroids / tokenizer.weights * tokenizer.std + tokenizer.mean
    return raw[:, :12].clamp_min(0).numpy().astype(np.float64)


def plan_scores(melody_tokens: np.ndarray, plan: np.ndarray, truth: np.ndarray, chroma: np.ndarray) -> dict:
    """Scores of one plan `[F]` (harmony tokens) for melody tokens `[F]` (25 Hz, same frames)."""
    from models.melody import NUM_PITCH_CLASSES
    from pipelines.evaluation.fit import Melody, harmonic_support

    frames = min(len(melody_tokens), len(plan), len(truth))
    melody_tokens, plan, truth = melody_tokens[:frames], plan[:frames], truth[:frames]
    pitch = np.where(melody_tokens > 0, (melody_tokens - 1) % NUM_PITCH_CLASSES, -1).astype(np.int64)
    melody = Melody(pitch, np.flatnonzero(melody_tokens > NUM_PITCH_CLASSES), 25.0)
    support = harmonic_support(melody, chroma[plan].T, 25.0)
    voiced = pitch >= 0
    agree = float((chroma[plan].argmax(1) == chroma[truth].argmax(1))[voiced].mean()) if voiced.any() else 0.0
    return {
        "margin": support.margin,
        "chord_agree": agree,
        "changes_per_s": float((np.diff(plan) != 0).sum() / (frames / 25.0)),
    }


def evaluate_plans(
    stage: Any,
    cache: Any,
    tokenizer_dir: Path,
    *,
    split: str = "test",
    songs: int = 20,
    sampling: Any = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Generate a plan per song of `split` (module docstring) -> `{"summary": row -> means, "songs": ...}`."""
    import torch

    from models.cascade import Sampler, SamplingConfig

    sampling = sampling or SamplingConfig(top_k=50)
    chroma = centroid_chroma(tokenizer_dir)
    items = cache.indices(split)[:songs]
    if len(items) < 2:
        raise ValueError(f"need at least two songs in split {split!r} (one's vocal is the other's control)")
    melodies = [cache.tokens(i, "vocals.melody")[0].astype(np.int64) for i in items]  # [K, F] -> [F]
    truths = [cache.tokens(i, "instrumental.semantic")[0].astype(np.int64) for i in items]

    def generate(melody: np.ndarray, frames: int, row_seed: int) -> np.ndarray:
        condition = torch.from_numpy(melody)[None, None].to(stage.device)
        sampler = Sampler(sampling, [row_seed], device=stage.device)
        codes = stage.generate({"vocals.melody": condition}, frames, sampler, sampling.guidance_scale)
        return codes[0, 0].cpu().numpy()

    per_song = []
    for index, (melody, truth) in enumerate(zip(melodies, truths, strict=True)):
        other = (index + 1) % len(items)
        plans = {
            "truth": truth,
            "generated": generate(melody, len(truth), seed + index),
            "generated, other vocal": generate(melodies[other], len(truth), seed + index),
            "other song": truths[other],
        }
        per_song.append({row: plan_scores(melody, plan, truth, chroma) for row, plan in plans.items()})
    summary = {
        row: {key: float(np.mean([song[row][key] for song in per_song])) for key in per_song[0][row]}
        for row in PLAN_ROWS
    }
    return {"split": split, "songs": len(items), "summary": summary, "per_song": per_song}


def format_plan_table(summary: dict[str, dict[str, float]]) -> str:
    lines = ["| plan | margin | chord_agree | changes_per_s |", "|---|---|---|---|"]
    for row, values in summary.items():
        lines.append(
            f"| {row} | {values['margin']:.3f} | {values['chord_agree']:.3f} | {values['changes_per_s']:.2f} |"
        )
    return "\n".join(lines)


__all__ = ["PLAN_ROWS", "centroid_chroma", "evaluate_plans", "format_plan_table", "plan_scores"]
