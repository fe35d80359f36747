"""`singsong train semantic`: fit the semantic tokenizer (features + k-means) on a corpus of vocals.

SingSong (Donahue et al., 2023) derives the semantic tokens of the input vocal and of the target
accompaniment with the same k-means tokenizer (AudioLM, Borsos et al., 2022). The command:

1. lists audio files (`core.datasets.list_audio_files`: a folder, a corpus folder with
   `manifest.jsonl`, or a manifest; `--stem vocals` picks the vocal stems), shuffles them with `--seed` and
   keeps `--max-files`;
2. holds out a fraction of the *files* (not frames: neighbouring frames are near-duplicates) to measure
   how the fitted codebook is used on unseen audio;
3. extracts features of every training file (`--backend builtin`, or `hubert` with a local
   `--hubert-path` and `--layer`), keeping at most `2 * max_frames / files` random frames per file so memory
   stays bounded, then at most `--max-frames` overall;
4. fits standardisation + MiniBatchKMeans (k-means++, `random_state=seed`) and saves a `semantic_tokenizer`
   checkpoint to `--out`;
5. prints k, frames used, inertia and cluster usage (distinct clusters, perplexity) on held-out frames.

Usage::

    singsong train semantic --data corpus/ --stem vocals --split train --out runs/semantic --k 1024
    singsong train semantic --data corpus/manifest.jsonl --stem vocals --out runs/semantic_hubert \\
        --backend hubert --hubert-path ~/models/hubert-base-ls960 --layer 6
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import SingsongError

log = logging.getLogger(__name__)


@dataclass
class SemanticTrainingConfig:
    """Everything `train_semantic_tokenizer` needs; mirrors the command-line options."""

    data: Path
    out: Path
    stem: str | None = "vocals"
    split: str | None = None
    k: int = 1024
    backend: str = "builtin"
    hubert_path: Path | None = None
    layer: int = 6
    frame_rate: float = 25.0
    max_files: int | None = None
    max_frames: int | None = 500_000
    holdout_fraction: float = 0.1
    seed: int = 0
    max_iter: int = 100
    batch_size: int = 0
    device: str = "cpu"
    progress: bool = True


@dataclass
class SemanticTrainingSummary:
    out: Path
    files_train: int
    files_heldout: int
    files_skipped: list[str] = field(default_factory=list)
    fit: dict[str, Any] = field(default_factory=dict)
    heldout: dict[str, Any] = field(default_factory=dict)


def _extractor_settings(config: SemanticTrainingConfig) -> dict[str, Any]:
    if config.backend in ("builtin", "harmony"):
        return {"frame_rate": config.frame_rate}
    if config.backend == "hubert":
        if config.hubert_path is None:
            raise SingsongError("--backend hubert needs --hubert-path (a local transformers model directory)")
        return {
            "path": str(config.hubert_path.expanduser().resolve()),
            "layer": config.layer,
            "frame_rate": config.frame_rate,
        }
    raise SingsongError(f"unknown backend '{config.backend}' (choose builtin, harmony or hubert)")


def _file_features(extractor, files, *, per_file_cap, rng, progress: bool, desc: str, skipped: list[str]):
    """Yield `[F_i, D]` float32 feature arrays, one per readable file (at most `per_file_cap` frames each).

    A file is an audio path, or a `PairSource` whose instrumental (the sum of its accompaniment stems) is read.
    """
    import torch
    from tqdm import tqdm

    from core.audio import load_audio, resample, to_mono
    from core.audio_errors import AudioError
    from pipelines.tokens.cache import PairSource, load_pair

    for path in tqdm(files, desc=desc, unit="file", disable=not progress):
        try:
            if isinstance(path, PairSource):
                samples, rate = load_pair(path)["instrumental"]
                samples = resample(to_mono(samples), rate, extractor.sample_rate).astype("float32")
            else:
                samples = load_audio(path, sample_rate=extractor.sample_rate, channels=1).samples
        except AudioError as error:
            log.warning("skipping %s: %s", path, error)
            skipped.append(str(path))
            continue
        wav = torch.from_numpy(samples).unsqueeze(0)  # [1, 1, T]
        frames = extractor.extract(wav)[0].cpu().numpy()  # [F, D]
        if per_file_cap is not None and frames.shape[0] > per_file_cap:
            frames = frames[sorted(rng.choice(frames.shape[0], size=per_file_cap, replace=False))]
        yield frames


def _split_files(config: SemanticTrainingConfig, rng: Any) -> tuple[list[Any], list[Any]]:
    """(training files, held-out files): the source's files shuffled by the seed, at most `max_files`.

    The stem `instrumental` stands for each song's accompaniment (drums + bass + other of a stem corpus, or the
    instrumental of a pairs manifest), as the token cache forms it: `PairSource` items instead of paths.
    """
    from core.datasets import list_audio_files
    from pipelines.tokens.cache import pair_sources

    # Several stems ("vocals,other") fit one codebook to all of them: the vocal and the accompaniment are
    # tokenized with the same tokenizer, as in AudioLM/SingSong.
    stems = [s.strip() for s in config.stem.split(",") if s.strip()] if config.stem else [None]
    files: list[Any] = sorted(
        {
            f
            for stem in stems
            if stem != "instrumental"
            for f in list_audio_files(config.data, stem=stem, split=config.split)
        }
    )
    if "instrumental" in stems:
        files += pair_sources(config.data, splits=[config.split] if config.split else None)
    files = [files[i] for i in rng.permutation(len(files))]
    if config.max_files is not None:
        files = files[: config.max_files]
    heldout_count = 0
    if len(files) >= 2 and config.holdout_fraction > 0:
        heldout_count = min(len(files) - 1, max(1, round(len(files) * config.holdout_fraction)))
    return files[heldout_count:], files[:heldout_count]


def _heldout_usage(tokenizer: Any, parts: list[Any], k: int) -> dict[str, Any]:
    """Codebook usage and mean distance to the nearest centroid on held-out frames (`{}` without any)."""
    import numpy as np
    import torch

    from models.semantic.kmeans import assign, cluster_usage

    if not parts:
        return {}
    normalized = tokenizer.normalize(torch.from_numpy(np.concatenate(parts)))
    tokens, distances = assign(normalized, tokenizer.centroids, return_distances=True)
    return {
        "frames": int(tokens.numel()),
        "mean_distance": float(distances.mean()),
        **cluster_usage(tokens, k).as_dict(),
    }


def train_semantic_tokenizer(config: SemanticTrainingConfig) -> SemanticTrainingSummary:
    """Fit and save a semantic tokenizer; see the module docstring for the steps."""
    import numpy as np

    from models.semantic.kmeans import KMeansConfig
    from models.semantic.tokenizer import build_feature_extractor, fit_semantic_tokenizer

    if config.k < 2:
        raise SingsongError(f"--k must be at least 2, got {config.k}")
    if not 0.0 <= config.holdout_fraction < 1.0:
        raise SingsongError(f"--holdout-fraction must be in [0, 1), got {config.holdout_fraction}")
    settings = _extractor_settings(config)
    rng = np.random.default_rng(config.seed)
    train_files, heldout_files = _split_files(config, rng)
    log.info("semantic tokenizer: %d training files, %d held out", len(train_files), len(heldout_files))

    extractor = build_feature_extractor(config.backend, settings, device=config.device)
    per_file_cap = None
    if config.max_frames is not None:
        per_file_cap = max(1, math.ceil(2 * config.max_frames / len(train_files)))
    skipped: list[str] = []
    train_features = list(
        _file_features(
            extractor,
            train_files,
            per_file_cap=per_file_cap,
            rng=rng,
            progress=config.progress,
            desc="features",
            skipped=skipped,
        )
    )
    if not train_features:
        raise SingsongError(f"{config.data}: none of the {len(train_files)} training files could be read")
    kmeans = KMeansConfig(k=config.k, seed=config.seed, max_iter=config.max_iter, batch_size=config.batch_size)
    log.info("fitting k-means (k=%d) on %d frames", config.k, sum(f.shape[0] for f in train_features))
    tokenizer, report = fit_semantic_tokenizer(extractor, train_features, kmeans=kmeans, max_frames=config.max_frames)
    del train_features

    heldout_features = _file_features(
        extractor,
        heldout_files,
        per_file_cap=per_file_cap,
        rng=rng,
        progress=config.progress,
        desc="held-out",
        skipped=skipped,
    )
    heldout = _heldout_usage(tokenizer, list(heldout_features) if heldout_files else [], config.k)
    summary = SemanticTrainingSummary(
        out=config.out,
        files_train=len(train_files) - sum(str(p) in skipped for p in train_files),
        files_heldout=len(heldout_files),
        files_skipped=skipped,
        fit=report.as_dict(),
        heldout=heldout,
    )
    extra = {
        "fit": summary.fit,
        "heldout": heldout,
        "data": str(config.data),
        "stem": config.stem,
        "split": config.split,
        "files_train": summary.files_train,
        "files_heldout": len(heldout_files),
        "seed": config.seed,
    }
    tokenizer.save(config.out, extra=extra)
    return summary


def format_summary(summary: SemanticTrainingSummary) -> str:
    fit, heldout = summary.fit, summary.heldout
    lines = [
        f"saved semantic tokenizer to {summary.out}",
        f"  k={fit['k']}  feature dim={fit['dim']}  files: {summary.files_train} train, "
        f"{summary.files_heldout} held out, {len(summary.files_skipped)} skipped",
        f"  frames used: {fit['frames_used']} of {fit['frames_available']}  "
        f"inertia (mean sq. distance): {fit['inertia']:.4f}  k-means steps: {fit['iterations']}",
        f"  train usage: {fit['train_usage']['used']}/{fit['k']} clusters, "
        f"perplexity {fit['train_usage']['perplexity']:.1f}",
    ]
    if heldout:
        lines.append(
            f"  held-out: {heldout['frames']} frames, {heldout['used']}/{fit['k']} clusters used, "
            f"perplexity {heldout['perplexity']:.1f}, mean sq. distance {heldout['mean_distance']:.4f}"
        )
    else:
        lines.append("  held-out: none (fewer than 2 files or --holdout-fraction 0)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    config = SemanticTrainingConfig(
        data=Path(args.data),
        out=Path(args.out),
        stem=args.stem or None,
        split=args.split,
        k=args.k,
        backend=args.backend,
        hubert_path=Path(args.hubert_path) if args.hubert_path else None,
        layer=args.layer,
        frame_rate=args.frame_rate,
        max_files=args.max_files,
        max_frames=args.max_frames or None,
        holdout_fraction=args.holdout_fraction,
        seed=args.seed,
        max_iter=args.max_iter,
        batch_size=args.batch_size,
        device=args.device,
        progress=not args.no_progress,
    )
    print(format_summary(train_semantic_tokenizer(config)))
    return 0


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    """Add `singsong train semantic` to the `train` command group."""
    parser = groups["train"].add_parser(
        "semantic",
        help="fit the semantic tokenizer (features + k-means)",
        description="Fit the semantic tokenizer (standardised features + k-means) on a corpus of vocals.",
    )
    parser.add_argument("--data", required=True, help="audio folder, corpus folder or manifest.jsonl")
    parser.add_argument(
        "--stem", default="vocals", help="stem(s) to use from a corpus, comma-separated ('' for any file)"
    )
    parser.add_argument("--split", default=None, help="manifest split (train/valid/test) or folder name")
    parser.add_argument("--out", required=True, help="output checkpoint directory")
    parser.add_argument("--k", type=int, default=1024, help="number of clusters (default 1024)")
    parser.add_argument(
        "--backend",
        choices=("builtin", "harmony", "hubert"),
        default="builtin",
        help="features: builtin (vocal-oriented DSP), harmony (chords/bass/onsets of an accompaniment), hubert",
    )
    parser.add_argument("--hubert-path", help="local transformers encoder directory (with --backend hubert)")
    parser.add_argument("--layer", type=int, default=6, help="encoder hidden layer for --backend hubert")
    parser.add_argument("--frame-rate", type=float, default=25.0, help="token rate in Hz (default 25)")
    parser.add_argument("--max-files", type=int, default=None, help="use at most N files (random)")
    parser.add_argument(
        "--max-frames",
        type=int,
        default=500_000,
        help="fit on at most M random frames (0: all; default 500000)",
    )
    parser.add_argument(
        "--holdout-fraction",
        type=float,
        default=0.1,
        help="fraction of files held out to measure cluster usage (default 0.1)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-iter", type=int, default=100, help="k-means passes over the data")
    parser.add_argument("--batch-size", type=int, default=0, help="k-means mini-batch (0: max(4096, 4k))")
    parser.add_argument("--device", default="cpu", help="torch device for feature extraction")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(handler=run)
