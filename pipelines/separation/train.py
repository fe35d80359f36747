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
further; `--max-minutes` bounds the wall time of one invocation and saves + exports before stopping.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import SingsongError

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
    from tqdm import tqdm

    from core.device import resolve_device
    from models.checkpoint import has_training_state, load_training_state, save_training_state
    from pipelines.separation.data import StemCropDataset, corpus_songs
    from pipelines.separation.repo import export_to_repo
    from pipelines.training.schedule import warmup_cosine_scheduler

    started = time.perf_counter()
    if options.threads:
        torch.set_num_threads(options.threads)
    device = torch.device(resolve_device(options.device))
    torch.manual_seed(options.seed)
    arch = architecture(options)
    run_dir = Path(options.out) / "run" / options.name
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "separator.json"
    model = _build(arch).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=options.lr)
    scheduler = warmup_cosine_scheduler(
        optimizer, warmup_steps=options.warmup, total_steps=options.steps, min_ratio=options.min_lr_ratio
    )
    start_step, previous_minutes = 0, 0.0
    if options.resume and has_training_state(run_dir):
        saved = json.loads(config_path.read_text()).get("architecture") if config_path.is_file() else None
        if saved != arch:
            raise SingsongError(
                f"{run_dir}: the saved run has another architecture ({saved}); use --no-resume or another --name"
            )
        state = load_training_state(run_dir, model=model, optimizer=optimizer, scheduler=scheduler)
        start_step, previous_minutes = state["step"], float(state.get("minutes", 0.0))
        logger.info("resuming %s from step %d", options.name, start_step)
    config_path.write_text(json.dumps({"architecture": arch, "options": _jsonable(asdict(options))}, indent=2))

    sources = arch["sources"]
    stems = ("vocals", "drums", "bass", "other") if "instrumental" in sources else sources
    songs = corpus_songs(options.data, split=options.split, stems=stems)
    length = int(options.segment * options.sample_rate)
    dataset = StemCropDataset(
        songs,
        sources=sources,
        sample_rate=options.sample_rate,
        segment_samples=length,
        remix=options.remix,
        progress=options.progress,
    )
    logger.info(
        "training on %d songs, %.2fM parameters", len(dataset.songs), sum(p.numel() for p in model.parameters()) / 1e6
    )
    rng = np.random.default_rng(options.seed + start_step)  # a resumed run does not replay the same crops

    def save(step: int) -> Path:
        minutes = previous_minutes + (time.perf_counter() - started) / 60
        save_training_state(
            run_dir, model=model, optimizer=optimizer, scheduler=scheduler, step=step, extra={"minutes": minutes}
        )
        training_args = {"steps": step, "minutes": minutes, "data": str(options.data), **arch}
        return export_to_repo(model.cpu(), options.out, options.name, training_args=training_args)

    model.train()
    losses: list[float] = []
    window: list[float] = []
    step = start_step
    stopped_early = False
    exported = None
    bar = tqdm(
        total=options.steps, initial=step, desc=f"train {options.name}", unit="step", disable=not options.progress
    )
    history = (run_dir / "history.jsonl").open("a")
    try:
        while step < options.steps:
            if options.max_minutes is not None and time.perf_counter() - started > options.max_minutes * 60:
                stopped_early = True
                break
            mix, target = dataset.batch(options.batch_size, rng)
            mix, target = mix.to(device), target.to(device)
            estimate = model(mix)
            loss = torch.nn.functional.l1_loss(estimate, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), options.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            value = loss.item()
            losses.append(value)
            window.append(value)
            bar.update(1)
            if step % options.log_every == 0:
                record = {
                    "step": step,
                    "loss": float(np.mean(window)),
                    "lr": scheduler.get_last_lr()[0],
                    "minutes": previous_minutes + (time.perf_counter() - started) / 60,
                }
                history.write(json.dumps(record) + "\n")
                history.flush()
                bar.set_postfix(loss=f"{record['loss']:.4f}")
                window = []
            if step % options.save_every == 0:
                exported = save(step)
                model.to(device)
    finally:
        bar.close()
        history.close()
        exported = save(step)
    minutes = (time.perf_counter() - started) / 60
    tail = losses[-options.log_every :] or [float("nan")]
    return SeparatorTrainResult(
        step=step,
        start_step=start_step,
        minutes=minutes,
        total_minutes=previous_minutes + minutes,
        final_loss=float(np.mean(tail)),
        exported=exported,
        losses=losses,
        stopped_early=stopped_early,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


__all__ = ["SeparatorTrainOptions", "SeparatorTrainResult", "architecture", "train_separator"]
