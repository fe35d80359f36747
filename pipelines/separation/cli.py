"""`singsong pipeline separate` (`train separator` is in `pipelines/training/separator.py`, `eval separator` in
`pipelines/evaluation/separator.py`).

Handlers import torch/demucs lazily so that `singsong --help` stays instant.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    _register_separate(groups["pipeline"])


# ------------------------------------------------------------------------------------------ separate
def _register_separate(group: argparse._SubParsersAction) -> None:
    parser = group.add_parser(
        "separate",
        help="separate mixtures into aligned vocals/instrumental with demucs (resumable, shardable, queueable)",
        description="Separate every track of a folder or manifest into vocals and instrumental with a demucs "
        "model. Finished tracks are skipped on reruns; unreadable tracks are logged and skipped.",
    )
    parser.add_argument("--input", default=None, help="folder of audio, MUSDB-style folder, or manifest .jsonl")
    parser.add_argument("--out", required=True, help="output folder (shared between shards/consumers)")
    parser.add_argument("--model", "-n", default="htdemucs", help="pretrained name, or signature/bag in --repo")
    parser.add_argument("--repo", default=None, help="local demucs model repository (no download)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--segment", type=float, default=None, help="seconds per chunk (default: the model's)")
    parser.add_argument("--overlap", type=float, default=0.25, help="overlap between chunks (default 0.25)")
    parser.add_argument("--shifts", type=int, default=1, help="random-shift passes to average (0: none)")
    parser.add_argument("--batch-size", type=int, default=8, help="chunks per forward, across tracks")
    parser.add_argument(
        "--instrumental",
        choices=("add", "minus"),
        default="add",
        help="instrumental = sum of non-vocal sources (add) or mixture - vocals (minus)",
    )
    parser.add_argument("--format", choices=("flac", "wav"), default="flac", help="16-bit output format")
    parser.add_argument("--shard", default=None, help="i/N: process only shard i (0-based) of N")
    parser.add_argument("--split", default=None, help="only tracks of this manifest split")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random shifts")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--queue", default=None, help="redis://host:port/db: consume tracks from a queue")
    parser.add_argument("--queue-name", default="singsong:separate")
    parser.add_argument("--enqueue", action="store_true", help="with --queue: enqueue --input and exit")
    parser.add_argument("--requeue", action="store_true", help="with --enqueue: enqueue already-seen tracks too")
    parser.add_argument(
        "--idle-exit",
        type=float,
        default=30.0,
        help="queue consumer: exit after this many idle seconds once drained (0: never)",
    )
    parser.add_argument(
        "--claim-timeout",
        type=float,
        default=600.0,
        help="queue: seconds after which another consumer may take over a silent claim",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="retry tracks that were unreadable in an earlier run (default: only if they changed)",
    )
    parser.add_argument("--rebuild-manifest", action="store_true", help="only rebuild OUT/manifest.jsonl")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_separate)


def _separate(args: argparse.Namespace) -> int:
    from pipelines.separation.separate import SeparateOptions, run_separation, write_manifest

    if args.rebuild_manifest:
        print(f"{args.out}: {write_manifest(Path(args.out))} tracks in the manifest")
        return 0
    options = SeparateOptions(
        input=Path(args.input) if args.input else None,
        out=Path(args.out),
        model=args.model,
        repo=Path(args.repo) if args.repo else None,
        device=args.device,
        segment=args.segment,
        overlap=args.overlap,
        shifts=args.shifts,
        batch_size=args.batch_size,
        instrumental=args.instrumental,
        format=args.format,
        shard=args.shard,
        split=args.split,
        seed=args.seed,
        threads=args.threads,
        progress=not args.quiet,
        queue=args.queue,
        queue_name=args.queue_name,
        enqueue=args.enqueue,
        requeue=args.requeue,
        idle_exit=args.idle_exit,
        claim_timeout=args.claim_timeout,
        retry_failed=args.retry_failed,
    )
    summary = run_separation(options)
    if options.queue and options.enqueue:
        print(
            f"{options.queue}: enqueued {summary.total - summary.skipped} tracks "
            f"({summary.skipped} were already queued)"
        )
    else:
        print(f"{args.out}: {summary.format()}")
    return 0


# ------------------------------------------------------------------------------------------ train


__all__ = ["register"]
