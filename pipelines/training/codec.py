"""`singsong train codec`: train the SEANet + RVQ codec from scratch on a folder or manifest of audio.

Recipe (EnCodec / SoundStream, scaled down for CPUs): random crops of `segment_seconds`, AdamW with
β = (0.5, 0.9) as in EnCodec, linear warmup + cosine decay (`schedule.py`), gradient clipping, codebooks
learnt by EMA with k-means initialisation on one large batch and Jukebox dead-code restarts, spectral +
waveform + commitment losses (`models/codec/losses.py`) and, with `--adversarial`, the multi-scale STFT
discriminator. bf16 autocast on CUDA.

A run directory holds::

    RUN_DIR/model/             codec checkpoint (loads with `load_codec`) + resumable training state
    RUN_DIR/discriminator/     discriminator training state (only with --adversarial)
    RUN_DIR/tensorboard/       scalars (losses, lr, grad norm, codebook perplexity/usage) and audio
    RUN_DIR/history.jsonl      the logged scalars, one JSON object per logging step
    RUN_DIR/train_args.json    the arguments of the latest invocation

Rerunning the same command resumes from `RUN_DIR/model` (unless `--no-resume`); `--steps` is the total
step count, so a finished run given a larger `--steps` trains further. `--max-minutes` bounds the wall time
of the invocation (loading included) and saves before stopping, as do Ctrl-C and SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.device import resolve_device
from core.errors import SingsongError

logger = logging.getLogger(__name__)


@dataclass
class CodecTrainOptions:
    data: Path
    out: Path
    stem: str | None = None
    split: str | None = "train"  # None: every file of the source
    preset: str = "small"
    config_json: str | None = None  # JSON object (inline or a file) overriding preset fields
    steps: int = 1000  # ~25 min for the small preset on 2 uncontended CPU cores (~1.4 s/step)
    batch_size: int = 8
    segment_seconds: float = 1.0
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: int = 50
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    device: str = "auto"
    amp: bool = True  # bf16 autocast, CUDA only
    adversarial: bool = False
    adversarial_start: int = 0
    save_every: int = 500
    log_every: int = 25
    max_minutes: float | None = None
    seed: int = 0
    resume: bool = True
    threads: int | None = None
    progress: bool = True


@dataclass
class CodecTrainResult:
    step: int  # optimizer steps done in total (including resumed ones)
    start_step: int  # the step this invocation started from
    model_dir: Path
    losses: list[float]  # "loss/total" of every step of this invocation
    stopped_early: bool  # the time budget ran out before `steps`


def codec_config_from_options(preset: str, config_json: str | None) -> Any:
    """The preset, with the fields of `config_json` (an inline JSON object or a file path) replaced."""
    from models.codec.config import CodecConfig, CodecConfigError, get_preset

    config = get_preset(preset)
    if not config_json:
        return config
    text = config_json if config_json.lstrip().startswith("{") else _read_text(Path(config_json))
    try:
        overrides = json.loads(text)
    except json.JSONDecodeError as error:
        raise CodecConfigError(f"--config-json: not valid JSON ({error})") from error
    if not isinstance(overrides, dict):
        raise CodecConfigError("--config-json must be a JSON object of CodecConfig fields")
    return CodecConfig.from_dict({**config.to_dict(), **overrides})


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        raise SingsongError(f"{path}: cannot read config JSON ({error.strerror})") from error


def training_files(source: Path, stem: str | None, split: str | None) -> list[Path]:
    """Files of `split`; a plain folder without split sub-folders falls back to all its files."""
    from core.datasets import MANIFEST_NAME, DatasetError, list_audio_files

    try:
        return list_audio_files(source, stem=stem, split=split)
    except DatasetError:
        has_manifest = source.suffix == ".jsonl" or (source / MANIFEST_NAME).is_file()
        if split is None or has_manifest:
            raise
    logger.warning("%s has no '%s' split; using all of its audio files", source, split)
    return list_audio_files(source, stem=stem)


def train_codec(options: CodecTrainOptions) -> CodecTrainResult:
    """Train (or resume training) a codec as described in the module docstring."""
    import numpy as np
    import torch
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    from models.checkpoint import (
        has_training_state,
        load_training_state,
        read_checkpoint_config,
        save_training_state,
    )
    from models.codec import CHECKPOINT_KIND, CodecConfig, build_codec
    from models.codec.discriminator import MultiScaleSTFTDiscriminator
    from models.codec.losses import (
        CodecLoss,
        feature_matching_loss,
        hinge_discriminator_loss,
        hinge_generator_loss,
    )
    from pipelines.training.audio_crops import RandomCropDataset
    from pipelines.training.schedule import WarmupCosine, warmup_cosine_scheduler

    started = time.monotonic()
    deadline = started + options.max_minutes * 60 if options.max_minutes else math.inf
    if options.threads:
        torch.set_num_threads(options.threads)
    device = torch.device(resolve_device(options.device))
    out = Path(options.out)
    model_dir, disc_dir = out / "model", out / "discriminator"
    resuming = options.resume and has_training_state(model_dir)

    if resuming:
        config = CodecConfig.from_dict(read_checkpoint_config(model_dir, kind=CHECKPOINT_KIND)["config"])
        requested = codec_config_from_options(options.preset, options.config_json)
        if requested != config:
            logger.warning("resuming %s: keeping its saved codec config, not --preset/--config-json", out)
    else:
        config = codec_config_from_options(options.preset, options.config_json)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_args.json").write_text(json.dumps(asdict(options), default=str, indent=2))

    files = training_files(Path(options.data), options.stem, options.split)
    segment = max(config.hop_length, round(options.segment_seconds * config.sample_rate))
    dataset = RandomCropDataset(
        files,
        sample_rate=config.sample_rate,
        channels=config.channels,
        segment_samples=segment,
        progress=options.progress,
    )
    logger.info("training audio: %d files, %.1f minutes", len(dataset), dataset.total_seconds / 60)

    torch.manual_seed(options.seed)
    codec = build_codec(config).to(device)
    loss_fn = CodecLoss(sample_rate=config.sample_rate).to(device)
    optimizer = torch.optim.AdamW(
        codec.parameters(), lr=options.lr, betas=(0.5, 0.9), weight_decay=options.weight_decay
    )
    scheduler = warmup_cosine_scheduler(
        optimizer, warmup_steps=options.warmup, total_steps=options.steps, min_ratio=options.min_lr_ratio
    )
    discriminator = disc_optimizer = None
    if options.adversarial:
        discriminator = MultiScaleSTFTDiscriminator(channels=config.channels).to(device)
        disc_optimizer = torch.optim.AdamW(discriminator.parameters(), lr=options.lr, betas=(0.5, 0.9))

    step = 0
    if resuming:
        step = load_training_state(model_dir, model=codec, optimizer=optimizer, scheduler=scheduler)["step"]
        if discriminator is not None and has_training_state(disc_dir):
            load_training_state(disc_dir, model=discriminator, optimizer=disc_optimizer)
        # The schedule of this command line applies from here on (e.g. a larger --steps stretches the cosine).
        scheduler.lr_lambdas[0] = WarmupCosine(
            warmup_steps=options.warmup, total_steps=options.steps, min_ratio=options.min_lr_ratio
        )
        scheduler.base_lrs = [options.lr for _ in optimizer.param_groups]
        logger.info("resumed %s at step %d", model_dir, step)
    start_step = step
    rng = np.random.default_rng([options.seed, step])  # a resumed run draws new crops
    torch.manual_seed(options.seed * 1_000_003 + step)

    if not codec.quantizer.initialized:
        frames_per_crop = codec.num_frames(segment)
        crops = min(256, max(options.batch_size, math.ceil(4 * config.codebook_size / frames_per_crop)))
        logger.info("k-means initialisation of the codebooks on %d crops", crops)
        codec.init_codebooks(dataset.batch(crops, rng), frames_per_step=options.batch_size * frames_per_crop)
    codec.train()

    writer = SummaryWriter(str(out / "tensorboard"))
    history = (out / "history.jsonl").open("a")
    use_amp = options.amp and device.type == "cuda"
    # Fixed crops: one to listen to in TensorBoard, a batch to calibrate the latent normalisation on save.
    fixed_rng = np.random.default_rng(options.seed)
    preview = dataset.batch(1, fixed_rng)
    calibration = dataset.batch(max(options.batch_size, 16), fixed_rng)

    def save() -> None:
        codec.calibrate_latent_norm(calibration)
        extra = {"step": step, "train_options": json.loads(json.dumps(asdict(options), default=str))}
        codec.save_pretrained(model_dir, extra=extra)
        save_training_state(model_dir, model=codec, optimizer=optimizer, scheduler=scheduler, step=step)
        if discriminator is not None:
            save_training_state(disc_dir, model=discriminator, optimizer=disc_optimizer, step=step)
        codec.eval()
        with torch.no_grad():
            heard = codec(preview.to(device)).reconstruction.float().clamp(-1, 1)
        codec.train()
        writer.add_audio("audio/reconstruction", heard[0, :1].cpu(), step, sample_rate=config.sample_rate)
        writer.add_audio("audio/input", preview[0, :1], step, sample_rate=config.sample_rate)
        writer.flush()

    losses: list[float] = []
    stopped_early = False
    stop_signal: list[int] = []  # SIGTERM (e.g. a scheduler preempting the job) stops cleanly with a save
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        previous_handler = signal.signal(signal.SIGTERM, lambda number, frame: stop_signal.append(number))
    last_log = time.monotonic()
    bar = tqdm(total=options.steps, initial=step, desc="train codec", unit="step", disable=not options.progress)
    try:
        while step < options.steps:
            if stop_signal:
                stopped_early = True
                logger.info("SIGTERM received at step %d: saving and stopping", step)
                break
            if time.monotonic() >= deadline:
                stopped_early = True
                logger.info("time budget of %.1f minutes used up at step %d", options.max_minutes, step)
                break
            wav = dataset.batch(options.batch_size, rng).to(device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
                output = codec(wav)
            total, terms = loss_fn(output, wav)
            adversarial_on = discriminator is not None and step >= options.adversarial_start
            if adversarial_on:
                fake = output.reconstruction.float()
                real_logits, _ = discriminator(wav)
                fake_logits, _ = discriminator(fake.detach())
                disc_loss = hinge_discriminator_loss(real_logits, fake_logits)
                disc_optimizer.zero_grad(set_to_none=True)
                disc_loss.backward()
                disc_optimizer.step()
                fake_logits, fake_features = discriminator(fake)
                with torch.no_grad():
                    _, real_features = discriminator(wav)
                terms["loss/adversarial"] = hinge_generator_loss(fake_logits)
                terms["loss/feature_matching"] = feature_matching_loss(real_features, fake_features)
                terms["loss/discriminator"] = disc_loss.detach()
                weights = loss_fn.weights
                total = (
                    total
                    + weights.adversarial * terms["loss/adversarial"]
                    + weights.feature_matching * terms["loss/feature_matching"]
                )
                terms["loss/total"] = total
            if not torch.isfinite(total):
                raise SingsongError(f"training diverged at step {step} (loss is {total.item()}); lower --lr")
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(codec.parameters(), options.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            losses.append(float(total.detach()))
            bar.update(1)
            if step % options.log_every == 0 or step == options.steps:
                now = time.monotonic()
                scalars = {key: float(value.detach()) for key, value in terms.items()}
                scalars["train/lr"] = scheduler.get_last_lr()[0]
                scalars["train/grad_norm"] = float(grad_norm)
                scalars["train/steps_per_second"] = options.log_every / max(now - last_log, 1e-9)
                last_log = now
                for level, (ppl, used) in enumerate(zip(output.perplexity, output.usage, strict=True)):
                    scalars[f"codebook/perplexity_{level}"] = float(ppl)
                    scalars[f"codebook/usage_{level}"] = float(used)
                for key, value in scalars.items():
                    writer.add_scalar(key, value, step)
                history.write(json.dumps({"step": step, **scalars}) + "\n")
                history.flush()
                bar.set_postfix(loss=f"{scalars['loss/total']:.3f}", mel=f"{scalars['loss/mel']:.3f}")
            if step % options.save_every == 0 and step < options.steps:
                save()
        save()
    except KeyboardInterrupt:
        logger.info("interrupted at step %d: saving", step)
        save()
        raise
    finally:
        bar.close()
        writer.close()
        history.close()
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_handler)
    logger.info("codec saved to %s (step %d)", model_dir, step)
    return CodecTrainResult(
        step=step, start_step=start_step, model_dir=model_dir, losses=losses, stopped_early=stopped_early
    )


def _run(args: argparse.Namespace) -> int:
    options = CodecTrainOptions(
        data=Path(args.data),
        out=Path(args.out),
        stem=args.stem,
        split=None if args.split in ("", "all") else args.split,
        preset=args.preset,
        config_json=args.config_json,
        steps=args.steps,
        batch_size=args.batch_size,
        segment_seconds=args.segment_seconds,
        lr=args.lr,
        min_lr_ratio=args.min_lr_ratio,
        warmup=args.warmup,
        weight_decay=args.weight_decay,
        grad_clip=args.grad_clip,
        device=args.device,
        amp=not args.no_amp,
        adversarial=args.adversarial,
        adversarial_start=args.adversarial_start,
        save_every=args.save_every,
        log_every=args.log_every,
        max_minutes=args.max_minutes,
        seed=args.seed,
        resume=args.resume,
        threads=args.threads,
    )
    result = train_codec(options)
    status = "stopped early (rerun the command to resume)" if result.stopped_early else "done"
    print(f"codec: {status} at step {result.step}/{options.steps} -> {result.model_dir}")
    return 0


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    """Add `singsong train codec`."""
    defaults = CodecTrainOptions(data=Path(), out=Path())
    parser = groups["train"].add_parser(
        "codec",
        help="train the neural audio codec (acoustic tokens) from scratch",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", required=True, help="audio folder, corpus folder or manifest .jsonl")
    parser.add_argument("--out", required=True, help="run directory (resumed if it exists)")
    parser.add_argument("--stem", default=None, help="manifest stem to train on, e.g. mixture")
    parser.add_argument("--split", default="train", help="manifest split ('all' for every file)")
    parser.add_argument("--preset", default=defaults.preset, choices=["tiny", "small", "base"])
    parser.add_argument("--config-json", default=None, help="CodecConfig overrides: JSON object or file")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="total optimizer steps")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--segment-seconds", type=float, default=defaults.segment_seconds)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--min-lr-ratio", type=float, default=defaults.min_lr_ratio)
    parser.add_argument("--warmup", type=int, default=defaults.warmup, help="warmup steps")
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--grad-clip", type=float, default=defaults.grad_clip)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--no-amp", action="store_true", help="disable bf16 autocast on CUDA")
    parser.add_argument("--adversarial", action="store_true", help="add the MS-STFT discriminator")
    parser.add_argument("--adversarial-start", type=int, default=0, help="step the discriminator starts")
    parser.add_argument("--save-every", type=int, default=defaults.save_every)
    parser.add_argument("--log-every", type=int, default=defaults.log_every)
    parser.add_argument("--max-minutes", type=float, default=None, help="wall-time budget, then save")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.set_defaults(handler=_run)


__all__ = ["CodecTrainOptions", "CodecTrainResult", "codec_config_from_options", "register", "train_codec"]
