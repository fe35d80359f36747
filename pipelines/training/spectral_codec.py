"""`singsong train codec --kind spectral`: train the log-mel RVQ codec (`models/codec/spectral.py`) on CPU.

The cascade tokenizes instrumentals, so every training song contributes two clips: its `mixture` and its
instrumental, the sum of the `drums`, `bass` and `other` stems (as `pipelines/tokens/cache.py` forms it);
folders without stems contribute the files themselves. Each clip's log-mel is computed once with the codec's
fixed front end and kept in memory as float16 (256 bands x 50 frames/s: 25 KB per second), so a training step
costs only the frame-rate networks: batches are random crops of `segment_seconds`.

Recipe: the feature standardisation and the codebooks (k-means, few iterations) are initialised from one large
batch; AdamW with linear warmup + cosine decay; loss = L1 + L2 between predicted and true log-mel (in the
standardised feature space) + commitment + a chroma term. Two terms steer capacity to pitch, which a plain
standardised loss spreads evenly over 256 bands (the first codec_v2 lost most where pitch lives: log-mel
error 0.3-0.47 nepers below ~750 Hz vs 0.06-0.2 above ~3 kHz, chroma correlation 0.86 against the front
end's own 0.98): bands below 1 kHz weigh `low_band_weight` times more (the mean weight stays 1), and
`chroma_weight` x the L1 distance between the pitch-class profiles (`LogMel.chroma_matrix`, 65-2100 Hz, each
frame normalised to sum 1) of the predicted and true frames. `bass_weight` multiplies the bands below 250 Hz
on top (see `band_weights`: the constant-Q chroma that judges pitch draws most of its energy from there), and
`chroma_fmin` lets the chroma term reach down to the bass fundamentals (30 Hz instead of 65). Quantizer dropout
(per example, a random number of levels) trains the coarse-only decode that the cascade's first stage relies on.
The training-run skeleton (`run.py`) gives resume, `--max-minutes`, tqdm, TensorBoard and `history.jsonl`.

    RUN_DIR/model/    spectral codec checkpoint (loads with `models.loading.load_tokenizer`) + training state
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import SingsongError

logger = logging.getLogger(__name__)

#: Stems summed into a song's instrumental (the cascade's target; see pipelines/tokens/cache.py).
INSTRUMENTAL_STEMS = ("drums", "bass", "other")


@dataclass
class SpectralTrainOptions:
    data: Path
    out: Path
    split: str | None = "train"
    preset: str = "small"
    config_json: str | None = None
    sources: str = "mixture,instrumental"  # per song: the mixture file and/or the drums+bass+other sum
    max_songs: int | None = None
    steps: int = 7000
    batch_size: int = 8
    segment_seconds: float = 3.0
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup: int = 100
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    commitment_weight: float = 0.25
    chroma_weight: float = 1.0  # L1 between pitch-class profiles of predicted and true log-mel frames
    low_band_weight: float = 2.0  # weight of bands below 1 kHz (tapering to 1 at 2 kHz), mean weight kept 1
    bass_weight: float = 1.0  # extra factor on bands below 250 Hz (tapering to 1 at 500 Hz), on top of the above
    chroma_fmin: float = 65.0  # lowest band centre (Hz) the chroma term folds into pitch classes
    save_every: int = 500
    log_every: int = 25
    max_minutes: float | None = None
    seed: int = 0
    resume: bool = True
    threads: int | None = None
    device: str = "auto"
    progress: bool = True


def spectral_config_from_options(preset: str, config_json: str | None) -> Any:
    """The spectral preset, with the fields of `config_json` (inline JSON object or a file) replaced."""
    from models.codec.config import CodecConfigError
    from models.codec.spectral_config import SpectralCodecConfig, get_spectral_preset

    config = get_spectral_preset(preset)
    if not config_json:
        return config
    text = config_json
    if not config_json.lstrip().startswith("{"):
        try:
            text = Path(config_json).read_text()
        except OSError as error:
            raise SingsongError(f"{config_json}: cannot read config JSON ({error.strerror})") from error
    try:
        overrides = json.loads(text)
    except json.JSONDecodeError as error:
        raise CodecConfigError(f"--config-json: not valid JSON ({error})") from error
    if not isinstance(overrides, dict):
        raise CodecConfigError("--config-json must be a JSON object of SpectralCodecConfig fields")
    return SpectralCodecConfig.from_dict({**config.to_dict(), **overrides})


def song_clips(data: Path, split: str | None, sources: str, max_songs: int | None = None) -> list[tuple[Path, ...]]:
    """Clips to train or evaluate on: each a tuple of files to sum (one file, or a song's instrumental stems).

    `sources` is a comma list of `mixture` (the song's mixture, or the file itself in a plain folder) and
    `instrumental` (the sum of the song's drums, bass and other stems, when the song folder has them).
    """
    from pipelines.training.codec import training_files

    wanted = {s.strip() for s in sources.split(",") if s.strip()}
    if not wanted or wanted - {"mixture", "instrumental"}:
        raise SingsongError(f"--sources must list mixture and/or instrumental, got {sources!r}")
    clips: list[tuple[Path, ...]] = []
    songs = training_files(data, "mixture", split)
    for path in songs[:max_songs] if max_songs else songs:
        stems = tuple(path.with_name(f"{name}{path.suffix}") for name in INSTRUMENTAL_STEMS)
        has_stems = all(stem.is_file() for stem in stems)
        if "mixture" in wanted or not has_stems:
            clips.append((path,))
        if "instrumental" in wanted and has_stems:
            clips.append(stems)
    return clips


def load_clip(files: tuple[Path, ...], sample_rate: int) -> Any:
    """Mono float32 `[T]` at `sample_rate`: the sum of `files`, cut to the shortest."""
    import numpy as np

    from core.audio import load_audio

    parts = [load_audio(path, sample_rate=sample_rate, channels=1).samples[0] for path in files]
    length = min(len(part) for part in parts)
    return np.sum([part[:length] for part in parts], axis=0).astype(np.float32)


class LogMelCrops:
    """Every clip's log-mel `[M, F]` in memory (float16); random crops of `frames` analysis frames."""

    def __init__(self, clips: list[tuple[Path, ...]], codec: Any, frames: int, *, progress: bool = True) -> None:
        import torch
        from tqdm import tqdm

        from core.audio_errors import AudioError

        self.frames = frames
        self.features: list[torch.Tensor] = []
        for files in tqdm(clips, desc="log-mel", unit="clip", disable=not progress):
            try:
                audio = load_clip(files, codec.sample_rate)
            except AudioError as error:
                logger.warning("skipping %s", error)
                continue
            with torch.no_grad():
                mel = codec.mel(torch.from_numpy(audio)[None])[0]
            if mel.shape[-1] >= frames:
                self.features.append(mel.half())
        if not self.features:
            raise SingsongError(f"no training clip is at least {frames} frames long")
        lengths = torch.tensor([f.shape[-1] - frames + 1 for f in self.features], dtype=torch.float64)
        self.weights = (lengths / lengths.sum()).numpy()
        self.seconds = sum(f.shape[-1] for f in self.features) * codec.config.hop_length / codec.sample_rate

    def batch(self, size: int, rng: Any) -> Any:
        """`[size, M, frames]` float32 crops (clips drawn in proportion to their length)."""
        import torch

        crops = []
        for index in rng.choice(len(self.features), size=size, p=self.weights):
            feature = self.features[index]
            start = int(rng.integers(0, feature.shape[-1] - self.frames + 1))
            crops.append(feature[:, start : start + self.frames])
        return torch.stack(crops).float()


def train_spectral_codec(options: SpectralTrainOptions) -> Any:
    """Train (or resume) a spectral codec as described in the module docstring; returns the RunResult."""
    import torch

    from models.codec.spectral import build_spectral_codec
    from pipelines.training.run import RunConfig, TrainingRun, options_dict
    from pipelines.training.schedule import warmup_cosine_scheduler

    out = Path(options.out)
    run = TrainingRun(
        RunConfig.from_options(
            options,
            out=out,
            desc="train spectral codec",
            postfix={"loss": "loss/total", "mel": "loss/mel_l1"},
        )
    )
    config = _run_config(run, options)
    run.write_args(options)
    codec = build_spectral_codec(config)
    segment = max(1, round(options.segment_seconds * config.frame_rate)) * config.stack
    clips = song_clips(Path(options.data), options.split, options.sources, options.max_songs)
    crops = LogMelCrops(clips, codec, segment, progress=options.progress)
    logger.info("training audio: %d clips, %.1f minutes", len(crops.features), crops.seconds / 60)
    codec = codec.to(run.device)
    optimizer = torch.optim.AdamW(
        codec.parameters(), lr=options.lr, betas=(0.8, 0.99), weight_decay=options.weight_decay
    )
    scheduler = warmup_cosine_scheduler(
        optimizer, warmup_steps=options.warmup, total_steps=options.steps, min_ratio=options.min_lr_ratio
    )
    fixed = __import__("numpy").random.default_rng(options.seed)
    calibration = crops.batch(max(64, options.batch_size), fixed).to(run.device)
    if not run.resuming:
        codec.calibrate(calibration)
        init = crops.batch(max(options.batch_size, -(-4 * config.codebook_size // (segment // config.stack))), fixed)
        codec.init_codebooks(init.to(run.device), frames_per_step=options.batch_size * segment // config.stack)
    run.restore(codec, optimizer, scheduler)
    codec.train()
    rng = run.rng()
    weighted = options.low_band_weight != 1 or options.bass_weight != 1
    weights = band_weights(codec, options.low_band_weight, options.bass_weight).to(run.device) if weighted else None
    chroma = codec.mel.chroma_matrix(fmin=options.chroma_fmin).to(run.device)

    def train_step() -> dict[str, Any]:
        target = crops.batch(options.batch_size, rng).to(run.device)
        output = codec(target)
        terms = spectral_losses(
            codec,
            output,
            target,
            commitment_weight=options.commitment_weight,
            chroma_weight=options.chroma_weight,
            weights=weights,
            chroma=chroma,
        )
        terms["train/grad_norm"] = run.optimize(
            terms["loss/total"], codec, optimizer, scheduler, grad_clip=options.grad_clip
        )
        for level, (ppl, used) in enumerate(zip(output.perplexity, output.usage, strict=True)):
            terms[f"codebook/perplexity_{level}"] = ppl
            terms[f"codebook/usage_{level}"] = used
        return {key: value.detach() if hasattr(value, "detach") else value for key, value in terms.items()}

    def save() -> None:
        codec.calibrate_latent_norm(calibration)
        codec.save_pretrained(run.config.state_dir, extra={"step": run.step, "train_options": options_dict(options)})
        run.save_state(codec, optimizer, scheduler)
        codec.train()

    result = run.fit(train_step, save=save, scheduler=scheduler)
    logger.info("spectral codec saved to %s (step %d)", run.config.state_dir, result.step)
    return result


def band_weights(codec: Any, low_band_weight: float, bass_weight: float = 1.0) -> Any:
    """`[n_mels * stack, 1]` loss weights in the stacked feature order: `low_band_weight` below 1 kHz, tapering
    (in log frequency) to 1 at 2 kHz and above, times `bass_weight` below 250 Hz (tapering to 1 at 500 Hz),
    rescaled to mean 1.

    Why a bass factor: the constant-Q chroma that judges pitch (`fit.chromagram`, from C1 = 33 Hz) takes ~75%
    of an instrumental's energy from below 130 Hz, where 256 mel bands hold only ~12 bands, each wider than a
    semitone: the bass note lives in the exact level ratios of a few bands, which an even loss leaves to blur
    (codec_v2: chroma correlation 0.80 in octave C1-C2 and 0.90 in C2-C3, 0.94 in C3-C4).
    """
    import torch

    centres = codec.mel.band_centres()
    octaves = torch.log2(centres.clamp_min(1.0))

    def below(frequency: float) -> torch.Tensor:  # 1 below `frequency`, 0 an octave above, linear in between
        return (torch.log2(torch.tensor(2 * frequency)) - octaves).clamp(0.0, 1.0).float()

    weights = (1.0 + (low_band_weight - 1.0) * below(1000.0)) * (1.0 + (bass_weight - 1.0) * below(250.0))
    return (weights / weights.mean()).repeat(codec.config.stack)[:, None]


def pitch_profile(log_mel: Any, chroma: Any, floor: float) -> Any:
    """`[B, M, F]` log-mel -> `[B, 12, F]` pitch-class profile, each frame summing to ~1 (silence: ~0)."""
    energy = (log_mel.exp() - floor).clamp_min(0.0)
    profile = chroma @ energy
    return profile / (profile.sum(dim=1, keepdim=True) + 10 * floor)


def spectral_losses(
    codec: Any,
    output: Any,
    target: Any,
    *,
    commitment_weight: float,
    chroma_weight: float = 0.0,
    weights: Any = None,
    chroma: Any = None,
) -> dict[str, Any]:
    """Namespaced losses of one batch: weighted log-mel L1 and L2 (standardised feature space), commitment and
    the chroma term (see the module docstring; `weights` from `band_weights`, `chroma` from
    `LogMel.chroma_matrix`). The log-mel L1 is also reported in plain units (nepers) as `metric/log_mel_l1`.
    """
    predicted = codec._stack(output.reconstruction)
    truth = codec._stack(target)
    error = predicted - truth
    if weights is not None:
        error = error * weights
    l1 = error.abs().mean()
    l2 = (predicted - truth).pow(2).mul(1.0 if weights is None else weights).mean()
    total = l1 + l2 + commitment_weight * output.commit_loss
    terms = {
        "loss/mel_l1": l1,
        "loss/mel_l2": l2,
        "loss/commit": output.commit_loss,
        "metric/log_mel_l1": (output.reconstruction - target).abs().mean(),
    }
    if chroma is not None and chroma_weight > 0:
        floor = codec.mel.log_floor
        distance = (pitch_profile(output.reconstruction, chroma, floor) - pitch_profile(target, chroma, floor)).abs()
        terms["loss/chroma"] = distance.sum(dim=1).mean()
        total = total + chroma_weight * terms["loss/chroma"]
    return {"loss/total": total, **terms}


def _run_config(run: Any, options: SpectralTrainOptions) -> Any:
    """The saved config when resuming (a run keeps its architecture), else the options'."""
    from models.checkpoint import read_checkpoint_config
    from models.codec.spectral import SPECTRAL_CHECKPOINT_KIND
    from models.codec.spectral_config import SpectralCodecConfig

    requested = spectral_config_from_options(options.preset, options.config_json)
    if not run.resuming:
        return requested
    document = read_checkpoint_config(run.config.state_dir, kind=SPECTRAL_CHECKPOINT_KIND)
    config = SpectralCodecConfig.from_dict(document["config"])
    if requested != config:
        logger.warning("resuming %s: keeping its saved codec config, not --preset/--config-json", options.out)
    return config


def export_spectral_codec(model_dir: Path, target: Path) -> Path:
    """Write an inference-only copy (float16 networks, no EMA statistics) of a trained codec to `target`."""
    from models.checkpoint import read_checkpoint_config
    from models.codec.spectral import load_spectral_codec

    codec = load_spectral_codec(model_dir)
    extra = read_checkpoint_config(model_dir).get("extra", {})
    return codec.save_pretrained(target, extra=extra, inference_only=True)


def run_from_args(args: Any) -> int:
    """`singsong train codec --kind spectral ...` (arguments registered in `pipelines/training/codec.py`)."""
    defaults = SpectralTrainOptions(data=Path(), out=Path())

    def pick(name: str) -> Any:
        value = getattr(args, name, None)
        return getattr(defaults, name) if value is None else value

    options = SpectralTrainOptions(
        data=Path(args.data),
        out=Path(args.out),
        split=None if args.split in ("", "all") else args.split,
        preset=pick("preset"),
        config_json=args.config_json,
        sources=args.sources,
        max_songs=args.max_songs,
        steps=pick("steps"),
        batch_size=pick("batch_size"),
        segment_seconds=pick("segment_seconds"),
        lr=pick("lr"),
        min_lr_ratio=args.min_lr_ratio,
        warmup=pick("warmup"),
        weight_decay=args.weight_decay,
        grad_clip=args.grad_clip,
        chroma_weight=pick("chroma_weight"),
        low_band_weight=pick("low_band_weight"),
        bass_weight=pick("bass_weight"),
        chroma_fmin=pick("chroma_fmin"),
        save_every=pick("save_every"),
        log_every=args.log_every,
        max_minutes=args.max_minutes,
        seed=args.seed,
        resume=args.resume,
        threads=args.threads,
        device=args.device,
    )
    result = train_spectral_codec(options)
    if getattr(args, "export", None):
        export_spectral_codec(Path(options.out) / "model", Path(args.export))
        print(f"inference-only copy -> {args.export}")
    status = "stopped early (rerun the command to resume)" if result.stopped_early else "done"
    print(
        f"spectral codec: {status} at step {result.step}/{options.steps} after {result.total_minutes:.1f} min "
        f"-> {Path(options.out) / 'model'}"
    )
    return 0


__all__ = [
    "SpectralTrainOptions",
    "export_spectral_codec",
    "load_clip",
    "run_from_args",
    "song_clips",
    "spectral_config_from_options",
    "train_spectral_codec",
]
