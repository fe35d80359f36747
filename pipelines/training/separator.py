"""`singsong train separator`: train a small demucs on a stem corpus, export it as a demucs repository.

No pretrained separator can be downloaded here, so the pipeline's separator for the synthetic corpus is
trained from scratch: a reduced HDemucs (Défossez, 2021) or HTDemucs (Rouard et al., 2023) - same classes,
fewer channels and layers - with the Demucs recipe scaled down for CPUs: L1 loss on the waveforms of every
source, Adam, linear warmup + cosine decay (`pipelines/training/schedule.py`), random crops with remixing,
gain/sign/channel augmentation (`data.py`).

Sources: two by default, `vocals` and `instrumental`. SingSong's pairs only ever need these two, so a small
model spends all its capacity on the one boundary that matters (vocals vs. the rest) instead of also
separating drums from bass; `--sources four` trains the demucs layout (drums, bass, other, vocals) and the
pipeline then sums the three accompaniment sources. Either way the export loads anywhere demucs does.

Layout of OUT (a demucs local repository)::

    OUT/<name>-<sha256[:8]>.th       the deliverable: `get_model(name, repo=OUT)`, `python -m demucs --repo OUT`
    OUT/run/<name>/separator.json    architecture + training options (checked on resume)
    OUT/run/<name>/training_state.*  resumable state (models/checkpoint.py: safetensors + JSON, no pickle)
    OUT/run/<name>/history.jsonl     loss per logging step

Rerunning resumes from the training state; `--steps` is the total, so a finished run given more steps trains
further; `--max-minutes` bounds the wall time of one invocation and saves + exports before stopping, as do
Ctrl-C and SIGTERM (the run mechanics are `run.py`'s; this module holds the model, its batches and its loss).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import SingsongError
from pipelines.training.run import RunConfig, TrainingRun

logger = logging.getLogger(__name__)


@dataclass
class SeparatorTrainOptions:
    data: Path
    out: Path
    name: str = "synth_hdemucs"
    model: str = "hdemucs"
    sources: str = "two"  # "two": vocals/instrumental, "four": drums/bass/other/vocals
    channels: int = 8
    depth: int = 5
    sample_rate: int = 44100
    segment: float = 3.0  # training crop (HTDemucs: also its inference segment)
    inference_segment: float = 10.0  # HDemucs' `segment` attribute (default chunk of apply_model)
    batch_size: int = 4
    steps: int = 2000
    max_minutes: float | None = None
    lr: float = 1e-3
    warmup: int = 50
    min_lr_ratio: float = 0.1
    grad_clip: float = 5.0
    remix: float = 0.5
    split: str = "train"
    save_every: int = 100
    log_every: int = 10
    device: str = "auto"
    threads: int | None = None
    seed: int = 0
    resume: bool = True
    progress: bool = True
    model_overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class SeparatorTrainResult:
    step: int
    start_step: int
    minutes: float  # wall time of this invocation
    total_minutes: float  # summed over every invocation of the run
    final_loss: float  # mean loss of the last logging window
    exported: Path
    losses: list[float]
    stopped_early: bool


def architecture(options: SeparatorTrainOptions) -> dict[str, Any]:
    from pipelines.separation.repo import FOUR_STEMS, TWO_STEMS

    if options.sources not in ("two", "four"):
        raise SingsongError(f"--sources must be two or four (got {options.sources!r})")
    sources = TWO_STEMS if options.sources == "two" else FOUR_STEMS
    segment = options.segment if options.model == "htdemucs" else options.inference_segment
    return {
        "kind": options.model,
        "sources": list(sources),
        "channels": options.channels,
        "depth": options.depth,
        "sample_rate": options.sample_rate,
        "segment": segment,
        **options.model_overrides,
    }


def _build(arch: dict[str, Any]) -> Any:
    from pipelines.separation.repo import build_model

    kwargs = dict(arch)
    kind = kwargs.pop("kind")
    kwargs["sources"] = tuple(kwargs["sources"])
    return build_model(kind, **kwargs)


def train_separator(options: SeparatorTrainOptions) -> SeparatorTrainResult:
    """Train (or resume) as described in the module docstring; always exports the latest weights."""
    import numpy as np
    import torch

    from pipelines.separation.data import StemCropDataset, corpus_songs
    from pipelines.separation.repo import export_to_repo
    from pipelines.training.schedule import warmup_cosine_scheduler

    run_dir = Path(options.out) / "run" / options.name
    run = TrainingRun(_run_config(options, run_dir))
    arch = architecture(options)
    model = _build(arch).to(run.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=options.lr)
    scheduler = warmup_cosine_scheduler(
        optimizer, warmup_steps=options.warmup, total_steps=options.steps, min_ratio=options.min_lr_ratio
    )
    _check_architecture(run, run_dir / "separator.json", arch)
    run.restore(model, optimizer, scheduler)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "separator.json").write_text(
        json.dumps({"architecture": arch, "options": _jsonable(asdict(options))}, indent=2)
    )
    sources = arch["sources"]
    stems = ("vocals", "drums", "bass", "other") if "instrumental" in sources else sources
    dataset = StemCropDataset(
        corpus_songs(options.data, split=options.split, stems=stems),
        sources=sources,
        sample_rate=options.sample_rate,
        segment_samples=int(options.segment * options.sample_rate),
        remix=options.remix,
        progress=options.progress,
    )
    logger.info(
        "training on %d songs, %.2fM parameters", len(dataset.songs), sum(p.numel() for p in model.parameters()) / 1e6
    )
    rng = run.rng()
    exported: list[Path] = []
    model.train()

    def train_step() -> dict[str, Any]:
        mix, target = (x.to(run.device) for x in dataset.batch(options.batch_size, rng))
        loss = torch.nn.functional.l1_loss(model(mix), target)
        run.optimize(loss, model, optimizer, scheduler, grad_clip=options.grad_clip)
        return {"loss": loss.detach()}

    def save() -> None:
        run.save_state(model, optimizer, scheduler)
        training_args = {"steps": run.step, "minutes": run.total_minutes, "data": str(options.data), **arch}
        exported.append(export_to_repo(model.cpu(), options.out, options.name, training_args=training_args))
        model.to(run.device)

    def record(scalars: dict[str, float]) -> dict[str, float]:
        """The history line of a separator run: mean loss since the last line, learning rate, minutes trained."""
        return {"loss": float(np.mean(run.window)), "lr": scalars["train/lr"], "minutes": run.total_minutes}

    result = run.fit(train_step, save=save, scheduler=scheduler, record=record)
    tail = result.losses[-options.log_every :] or [float("nan")]
    return SeparatorTrainResult(
        step=result.step,
        start_step=result.start_step,
        minutes=result.minutes,
        total_minutes=result.total_minutes,
        final_loss=float(np.mean(tail)),
        exported=exported[-1] if exported else Path(options.out),  # only rank 0 exports
        losses=result.losses,
        stopped_early=result.stopped_early,
    )


def _run_config(options: SeparatorTrainOptions, run_dir: Path) -> RunConfig:
    """The run lives in OUT/run/NAME (training state and history there; no TensorBoard, no best)."""
    return RunConfig.from_options(
        options,
        out=run_dir,
        state_dir=run_dir,
        loss_key="loss",
        desc=f"train {options.name}",
        postfix={"loss": "loss"},
        tensorboard=False,
    )


def _check_architecture(run: TrainingRun, config_path: Path, arch: dict[str, Any]) -> None:
    """A resumed run must have this command's architecture: its weights would not load otherwise."""
    if not run.resuming:
        return
    saved = json.loads(config_path.read_text()).get("architecture") if config_path.is_file() else None
    if saved != arch:
        raise SingsongError(
            f"{run.config.state_dir}: the saved run has another architecture ({saved}); "
            "use --no-resume or another --name"
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    """Add `singsong train separator`."""
    defaults = SeparatorTrainOptions(data=Path(), out=Path())
    parser = groups["train"].add_parser(
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
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
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


__all__ = ["SeparatorTrainOptions", "SeparatorTrainResult", "architecture", "register", "train_separator"]
