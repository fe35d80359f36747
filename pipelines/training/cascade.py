"""`singsong train cascade`: train one stage of the token cascade from a token cache.

Stages (`models/cascade/stage.py`): `semantic` (vocal -> instrumental semantic tokens), `coarse` (+ instrumental
semantic -> coarse codec levels, flattened as in AudioLM), `fine` (coarse -> fine levels, short windows) and
`delay` (the single-stage alternative to coarse + fine: every codec level at frame rate with MusicGen's delay
pattern). `--featurization` picks the vocal condition: `S` (semantic tokens), `SA` (+ vocal coarse codes) or
`M` (melody tokens); `--condition-streams` names any other set of cache streams.

Recipe: random aligned windows of `--window-seconds` (`cascade_data.py`), AdamW (β = 0.9, 0.95; weight decay
on matrices only, as nanoGPT), linear warmup + cosine decay (`schedule.py`), gradient clipping, condition
dropout `--cond-dropout` (the vocal condition replaced by learned nulls, for classifier-free guidance),
SingSong's noisy-vocal augmentation `--noise-prob`, bf16 autocast on CUDA, DDP when started by `torchrun`
(each rank draws its own windows; rank 0 validates, logs and saves).

A run directory holds::

    RUN_DIR/model/             stage checkpoint (`StageLM.from_pretrained`) + resumable training state
    RUN_DIR/best/              the stage checkpoint with the lowest validation loss so far (no training state):
                               on a small corpus the latest one may already be past its best
    RUN_DIR/tensorboard/       scalars: loss/ce, loss/level_k, metrics/accuracy, valid/*, train/lr, ...
    RUN_DIR/history.jsonl      the logged scalars, one JSON object per logging step
    RUN_DIR/train_args.json    the arguments of the latest invocation

Rerunning the same command resumes from `RUN_DIR/model` (unless `--no-resume`); `--steps` is the total
step count. `--max-minutes` bounds the wall time of the invocation and saves before stopping, as do Ctrl-C
and SIGTERM. `singsong train cascade-assemble` then puts trained stages into one model directory, and
`singsong eval cascade` reports teacher-forced losses of a model directory on a cache split.

Usage::

    singsong train cascade --stage semantic --cache data/cache --out runs/semantic --featurization S
    torchrun --nproc-per-node 4 -m core.cli train cascade --stage delay --cache data/cache --out runs/delay
    singsong train cascade-assemble --semantic runs/semantic --delay runs/delay --out models/accompanist
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from core.device import resolve_device
from core.errors import SingsongError

logger = logging.getLogger(__name__)


@dataclass
class CascadeTrainOptions:
    stage: str
    cache: Path
    out: Path
    featurization: str = "S"
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


@dataclass
class CascadeTrainResult:
    step: int
    start_step: int
    model_dir: Path
    losses: list[float]  # "loss/ce" of every step of this invocation (rank 0)
    valid: list[dict[str, float]] = field(default_factory=list)  # {"step", "valid/loss_ce", ...}
    stopped_early: bool = False
    rank: int = 0  # torch.distributed rank of this process (only rank 0 logs and saves)


class _Distributed:
    """torch.distributed from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); a no-op otherwise."""

    def __init__(self, device_name: str) -> None:
        import torch
        import torch.distributed as dist

        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(resolve_device(device_name))
        if self.world > 1:
            if self.device.type == "cuda":
                self.device = torch.device("cuda", self.local_rank)
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                dist.init_process_group(backend="nccl" if self.device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def any(self, flag: bool) -> bool:
        """True on every rank if `flag` is true on any (stop decisions must agree)."""
        if self.world == 1:
            return flag
        import torch
        import torch.distributed as dist

        value = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def close(self) -> None:
        import torch.distributed as dist

        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


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
    import numpy as np
    import torch
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    from models.cascade import STAGES, StageConfig, StageLM, TransformerConfig, build_stage_config
    from models.checkpoint import has_training_state, load_training_state, read_checkpoint_config, save_training_state
    from pipelines.tokens.reader import TokenCache
    from pipelines.training.cascade_data import WindowSampler, cache_streams
    from pipelines.training.schedule import WarmupCosine, warmup_cosine_scheduler

    if options.stage not in STAGES:
        raise SingsongError(f"unknown stage {options.stage!r}; choose from {', '.join(STAGES)}")
    started = time.monotonic()
    deadline = started + options.max_minutes * 60 if options.max_minutes else math.inf
    if options.threads:
        torch.set_num_threads(options.threads)
    dist = _Distributed(options.device)
    device = dist.device
    out = Path(options.out)
    model_dir = out / "model"
    resuming = options.resume and has_training_state(model_dir)

    cache = TokenCache(options.cache)
    vocal = condition_streams_of(options)
    try:
        requested = build_stage_config(
            options.stage,
            cache_streams(cache),
            vocal,
            transformer=TransformerConfig(
                options.d_model,
                options.layers,
                options.heads,
                num_kv_heads=options.kv_heads or None,
                dropout=options.dropout,
            ),
            window_seconds=options.window_seconds,
            prompt_seconds=options.prompt_seconds,
        )
    except ValueError as error:
        raise SingsongError(f"{options.cache}: {error}") from error
    if resuming:
        config = StageConfig.from_dict(read_checkpoint_config(model_dir, kind="cascade_stage")["config"])
        if config != requested:
            logger.warning("resuming %s: keeping its saved stage config, not this command's sizes/streams", out)
    else:
        config = requested
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_args.json").write_text(json.dumps(asdict(options), default=str, indent=2))

    train_data = WindowSampler(
        cache, config, "train", noise_prob=options.noise_prob, short_window_prob=options.short_window_prob
    )
    valid_batches: list[dict[str, torch.Tensor]] = []
    if dist.main and options.valid_batches > 0 and cache.indices("valid"):
        valid_data = WindowSampler(cache, config, "valid", noise_prob=train_data.noise_prob)
        valid_batches = valid_data.fixed_batches(options.valid_batches, options.batch_size, seed=options.seed)
    elif dist.main:
        logger.warning("%s has no 'valid' items: no validation loss", options.cache)

    torch.manual_seed(options.seed)
    model = StageLM(config).to(device)
    optimizer = make_optimizer(model, options)
    scheduler = warmup_cosine_scheduler(
        optimizer, warmup_steps=options.warmup, total_steps=options.steps, min_ratio=options.min_lr_ratio
    )
    step = 0
    if resuming:
        step = load_training_state(model_dir, model=model, optimizer=optimizer, scheduler=scheduler)["step"]
        scheduler.lr_lambdas[0] = WarmupCosine(
            warmup_steps=options.warmup, total_steps=options.steps, min_ratio=options.min_lr_ratio
        )
        scheduler.base_lrs = [options.lr for _ in optimizer.param_groups]
        logger.info("resumed %s at step %d", model_dir, step)
    start_step = step
    rng = np.random.default_rng([options.seed, step, dist.rank])  # resumed runs and ranks draw new windows
    torch.manual_seed(options.seed * 1_000_003 + step * 101 + dist.rank)
    trained = model
    if dist.world > 1:
        trained = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    model.train()
    use_amp = options.amp and device.type == "cuda"
    noise_note = {
        name: {"stream": noisy, "probability": train_data.noise_prob} for name, noisy in train_data.noisy.items()
    }
    writer = SummaryWriter(str(out / "tensorboard")) if dist.main else None
    history = (out / "history.jsonl").open("a") if dist.main else None
    valid_log: list[dict[str, float]] = []
    last_valid: dict[str, float] = {}
    best_dir = out / "best"
    best_loss = math.inf
    if best_dir.is_dir():  # a resumed run keeps its best so far
        best_valid = read_checkpoint_config(best_dir).get("extra", {}).get("valid", {})
        best_loss = float(best_valid.get("valid/loss_ce", math.inf))

    def notes() -> dict[str, Any]:
        return {
            "step": step,
            "train_options": json.loads(json.dumps(asdict(options), default=str)),
            "cache": str(options.cache),
            "condition_noise": noise_note,
            "window_seconds_trained": train_data.window_seconds,
            "valid": dict(last_valid),
        }

    def validate() -> None:
        nonlocal best_loss
        if not valid_batches:
            return
        scalars = evaluate(model, valid_batches, device, amp=use_amp)
        last_valid.clear()
        last_valid.update(scalars)
        valid_log.append({"step": step, **scalars})
        for key, value in scalars.items():
            writer.add_scalar(key, value, step)
        history.write(json.dumps({"step": step, **scalars}) + "\n")
        history.flush()
        if scalars["valid/loss_ce"] < best_loss:
            best_loss = scalars["valid/loss_ce"]
            model.save_pretrained(best_dir, extra=notes())

    def save() -> None:
        if not dist.main:
            return
        model.save_pretrained(model_dir, extra=notes())
        save_training_state(model_dir, model=model, optimizer=optimizer, scheduler=scheduler, step=step)
        writer.flush()

    losses: list[float] = []
    stopped_early = False
    stop_signal: list[int] = []
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        previous_handler = signal.signal(signal.SIGTERM, lambda number, frame: stop_signal.append(number))
    last_log = time.monotonic()
    bar = tqdm(
        total=options.steps,
        initial=step,
        desc=f"train {options.stage}",
        unit="step",
        disable=not (options.progress and dist.main),
    )
    if dist.main:
        logger.info(
            "stage %s: %.2fM parameters, conditions %s, window %.2f s, %d training items",
            config.stage,
            model.num_parameters() / 1e6,
            [c.name for c in config.conditions],
            train_data.window_seconds,
            len(train_data.items),
        )
    try:
        while step < options.steps:
            if dist.any(bool(stop_signal) or time.monotonic() >= deadline):
                stopped_early = True
                logger.info("stopping at step %d (time budget used up or SIGTERM): saving", step)
                break
            batch = {k: v.to(device, non_blocking=True) for k, v in train_data.batch(options.batch_size, rng).items()}
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss, terms = trained(batch, cond_dropout=options.cond_dropout)
            if not torch.isfinite(loss):
                raise SingsongError(f"training diverged at step {step} (loss is {loss.item()}); lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), options.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            losses.append(float(loss.detach()))
            bar.update(1)
            if dist.main and (step % options.log_every == 0 or step == options.steps):
                now = time.monotonic()
                scalars = {key: float(value) for key, value in terms.items()}
                scalars["train/lr"] = scheduler.get_last_lr()[0]
                scalars["train/grad_norm"] = float(grad_norm)
                scalars["train/steps_per_second"] = options.log_every / max(now - last_log, 1e-9)
                last_log = now
                for key, value in scalars.items():
                    writer.add_scalar(key, value, step)
                history.write(json.dumps({"step": step, **scalars}) + "\n")
                history.flush()
                bar.set_postfix(loss=f"{scalars['loss/ce']:.3f}", acc=f"{scalars['metrics/accuracy']:.2f}")
            if dist.main and options.valid_every and step % options.valid_every == 0:
                validate()
            if step % options.save_every == 0 and step < options.steps:
                save()
        if dist.main and (not valid_log or valid_log[-1]["step"] != step):
            validate()
        save()
    except KeyboardInterrupt:
        logger.info("interrupted at step %d: saving", step)
        save()
        raise
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        if history is not None:
            history.close()
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_handler)
        dist.close()
    if dist.main:
        logger.info("stage %s saved to %s (step %d)", options.stage, model_dir, step)
    return CascadeTrainResult(
        step=step,
        start_step=start_step,
        model_dir=model_dir,
        losses=losses,
        valid=valid_log,
        stopped_early=stopped_early,
        rank=dist.rank,
    )


def evaluate_model(
    model_dir: Path,
    cache_dir: Path,
    *,
    split: str = "test",
    batches: int = 8,
    batch_size: int = 8,
    noise_prob: float = 0.0,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, dict[str, float]]:
    """Teacher-forced scalars of every stage of a cascade model directory on windows of a cache split.

    Stages conditioned on the vocal are also scored with every window's vocal streams swapped for another
    window's of the same batch (`valid/loss_ce_other_vocal`): the gap to `valid/loss_ce` is how much the
    stage's predictions depend on *this* vocal (0 = it ignores the vocal).
    """
    from models.cascade import Cascade
    from pipelines.tokens.reader import TokenCache
    from pipelines.training.cascade_data import WindowSampler

    if (Path(model_dir) / "singsong.json").is_file():  # a complete model directory: its cascade part
        from pipelines.inference.model_dir import read_manifest

        model_dir = Path(model_dir) / read_manifest(model_dir).cascade
    cascade = Cascade.from_pretrained(model_dir, device=resolve_device(device))
    cache = TokenCache(cache_dir)
    results = {}
    for name, stage in cascade.stages.items():
        data = WindowSampler(cache, stage.config, split, noise_prob=noise_prob)
        fixed = data.fixed_batches(batches, batch_size, seed=seed)
        results[name] = evaluate(stage, fixed, cascade.device)
        guided = set(stage.config.guided)
        if guided and batch_size > 1:
            swapped = [{k: v.roll(1, dims=0) if k in guided else v for k, v in batch.items()} for batch in fixed]
            results[name]["valid/loss_ce_other_vocal"] = evaluate(stage, swapped, cascade.device)["valid/loss_ce"]
    return results


def _run(args: argparse.Namespace) -> int:
    # Every option has a command-line flag of the same name (dashes for underscores), except these three.
    special = {"cache", "out", "condition_streams", "progress"}
    values = {f.name: getattr(args, f.name) for f in fields(CascadeTrainOptions) if f.name not in special}
    streams = tuple(s for s in (args.condition_streams or "").split(",") if s) or None
    options = CascadeTrainOptions(
        **values, cache=Path(args.cache), out=Path(args.out), condition_streams=streams, progress=not args.no_progress
    )
    result = train_cascade(options)
    if result.rank != 0:
        return 0
    status = "stopped early (rerun the command to resume)" if result.stopped_early else "done"
    valid = f", valid loss {result.valid[-1]['valid/loss_ce']:.4f}" if result.valid else ""
    print(f"cascade {options.stage}: {status} at step {result.step}/{options.steps}{valid} -> {result.model_dir}")
    return 0


def _run_assemble(args: argparse.Namespace) -> int:
    import torch

    from models.cascade import build_cascade

    out = Path(args.out)
    if args.codec is not None:
        # A complete model directory for `singsong accompany`: tokenizers + cascade + singsong.json.
        from pipelines.inference.model_dir import ModelManifest, copy_tokenizer, write_manifest

        copy_tokenizer(args.codec, out / "codec")
        if args.semantic_tokenizer is not None:
            copy_tokenizer(args.semantic_tokenizer, out / "semantic")
        out = out / "cascade"
    cascade = build_cascade(
        out,
        semantic=args.semantic,
        coarse=args.coarse,
        fine=args.fine,
        delay=args.delay,
        featurization=args.featurization,
        weights_dtype={"float32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}[args.weights_dtype],
    )
    sizes = ", ".join(f"{name} {count / 1e6:.2f}M" for name, count in cascade.num_parameters().items())
    print(f"cascade ({cascade.featurization}, {cascade.acoustic} back-end; {sizes}) -> {out}")
    if args.codec is not None:
        from pipelines.inference.accompanist import Accompanist

        manifest = ModelManifest(
            featurization=cascade.featurization,
            vocal_noise_snr_db=args.vocal_noise_snr,
            semantic="semantic" if args.semantic_tokenizer is not None else None,
        )
        write_manifest(args.out, manifest)
        Accompanist.from_pretrained(args.out)  # fails with a message naming any part that does not fit
        print(f"model directory for `singsong accompany --model {args.out}` is complete")
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    results = evaluate_model(
        Path(args.model),
        Path(args.cache),
        split=args.split,
        batches=args.batches,
        batch_size=args.batch_size,
        noise_prob=args.noise_prob,
        seed=args.seed,
        device=args.device,
    )
    for name, scalars in results.items():
        other = scalars.get("valid/loss_ce_other_vocal")
        versus = f"  (another song's vocal: loss {other:.4f})" if other is not None else ""
        print(
            f"{name:9s} loss {scalars['valid/loss_ce']:.4f}  accuracy {scalars['valid/metrics_accuracy']:.3f}{versus}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


# Literal CLI choices (kept equal to models.cascade.stage's by a test): importing the model package in
# `register` would load torch and make every `singsong --help` slow.
CLI_STAGES = ("semantic", "coarse", "fine", "delay")
CLI_FEATURIZATIONS = ("M", "S", "SA")


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    """Add `singsong train cascade`, `singsong train cascade-assemble` and `singsong eval cascade`."""

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
    parser.set_defaults(handler=_run)

    assemble = groups["train"].add_parser(
        "cascade-assemble",
        help="put trained cascade stages into one model directory",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    assemble.add_argument("--semantic", required=True, help="run directory or stage checkpoint")
    assemble.add_argument("--coarse", default=None)
    assemble.add_argument("--fine", default=None)
    assemble.add_argument("--delay", default=None)
    assemble.add_argument("--featurization", default=None, choices=sorted(CLI_FEATURIZATIONS), help="check it")
    assemble.add_argument("--out", required=True, help="model directory to write")
    assemble.add_argument(
        "--weights-dtype",
        default="float32",
        choices=("float32", "float16", "bfloat16"),
        help="precision the stage weights are stored at (float16: half the size, to ship)",
    )
    assemble.add_argument(
        "--codec", default=None, help="codec checkpoint or run: write a complete model directory (tokenizers + cascade)"
    )
    assemble.add_argument("--semantic-tokenizer", default=None, help="semantic tokenizer directory (with --codec)")
    assemble.add_argument(
        "--vocal-noise-snr",
        type=float,
        default=20.0,
        help="SNR (dB) of the white noise added to vocals at inference (with --codec)",
    )
    assemble.set_defaults(handler=_run_assemble)

    evaluation = groups["eval"].add_parser(
        "cascade",
        help="teacher-forced loss/accuracy of every stage of a cascade model on a token cache split",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    evaluation.add_argument("--model", required=True, help="model directory (or its cascade/ part)")
    evaluation.add_argument("--cache", required=True, help="token cache directory")
    evaluation.add_argument("--split", default="test")
    evaluation.add_argument("--batches", type=int, default=8)
    evaluation.add_argument("--batch-size", type=int, default=8)
    evaluation.add_argument("--noise-prob", type=float, default=0.0, help="noisy vocal condition probability")
    evaluation.add_argument("--seed", type=int, default=0)
    evaluation.add_argument("--device", default="cpu")
    evaluation.add_argument("--json", default=None, help="also write the results to this JSON file")
    evaluation.set_defaults(handler=_run_eval)


__all__ = ["CascadeTrainOptions", "CascadeTrainResult", "evaluate", "evaluate_model", "register", "train_cascade"]
