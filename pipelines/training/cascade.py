"""`singsong train cascade`: train one stage of the token cascade from a token cache.

Stages (`models/cascade/stage.py`): `semantic` (vocal -> instrumental semantic tokens), `coarse` (+ instrumental
semantic -> coarse codec levels, flattened as in AudioLM), `fine` (coarse -> fine levels, short windows) and
`delay` (the single-stage alternative to coarse + fine: every codec level at frame rate with MusicGen's delay
pattern) or `parallel` (the same, as one bidirectional model filling masked levels in a few passes:
SoundStorm, `models/cascade/masked.py`; `--pattern masked` makes the semantic stage parallel too).
`--featurization` picks the vocal condition: `S` (semantic tokens), `SA` (+ vocal coarse codes) or `M`
(melody tokens); `--condition-streams` names any other set of cache streams.

Recipe: random aligned windows of `--window-seconds` (`cascade_data.py`), AdamW (β = 0.9, 0.95; weight decay
on matrices only, as nanoGPT), linear warmup + cosine decay (`schedule.py`), gradient clipping, condition
dropout `--cond-dropout` (the vocal condition replaced by learned nulls, for classifier-free guidance),
SingSong's noisy-vocal augmentation `--noise-prob`, bf16 autocast on CUDA, DDP when started by `torchrun`
(each rank draws its own windows; rank 0 validates, logs and saves).

A run directory holds::

    RUN_DIR/model/             stage checkpoint (`StageModel.from_pretrained`) + resumable training state
    RUN_DIR/best/              the stage checkpoint with the lowest validation loss so far (no training state):
                               on a small corpus the latest one may already be past its best
    RUN_DIR/tensorboard/       scalars: loss/ce, loss/level_k, metrics/accuracy, valid/*, train/lr, ...
    RUN_DIR/history.jsonl      the logged scalars, one JSON object per logging step
    RUN_DIR/train_args.json    the arguments of the latest invocation

Rerunning the same command resumes from `RUN_DIR/model` (unless `--no-resume`); `--steps` is the total
step count. `--max-minutes` bounds the wall time of the invocation and saves before stopping, as do Ctrl-C
and SIGTERM (the run mechanics are `run.py`'s; this module holds the stage, its batches and its loss).
`singsong train cascade-assemble` (`pipelines/inference/assemble.py`) then puts trained stages into one model
directory, and `singsong eval cascade` (`pipelines/evaluation/cascade.py`) reports teacher-forced losses of a
model directory on a cache split.

Usage::

    singsong train cascade --stage semantic --cache data/cache --out runs/semantic --featurization S
    torchrun --nproc-per-node 4 -m core.cli train cascade --stage delay --cache data/cache --out runs/delay
    singsong train cascade-assemble --semantic runs/semantic --delay runs/delay --out models/accompanist
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from core.errors import SingsongError
from pipelines.training.run import RunConfig, TrainingRun, options_dict

logger = logging.getLogger(__name__)


@dataclass
class CascadeTrainOptions:
    stage: str
    cache: Path
    out: Path
    featurization: str = "S"
    pattern: str | None = None  # None: the stage's own; "masked" makes a semantic stage parallel (MaskGIT)
    iterations: tuple[int, ...] | None = None  # masked stages: decoding passes per level (last repeats)
    condition_streams: tuple[str, ...] | None = None  # overrides --featurization
    d_model: int = 256
    layers: int = 3  # the shipped model's size: 4 layers missed the CPU real-time target (benchmarks/)
    heads: int = 4
    kv_heads: int = 2  # grouped-query attention (Ainslie et al., 2023): a 2x smaller KV cache; 0 = one per head
    dropout: float = 0.0
    window_seconds: float | None = None  # None: the stage's default (models.cascade.DEFAULT_WINDOWS)
    prompt_seconds: float | None = None
    batch_size: int = 16
    steps: int = 20_000
    lr: float = 5e-4
    min_lr_ratio: float = 0.1
    warmup: int = 500
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    cond_dropout: float = 0.1
    noise_prob: float = 1.0
    short_window_prob: float = 0.1
    device: str = "auto"
    amp: bool = True  # bf16 autocast, CUDA only
    valid_every: int = 500
    valid_batches: int = 8
    save_every: int = 1000
    log_every: int = 50
    max_minutes: float | None = None
    seed: int = 0
    resume: bool = True
    threads: int | None = None
    progress: bool = True
    init_from: Path | None = None  # a stage checkpoint of the same config: its weights and step, fresh optimizer


@dataclass
class CascadeTrainResult:
    step: int
    start_step: int
    model_dir: Path
    losses: list[float]  # "loss/ce" of every step of this invocation (rank 0)
    valid: list[dict[str, float]] = field(default_factory=list)  # {"step", "valid/loss_ce", ...}
    stopped_early: bool = False
    rank: int = 0  # torch.distributed rank of this process (only rank 0 logs and saves)


def condition_streams_of(options: CascadeTrainOptions) -> tuple[str, ...]:
    from models.cascade import FEATURIZATIONS

    if options.condition_streams:
        return tuple(options.condition_streams)
    if options.featurization not in FEATURIZATIONS:
        raise SingsongError(f"unknown featurisation {options.featurization!r}; choose from {sorted(FEATURIZATIONS)}")
    return FEATURIZATIONS[options.featurization]


def make_optimizer(model: Any, options: CascadeTrainOptions) -> Any:
    """AdamW with weight decay on matrices and embeddings, none on norms (nanoGPT's grouping)."""
    import torch

    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": options.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=options.lr, betas=(0.9, 0.95))


def evaluate(model: Any, batches: list[dict[str, Any]], device: Any, *, amp: bool = False) -> dict[str, float]:
    """Mean teacher-forced scalars (no condition dropout) over fixed batches, as `valid/...` keys."""
    import torch

    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
        for batch in batches:
            _, scalars = model({k: v.to(device) for k, v in batch.items()})
            for key, value in scalars.items():
                sums[key] = sums.get(key, 0.0) + float(value)
    model.train(was_training)
    return {f"valid/{key.replace('/', '_')}": value / len(batches) for key, value in sums.items()}


def train_cascade(options: CascadeTrainOptions) -> CascadeTrainResult:
    """Train (or resume training) one stage as described in the module docstring."""
    import torch

    from models.cascade import STAGES, build_stage_model
    from pipelines.tokens.reader import TokenCache
    from pipelines.training.cascade_data import WindowSampler
    from pipelines.training.schedule import warmup_cosine_scheduler

    if options.stage not in STAGES:
        raise SingsongError(f"unknown stage {options.stage!r}; choose from {', '.join(STAGES)}")
    out = Path(options.out)
    run = TrainingRun(_run_config(options))
    cache = TokenCache(options.cache)
    config = _stage_config(run, options, cache)
    run.write_args(options)
    train_data = WindowSampler(
        cache, config, "train", noise_prob=options.noise_prob, short_window_prob=options.short_window_prob
    )
    valid_batches = _valid_batches(run, options, cache, config, train_data.noise_prob)
    model = build_stage_model(config).to(run.device)
    optimizer = make_optimizer(model, options)
    scheduler = warmup_cosine_scheduler(
        optimizer, warmup_steps=options.warmup, total_steps=options.steps, min_ratio=options.min_lr_ratio
    )
    run.restore(model, optimizer, scheduler)
    if options.init_from is not None and not run.resuming:
        warm_start(run, model, optimizer, scheduler, Path(options.init_from))
    rng = run.rng()
    trained = run.dist.wrap(model)  # DDP under torchrun: forward through it, save the bare model
    model.train()
    use_amp = options.amp and run.device.type == "cuda"
    noise_note = {n: {"stream": noisy, "probability": train_data.noise_prob} for n, noisy in train_data.noisy.items()}
    if run.main:
        conditions = [c.name for c in config.conditions]
        logger.info("stage %s: %.2fM parameters, conditions %s", config.stage, model.num_parameters() / 1e6, conditions)
        logger.info("windows of %.2f s from %d items", train_data.window_seconds, len(train_data.items))

    def notes() -> dict[str, Any]:
        return {
            "step": run.step,
            "train_options": options_dict(options),
            "cache": str(options.cache),
            "condition_noise": noise_note,
            "window_seconds_trained": train_data.window_seconds,
            "valid": dict(run.last_valid),
        }

    def train_step() -> dict[str, Any]:
        batch = {k: v.to(run.device, non_blocking=True) for k, v in train_data.batch(options.batch_size, rng).items()}
        with torch.autocast(device_type=run.device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss, terms = trained(batch, cond_dropout=options.cond_dropout)
        grad_norm = run.optimize(loss, model, optimizer, scheduler, grad_clip=options.grad_clip)
        return {**terms, "train/grad_norm": grad_norm}

    def save() -> None:
        model.save_pretrained(out / "model", extra=notes())
        run.save_state(model, optimizer, scheduler)

    result = run.fit(
        train_step,
        save=save,
        scheduler=scheduler,
        validate=lambda: evaluate(model, valid_batches, run.device, amp=use_amp) if valid_batches else {},
        save_best=lambda: model.save_pretrained(out / "best", extra=notes()),
    )
    if run.main:
        logger.info("stage %s saved to %s (step %d)", options.stage, out / "model", result.step)
    return CascadeTrainResult(
        step=result.step,
        start_step=result.start_step,
        model_dir=out / "model",
        losses=result.losses,
        valid=result.valid,
        stopped_early=result.stopped_early,
        rank=result.rank,
    )


def warm_start(run: TrainingRun, model: Any, optimizer: Any, scheduler: Any, checkpoint: Path) -> None:
    """Start a new run from a stage checkpoint's weights at its step (`--init-from`), with a fresh optimizer.

    What a committed checkpoint needs to continue training in a later session without its training state
    (AdamW's moments triple the bytes): the weights and the step, so the learning-rate schedule continues where
    it stopped; the moments rebuild within a few hundred steps.
    """
    from models.cascade import StageModel

    start = StageModel.from_pretrained(checkpoint, device=run.device)
    if replace(start.config, iterations=model.config.iterations) != model.config:  # passes: decoding only
        raise SingsongError(f"--init-from {checkpoint}: its stage config differs from this run's ({start.config})")
    model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in start.state_dict().items()})
    step = int(start.training_notes.get("step", 0))
    run.step = run.start_step = step
    scheduler.last_epoch = step
    for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True):
        group["lr"] = base * factor(step)
    logger.info("initialised from %s at step %d (fresh optimizer state)", checkpoint, step)


def _run_config(options: CascadeTrainOptions) -> RunConfig:
    out = Path(options.out)
    return RunConfig.from_options(
        options,
        out=out,
        state_dir=out / "model",
        loss_key="loss/ce",
        desc=f"train {options.stage}",
        postfix={"loss": "loss/ce", "acc": "metrics/accuracy"},
        best_dir=out / "best",
        best_key="valid/loss_ce",
    )


def _stage_config(run: TrainingRun, options: CascadeTrainOptions, cache: Any) -> Any:
    """The stage config: the saved one when resuming (a run keeps its sizes and streams), else the options'."""
    from models.cascade import StageConfig, TransformerConfig, build_stage_config
    from models.checkpoint import read_checkpoint_config
    from pipelines.training.cascade_data import cache_streams

    transformer = TransformerConfig(
        options.d_model,
        options.layers,
        options.heads,
        num_kv_heads=options.kv_heads or None,
        dropout=options.dropout,
    )
    try:
        requested = build_stage_config(
            options.stage,
            cache_streams(cache),
            condition_streams_of(options),
            transformer=transformer,
            window_seconds=options.window_seconds,
            prompt_seconds=options.prompt_seconds,
            pattern=options.pattern,
            iterations=options.iterations,
        )
    except ValueError as error:
        raise SingsongError(f"{options.cache}: {error}") from error
    if not run.resuming:
        return requested
    config = StageConfig.from_dict(read_checkpoint_config(run.config.state_dir, kind="cascade_stage")["config"])
    if config != requested:
        logger.warning("resuming %s: keeping its saved stage config, not this command's sizes/streams", options.out)
    return config


def _valid_batches(
    run: TrainingRun, options: CascadeTrainOptions, cache: Any, config: Any, noise_prob: float
) -> list[dict[str, Any]]:
    """Fixed validation windows (rank 0 only validates); none when the cache has no 'valid' split."""
    from pipelines.training.cascade_data import WindowSampler

    if not run.main or options.valid_batches <= 0:
        return []
    if not cache.indices("valid"):
        logger.warning("%s has no 'valid' items: no validation loss", options.cache)
        return []
    valid_data = WindowSampler(cache, config, "valid", noise_prob=noise_prob)
    return valid_data.fixed_batches(options.valid_batches, options.batch_size, seed=options.seed)


def _run(args: argparse.Namespace) -> int:
    # Every option has a command-line flag of the same name (dashes for underscores), except these three.
    special = {"cache", "out", "condition_streams", "progress", "iterations", "init_from"}
    values = {f.name: getattr(args, f.name) for f in fields(CascadeTrainOptions) if f.name not in special}
    streams = tuple(s for s in (args.condition_streams or "").split(",") if s) or None
    iterations = tuple(int(n) for n in args.iterations.split(",")) if args.iterations else None
    options = CascadeTrainOptions(
        **values,
        cache=Path(args.cache),
        out=Path(args.out),
        condition_streams=streams,
        iterations=iterations,
        progress=not args.no_progress,
        init_from=Path(args.init_from) if args.init_from else None,
    )
    result = train_cascade(options)
    if result.rank != 0:
        return 0
    status = "stopped early (rerun the command to resume)" if result.stopped_early else "done"
    valid = f", valid loss {result.valid[-1]['valid/loss_ce']:.4f}" if result.valid else ""
    print(f"cascade {options.stage}: {status} at step {result.step}/{options.steps}{valid} -> {result.model_dir}")
    return 0


# Literal CLI choices (kept equal to models.cascade.stage's by a test): importing the model package in
# `register` would load torch and make every `singsong --help` slow.
CLI_STAGES = ("semantic", "coarse", "fine", "delay", "parallel")
CLI_FEATURIZATIONS = ("M", "MB", "S", "SA")


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    """Add `singsong train cascade`."""
    defaults = CascadeTrainOptions(stage="semantic", cache=Path(), out=Path())
    parser = groups["train"].add_parser(
        "cascade",
        help="train one stage of the token cascade (semantic, coarse, fine or delay) from a token cache",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--stage", required=True, choices=CLI_STAGES)
    parser.add_argument("--cache", required=True, help="token cache directory (singsong tokens build)")
    parser.add_argument("--out", required=True, help="run directory (resumed if it exists)")
    parser.add_argument("--featurization", default=defaults.featurization, choices=sorted(CLI_FEATURIZATIONS))
    parser.add_argument("--condition-streams", default=None, help="comma-separated cache streams (overrides it)")
    parser.add_argument(
        "--pattern",
        default=None,
        choices=["flat", "delay", "masked"],
        help="sequence layout; default: the stage's own (delay: delay, parallel: masked, else flat); "
        "a semantic stage may be masked (parallel MaskGIT decoding)",
    )
    parser.add_argument(
        "--iterations", default=None, help="masked stages: decoding passes per level, e.g. 12,2,1 (last repeats)"
    )
    parser.add_argument("--d-model", type=int, default=defaults.d_model)
    parser.add_argument("--layers", type=int, default=defaults.layers)
    parser.add_argument("--heads", type=int, default=defaults.heads)
    parser.add_argument("--kv-heads", type=int, default=defaults.kv_heads, help="key/value heads; 0 = --heads")
    parser.add_argument("--dropout", type=float, default=defaults.dropout)
    parser.add_argument("--window-seconds", type=float, default=None, help="default: 10 s (fine: 3 s)")
    parser.add_argument("--prompt-seconds", type=float, default=None, help="generation overlap; default: 1/2 or 1/3")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--steps", type=int, default=defaults.steps, help="total optimizer steps")
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--min-lr-ratio", type=float, default=defaults.min_lr_ratio)
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--grad-clip", type=float, default=defaults.grad_clip)
    parser.add_argument("--cond-dropout", type=float, default=defaults.cond_dropout, help="for guidance")
    parser.add_argument("--noise-prob", type=float, default=defaults.noise_prob, help="noisy vocal condition")
    parser.add_argument("--short-window-prob", type=float, default=defaults.short_window_prob)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True, help="bf16 on CUDA")
    parser.add_argument("--valid-every", type=int, default=defaults.valid_every)
    parser.add_argument("--valid-batches", type=int, default=defaults.valid_batches)
    parser.add_argument("--save-every", type=int, default=defaults.save_every)
    parser.add_argument("--log-every", type=int, default=defaults.log_every)
    parser.add_argument("--max-minutes", type=float, default=None, help="wall-time budget, then save")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--init-from", default=None, help="new run only: start from this stage checkpoint's weights and step"
    )
    parser.set_defaults(handler=_run)


__all__ = [
    "CLI_FEATURIZATIONS",
    "CLI_STAGES",
    "CascadeTrainOptions",
    "CascadeTrainResult",
    "condition_streams_of",
    "evaluate",
    "make_optimizer",
    "register",
    "train_cascade",
]
