"""`singsong eval separator`: SDR / SI-SDR per stem of a demucs separator on held-out songs of a stem corpus.

The model runs through the same batched engine as `pipeline separate` (so the numbers describe what the
pipeline produces, shifts and overlap included). For each song of the split, the estimated vocals and
instrumental (sum of non-vocal sources) are compared with the true stems resampled to the model's rate
(metrics in `metrics.py`). The report also gives the *input* SDR - the mixture itself taken as the estimate of
each stem - so an SDR is read as an improvement over doing nothing. For scale: htdemucs reaches 9.0 dB SDR
(averaged over four stems, museval, MUSDB18-HQ test; Rouard et al., 2023); its vocals are higher, and our
synthetic songs are a much easier and much smaller domain, trained on far less compute.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import SingsongError

logger = logging.getLogger(__name__)

ANCHOR = "htdemucs: 9.0 dB SDR, mean of 4 stems, MUSDB18-HQ test (Rouard et al., 2023)"
STEMS = ("vocals", "instrumental")


@dataclass
class EvalOptions:
    name: str
    repo: Path | None
    data: Path
    split: str | None = "test"
    report: Path | None = None
    shifts: int = 0
    overlap: float = 0.25
    segment: float | None = None
    batch_size: int = 8
    device: str = "auto"
    threads: int | None = None
    limit: int | None = None


def _summary(values: list[float | None]) -> dict[str, float | None]:
    clean = [v for v in values if v is not None and np.isfinite(v)]
    if not clean:
        return {"median": None, "mean": None}
    return {"median": round(float(np.median(clean)), 3), "mean": round(float(np.mean(clean)), 3)}


def evaluate_separator(options: EvalOptions) -> dict[str, Any]:
    """Separate every song of the split and score it; writes and returns the JSON report."""
    import torch

    from core.device import resolve_device
    from pipelines.pairs.sources import load_pair, stem_tracks
    from pipelines.separation.engine import BatchedSeparator, TrackJob
    from pipelines.separation.metrics import framewise_sdr, sdr, si_sdr
    from pipelines.separation.repo import load_separator

    started = time.perf_counter()
    if options.threads:
        torch.set_num_threads(options.threads)
    split = None if options.split in (None, "", "all") else options.split
    tracks = [t for t in stem_tracks(options.data, split=split) if "mixture" in t.stems]
    if not tracks:
        raise SingsongError(f"{options.data}: no songs with a mixture in split {options.split!r}")
    tracks = tracks[: options.limit] if options.limit else tracks
    model, info = load_separator(options.name, options.repo)
    engine = BatchedSeparator(
        model,
        info,
        segment=options.segment,
        overlap=options.overlap,
        shifts=options.shifts,
        batch_size=options.batch_size,
        device=resolve_device(options.device),
    )
    by_key = {t.key: t for t in tracks}
    jobs = [TrackJob(key=t.key, path=t.stems["mixture"], split=t.split) for t in tracks]
    per_song: list[dict[str, Any]] = []
    for result in engine.separate(jobs):
        if result.error is not None:
            logger.error("skipping %s: %s", result.job.key, result.error)
            continue
        assert result.vocals is not None and result.instrumental is not None
        true_vocals, true_instrumental, _ = load_pair(by_key[result.job.key], sample_rate=info.sample_rate)
        length = min(true_vocals.shape[-1], result.vocals.shape[-1])
        mixture = true_vocals[:, :length] + true_instrumental[:, :length]
        song: dict[str, Any] = {"id": result.job.key}
        for stem, reference, estimate in (
            ("vocals", true_vocals, result.vocals),
            ("instrumental", true_instrumental, result.instrumental),
        ):
            ref, est = reference[:, :length], estimate[:, :length]
            song[stem] = {
                "sdr": round(sdr(ref, est), 3),
                "si_sdr": round(si_sdr(ref, est), 3),
                "frame_sdr": framewise_sdr(ref, est, info.sample_rate),
                "input_sdr": round(sdr(ref, mixture), 3),
            }
        per_song.append(song)
    if not per_song:
        raise SingsongError("no song could be evaluated")
    stems = {
        stem: {
            metric: _summary([s[stem][metric] for s in per_song])
            for metric in ("sdr", "si_sdr", "frame_sdr", "input_sdr")
        }
        for stem in STEMS
    }
    report = {
        "model": options.name,
        "repo": str(options.repo) if options.repo else None,
        "data": str(options.data),
        "split": options.split,
        "songs": len(per_song),
        "sample_rate": info.sample_rate,
        "parameters": info.parameters,
        "sources": list(info.sources),
        "stems": stems,
        "sdr_mean_over_stems": round(float(np.mean([stems[s]["sdr"]["mean"] for s in STEMS])), 3),
        "anchor": ANCHOR,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()},
        "per_song": per_song,
        "seconds": round(time.perf_counter() - started, 1),
    }
    default = Path(options.repo or ".") / f"eval-{options.name}-{options.split or 'all'}.json"
    path = Path(options.report) if options.report else default
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    report["report_path"] = str(path)
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{report['model']} on {report['songs']} songs ({report['split']}), {report['sample_rate']} Hz:"]
    for stem, metrics in report["stems"].items():
        lines.append(
            f"  {stem:<13} SDR {metrics['sdr']['median']:6.2f} dB median ({metrics['sdr']['mean']:.2f} mean)  "
            f"SI-SDR {metrics['si_sdr']['median']:6.2f}  frame SDR {metrics['frame_sdr']['median']}  "
            f"(mixture as estimate: {metrics['input_sdr']['median']:.2f})"
        )
    lines.append(f"  anchor: {report['anchor']}")
    return "\n".join(lines)


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    """Add `singsong eval separator`."""
    parser = groups["eval"].add_parser(
        "separator",
        help="SDR / SI-SDR per stem of a demucs separator on held-out songs of a stem corpus",
        description="Separate the mixtures of a stem corpus split and compare with the true stems.",
    )
    parser.add_argument("--repo", default=None, help="demucs repository (omit for a pretrained name)")
    parser.add_argument("--name", required=True, help="model signature or bag name")
    parser.add_argument("--data", required=True, help="stem corpus folder or manifest")
    parser.add_argument("--split", default="test")
    parser.add_argument("--report", default=None, help="JSON report path (default: REPO/eval-NAME-SPLIT.json)")
    parser.add_argument("--shifts", type=int, default=0)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--segment", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="evaluate at most this many songs")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    options = EvalOptions(
        name=args.name,
        repo=Path(args.repo) if args.repo else None,
        data=Path(args.data),
        split=args.split,
        report=Path(args.report) if args.report else None,
        shifts=args.shifts,
        overlap=args.overlap,
        segment=args.segment,
        batch_size=args.batch_size,
        device=args.device,
        threads=args.threads,
        limit=args.limit,
    )
    report = evaluate_separator(options)
    print(format_report(report))
    print(json.dumps({"report": report["report_path"]}))
    return 0


__all__ = ["ANCHOR", "EvalOptions", "evaluate_separator", "format_report", "register"]
