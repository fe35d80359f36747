"""`singsong pipeline separate`, `singsong train separator`, `singsong eval separator`.

Handlers import torch/demucs lazily so that `singsong --help` stays instant.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    _register_separate(groups["pipeline"])
    _register_train(groups["train"])
    _register_eval(groups["eval"])


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
def _register_train(group: argparse._SubParsersAction) -> None:
    from pipelines.separation.train import SeparatorTrainOptions

    defaults = SeparatorTrainOptions(data=Path(), out=Path())
    parser = group.add_parser(
        "separator",
        help="train a small demucs separator on a stem corpus and export it as a demucs repository",
        description="Train HDemucs/HTDemucs (reduced) on vocals/drums/bass/other stems; the result is a demucs "
        "local repository usable by `pipeline separate --repo` and `python -m demucs --repo`.",
    )
    parser.add_argument("--data", required=True, help="stem corpus folder or manifest (e.g. corpus synth output)")
    parser.add_argument("--out", required=True, help="demucs repository folder (training state in OUT/run/)")
    parser.add_argument("--name", default=defaults.name, help="model signature in the repository")
    parser.add_argument("--model", choices=("hdemucs", "htdemucs"), default=defaults.model)
    parser.add_argument(
        "--sources",
        choices=("two", "four"),
        default=defaults.sources,
        help="vocals/instrumental (two, default) or drums/bass/other/vocals (four)",
    )
    parser.add_argument("--channels", type=int, default=defaults.channels)
    parser.add_argument("--depth", type=int, default=defaults.depth)
    parser.add_argument("--sample-rate", type=int, default=defaults.sample_rate)
    parser.add_argument("--segment", type=float, default=defaults.segment, help="training crop, seconds")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--steps", type=int, default=defaults.steps, help="total optimizer steps")
    parser.add_argument("--max-minutes", type=float, default=None, help="wall-time budget of this invocation")
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument(
        "--remix",
        type=float,
        default=defaults.remix,
        help="probability of mixing stems from different songs (demucs' remix augmentation)",
    )
    parser.add_argument("--save-every", type=int, default=defaults.save_every, help="save + export every N steps")
    parser.add_argument("--log-every", type=int, default=defaults.log_every)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from pipelines.separation.train import SeparatorTrainOptions, train_separator

    options = SeparatorTrainOptions(
        data=Path(args.data),
        out=Path(args.out),
        name=args.name,
        model=args.model,
        sources=args.sources,
        channels=args.channels,
        depth=args.depth,
        sample_rate=args.sample_rate,
        segment=args.segment,
        batch_size=args.batch_size,
        steps=args.steps,
        max_minutes=args.max_minutes,
        lr=args.lr,
        warmup=args.warmup,
        remix=args.remix,
        save_every=args.save_every,
        log_every=args.log_every,
        device=args.device,
        threads=args.threads,
        seed=args.seed,
        resume=args.resume,
        progress=not args.quiet,
    )
    result = train_separator(options)
    print(
        f"separator {options.name}: step {result.step} ({result.minutes:.1f} min this run, "
        f"final loss {result.final_loss:.4f}) -> {result.exported}"
    )
    return 0


# ------------------------------------------------------------------------------------------ eval
def _register_eval(group: argparse._SubParsersAction) -> None:
    parser = group.add_parser(
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
    parser.set_defaults(handler=_eval)


def _eval(args: argparse.Namespace) -> int:
    from pipelines.separation.evaluate import EvalOptions, evaluate_separator, format_report

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


__all__ = ["register"]
