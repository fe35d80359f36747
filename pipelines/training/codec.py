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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import SingsongError
from pipelines.training.run import RunConfig, TrainingRun, options_dict

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

    from pipelines.training.audio_crops import RandomCropDataset

    out = Path(options.out)
    run = TrainingRun(
        RunConfig.from_options(
            options,
            out=out,
            state_dir=out / "model",
            loss_key="loss/total",
            desc="train codec",
            postfix={"loss": "loss/total", "mel": "loss/mel"},
        )
    )
    config = _run_config(run, options)
    run.write_args(options)
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
    trainer = _CodecTrainer(run, options, config)
    rng = run.rng()
    trainer.init_codebooks(dataset, segment, rng)
    # Fixed crops: one to listen to in TensorBoard, a batch to calibrate the latent normalisation on save.
    fixed_rng = np.random.default_rng(options.seed)
    trainer.preview = dataset.batch(1, fixed_rng)
    trainer.calibration = dataset.batch(max(options.batch_size, 16), fixed_rng)

    def train_step() -> dict[str, Any]:
        return trainer.step(dataset.batch(options.batch_size, rng).to(run.device))

    result = run.fit(train_step, save=trainer.save, scheduler=trainer.scheduler)
    logger.info("codec saved to %s (step %d)", trainer.model_dir, result.step)
    return CodecTrainResult(
        step=result.step,
        start_step=result.start_step,
        model_dir=trainer.model_dir,
        losses=result.losses,
        stopped_early=result.stopped_early,
    )


def _run_config(run: TrainingRun, options: CodecTrainOptions) -> Any:
    """The codec config: the saved one when resuming (a run keeps its architecture), else the options'."""
    from models.checkpoint import read_checkpoint_config
    from models.codec import CHECKPOINT_KIND, CodecConfig

    requested = codec_config_from_options(options.preset, options.config_json)
    if not run.resuming:
        return requested
    config = CodecConfig.from_dict(read_checkpoint_config(run.config.state_dir, kind=CHECKPOINT_KIND)["config"])
    if requested != config:
        logger.warning("resuming %s: keeping its saved codec config, not --preset/--config-json", options.out)
    return config


class _CodecTrainer:
    """The codec, its losses, optimizers and (with --adversarial) discriminator: one step, one save."""

    def __init__(self, run: TrainingRun, options: CodecTrainOptions, config: Any) -> None:
        import torch

        from models.checkpoint import has_training_state, load_training_state
        from models.codec import build_codec
        from models.codec.discriminator import MultiScaleSTFTDiscriminator
        from models.codec.losses import CodecLoss
        from pipelines.training.schedule import warmup_cosine_scheduler

        self.run, self.options, self.config = run, options, config
        self.model_dir, self.disc_dir = run.config.state_dir, Path(options.out) / "discriminator"
        device = run.device
        self.codec = build_codec(config).to(device)
        self.loss_fn = CodecLoss(sample_rate=config.sample_rate).to(device)
        betas = (0.5, 0.9)  # EnCodec's
        self.optimizer = torch.optim.AdamW(
            self.codec.parameters(), lr=options.lr, betas=betas, weight_decay=options.weight_decay
        )
        self.scheduler = warmup_cosine_scheduler(
            self.optimizer, warmup_steps=options.warmup, total_steps=options.steps, min_ratio=options.min_lr_ratio
        )
        self.discriminator = self.disc_optimizer = None
        if options.adversarial:
            self.discriminator = MultiScaleSTFTDiscriminator(channels=config.channels).to(device)
            self.disc_optimizer = torch.optim.AdamW(self.discriminator.parameters(), lr=options.lr, betas=betas)
        resuming = run.resuming
        run.restore(self.codec, self.optimizer, self.scheduler)
        if resuming and self.discriminator is not None and has_training_state(self.disc_dir):
            load_training_state(self.disc_dir, model=self.discriminator, optimizer=self.disc_optimizer)
        self.use_amp = options.amp and device.type == "cuda"
        self.preview: Any = None
        self.calibration: Any = None

    def init_codebooks(self, dataset: Any, segment: int, rng: Any) -> None:
        """k-means initialisation of the codebooks on one large batch (once per run, before the first step)."""
        if not self.codec.quantizer.initialized:
            frames_per_crop = self.codec.num_frames(segment)
            batch = self.options.batch_size
            crops = min(256, max(batch, math.ceil(4 * self.config.codebook_size / frames_per_crop)))
            logger.info("k-means initialisation of the codebooks on %d crops", crops)
            self.codec.init_codebooks(dataset.batch(crops, rng), frames_per_step=batch * frames_per_crop)
        self.codec.train()

    def step(self, wav: Any) -> dict[str, Any]:
        """One optimizer step on a batch `[B, C, T]`; returns the step's scalars."""
        import torch

        with torch.autocast(device_type=wav.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
            output = self.codec(wav)
        total, terms = self.loss_fn(output, wav)
        if self.discriminator is not None and self.run.step >= self.options.adversarial_start:
            total = self._adversarial(wav, output.reconstruction.float(), total, terms)
        grad_norm = self.run.optimize(
            total, self.codec, self.optimizer, self.scheduler, grad_clip=self.options.grad_clip
        )
        terms = {key: value.detach() for key, value in terms.items()}
        terms["train/grad_norm"] = grad_norm
        for level, (ppl, used) in enumerate(zip(output.perplexity, output.usage, strict=True)):
            terms[f"codebook/perplexity_{level}"] = ppl
            terms[f"codebook/usage_{level}"] = used
        return terms

    def _adversarial(self, wav: Any, fake: Any, total: Any, terms: dict[str, Any]) -> Any:
        """Update the discriminator (hinge loss), add the generator's adversarial + feature-matching terms."""
        import torch

        from models.codec.losses import feature_matching_loss, hinge_discriminator_loss, hinge_generator_loss

        real_logits, _ = self.discriminator(wav)
        fake_logits, _ = self.discriminator(fake.detach())
        disc_loss = hinge_discriminator_loss(real_logits, fake_logits)
        self.disc_optimizer.zero_grad(set_to_none=True)
        disc_loss.backward()
        self.disc_optimizer.step()
        fake_logits, fake_features = self.discriminator(fake)
        with torch.no_grad():
            _, real_features = self.discriminator(wav)
        terms["loss/adversarial"] = hinge_generator_loss(fake_logits)
        terms["loss/feature_matching"] = feature_matching_loss(real_features, fake_features)
        terms["loss/discriminator"] = disc_loss.detach()
        weights = self.loss_fn.weights
        total = (
            total
            + weights.adversarial * terms["loss/adversarial"]
            + weights.feature_matching * terms["loss/feature_matching"]
        )
        terms["loss/total"] = total
        return total

    def save(self) -> None:
        """The codec checkpoint + training state (+ discriminator's), and a reconstruction to listen to."""
        import torch

        run, codec = self.run, self.codec
        codec.calibrate_latent_norm(self.calibration)
        codec.save_pretrained(self.model_dir, extra={"step": run.step, "train_options": options_dict(self.options)})
        run.save_state(codec, self.optimizer, self.scheduler)
        if self.discriminator is not None:
            run.save_state(self.discriminator, self.disc_optimizer, directory=self.disc_dir)
        codec.eval()
        with torch.no_grad():
            heard = codec(self.preview.to(run.device)).reconstruction.float().clamp(-1, 1)
        codec.train()
        rate = self.config.sample_rate
        run.writer.add_audio("audio/reconstruction", heard[0, :1].cpu(), run.step, sample_rate=rate)
        run.writer.add_audio("audio/input", self.preview[0, :1], run.step, sample_rate=rate)


def _run(args: argparse.Namespace) -> int:
    if args.kind == "spectral":
        from pipelines.training.spectral_codec import run_from_args

        return run_from_args(args)
    defaults = CodecTrainOptions(data=Path(), out=Path())
    for name in ("preset", "steps", "batch_size", "segment_seconds", "lr", "warmup", "save_every"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(defaults, name))
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
        help="train an acoustic codec (SEANet or spectral, --kind) from scratch",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--kind",
        default="seanet",
        choices=["seanet", "spectral"],
        help="seanet: waveform SEANet + RVQ codec; spectral: log-mel RVQ codec (pitch-true, trains on CPU; "
        "pipelines/training/spectral_codec.py)",
    )
    parser.add_argument("--data", required=True, help="audio folder, corpus folder or manifest .jsonl")
    parser.add_argument("--out", required=True, help="run directory (resumed if it exists)")
    parser.add_argument("--stem", default=None, help="manifest stem to train on, e.g. mixture (seanet)")
    parser.add_argument("--split", default="train", help="manifest split ('all' for every file)")
    parser.add_argument(
        "--preset",
        default=None,
        help=f"seanet: tiny, small, base (default {defaults.preset}); spectral: tiny, small, small50",
    )
    parser.add_argument("--config-json", default=None, help="CodecConfig overrides: JSON object or file")
    # Defaults of None are the chosen --kind's own (seanet: CodecTrainOptions; spectral: SpectralTrainOptions).
    parser.add_argument("--steps", type=int, default=None, help=f"total optimizer steps (seanet {defaults.steps})")
    parser.add_argument("--batch-size", type=int, default=None, help=f"(seanet {defaults.batch_size})")
    parser.add_argument("--segment-seconds", type=float, default=None, help=f"(seanet {defaults.segment_seconds})")
    parser.add_argument("--lr", type=float, default=None, help=f"(seanet {defaults.lr})")
    parser.add_argument(
        "--sources", default="mixture,instrumental", help="spectral: per song, mixture and/or drums+bass+other"
    )
    parser.add_argument("--max-songs", type=int, default=None, help="spectral: use at most this many songs")
    parser.add_argument("--export", default=None, help="spectral: also write an inference-only copy here (float16)")
    parser.add_argument("--chroma-weight", type=float, default=None, help="spectral: chroma loss weight (1.0)")
    parser.add_argument(
        "--low-band-weight", type=float, default=None, help="spectral: loss weight of bands below 1 kHz (2.0)"
    )
    parser.add_argument(
        "--bass-weight", type=float, default=None, help="spectral: extra loss weight of bands below 250 Hz (1.0)"
    )
    parser.add_argument(
        "--chroma-fmin", type=float, default=None, help="spectral: lowest band (Hz) in the chroma term (65)"
    )
    parser.add_argument("--min-lr-ratio", type=float, default=defaults.min_lr_ratio)
    parser.add_argument("--warmup", type=int, default=None, help=f"warmup steps (seanet {defaults.warmup})")
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--grad-clip", type=float, default=defaults.grad_clip)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--no-amp", action="store_true", help="disable bf16 autocast on CUDA")
    parser.add_argument("--adversarial", action="store_true", help="add the MS-STFT discriminator")
    parser.add_argument("--adversarial-start", type=int, default=0, help="step the discriminator starts")
    parser.add_argument("--save-every", type=int, default=None, help=f"(seanet {defaults.save_every})")
    parser.add_argument("--log-every", type=int, default=defaults.log_every)
    parser.add_argument("--max-minutes", type=float, default=None, help="wall-time budget, then save")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.set_defaults(handler=_run)


__all__ = ["CodecTrainOptions", "CodecTrainResult", "codec_config_from_options", "register", "train_codec"]
