"""The training-run skeleton every trainer stands on: what a run does around its optimizer steps.

A trainer holds its model, its batches and its losses; everything else about a run lives here, once
(audiocraft's `StandardSolver` is the model for the split, nanoGPT's one-screen loop the goal for what is left
in each trainer):

* **threads, device, seed** - `torch.set_num_threads(--threads)`, `--device` resolved once (one rank's device
  under torchrun, `distributed.py`), `torch.manual_seed(--seed)` before the trainer builds its model, and
  `rng()`: the generator of batches, seeded by (seed, step, rank) so a resumed run and every rank draw new ones;
* **resume** - `restore()` loads `STATE_DIR/training_state.*` (models/checkpoint.py: safetensors + JSON, no
  pickle) into the model, optimizer and scheduler and continues the step count; the learning-rate schedule of
  *this* command line applies from there on (a finished run given a larger `--steps` stretches its cosine);
  `save_state()` writes it back, with the wall time summed over every invocation (`minutes`);
* **deadline and stop** - `--max-minutes` counts from the run's creation (loading included); SIGTERM (a
  scheduler pre-empting the job) stops after the current step; Ctrl-C saves and re-raises; every rank agrees
  on the stop;
* **logging** - every `log_every` steps and at the last one, the step's scalars (plus `train/lr`,
  `train/steps_per_second`) go to `history.jsonl` (one JSON object per line, appended across resumes), to
  TensorBoard and to the tqdm bar's postfix;
* **saving** - the trainer's `save` every `save_every` steps, at the end and on a stop;
* **validation and best** - the trainer's `validate` every `valid_every` steps and at the end; when its
  `best_key` improves on the best so far, `save_best` (which writes `RUN/best`); the best so far is read back
  from `RUN/best` itself, so it survives resumes.

A trainer, in full::

    run = TrainingRun(RunConfig(out=out, steps=options.steps, ...))
    model = build(...).to(run.device)
    optimizer, scheduler = ...
    run.restore(model, optimizer, scheduler)
    rng = run.rng()

    def train_step() -> dict[str, Tensor]:
        loss, terms = model(batches.draw(rng))
        terms["train/grad_norm"] = run.optimize(loss, model, optimizer, scheduler, grad_clip=1.0)
        return terms

    result = run.fit(train_step, save=lambda: run.save_state(model, optimizer, scheduler), scheduler=scheduler)
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import SingsongError
from pipelines.training.distributed import Distributed

logger = logging.getLogger(__name__)

TrainStep = Callable[[], Mapping[str, Any]]  # one optimizer step -> its scalars (floats or 0-d tensors)


@dataclass
class RunConfig:
    out: Path  # the run directory: history.jsonl, tensorboard/, best/ (by default) live here
    steps: int  # total optimizer steps; a resumed run continues towards it
    state_dir: Path | None = None  # where the resumable training state lives; default OUT/model
    loss_key: str = "loss/total"  # the scalar of a step recorded in `losses` and shown as progress
    log_every: int = 50
    save_every: int = 1000
    valid_every: int = 0  # 0: validate at the end only
    max_minutes: float | None = None  # wall-time budget of one invocation
    seed: int = 0
    resume: bool = True
    threads: int | None = None
    device: str = "auto"
    progress: bool = True
    desc: str = "train"  # progress bar label
    postfix: dict[str, str] = field(default_factory=dict)  # progress bar label -> logged scalar
    history: Path | None = None  # default OUT/history.jsonl
    tensorboard: bool = True  # OUT/tensorboard
    best_dir: Path | None = None  # where `save_best` writes (RUN/best); None: no best checkpoint
    best_key: str = "valid/loss_ce"  # the validation scalar to minimise

    #: The fields every trainer's options carry under the same names (`--steps`, `--max-minutes`, ...).
    COMMON_OPTIONS = (
        "steps",
        "log_every",
        "save_every",
        "valid_every",
        "max_minutes",
        "seed",
        "resume",
        "threads",
        "device",
        "progress",
    )

    @classmethod
    def from_options(cls, options: Any, *, out: Path, **fields: Any) -> RunConfig:
        """The run settings a trainer's options dataclass shares with every trainer, plus its own `fields`."""
        common = {name: getattr(options, name) for name in cls.COMMON_OPTIONS if hasattr(options, name)}
        return cls(out=out, **{**common, **fields})

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.state_dir = Path(self.state_dir) if self.state_dir is not None else self.out / "model"
        self.history = Path(self.history) if self.history is not None else self.out / "history.jsonl"


@dataclass
class RunResult:
    step: int  # optimizer steps done in total (including resumed ones)
    start_step: int  # the step this invocation started from
    losses: list[float]  # the `loss_key` scalar of every step of this invocation
    valid: list[dict[str, float]]  # {"step", "valid/...": ...} of every validation of this invocation
    stopped_early: bool  # the time budget ran out, or SIGTERM, before `steps`
    minutes: float  # wall time of this invocation
    total_minutes: float  # summed over every invocation of the run
    rank: int = 0  # torch.distributed rank of this process (only rank 0 logs and saves)


def options_dict(options: Any) -> dict[str, Any]:
    """A dataclass of options as plain JSON values (paths as strings), for notes in checkpoints."""
    return json.loads(json.dumps(asdict(options), default=str))


class TrainingRun:
    """One invocation of a trainer: see the module docstring. Create it first: the deadline starts here."""

    def __init__(self, config: RunConfig) -> None:
        import torch

        self.config = config
        self.started = time.monotonic()
        if config.threads:
            torch.set_num_threads(config.threads)
        self.dist = Distributed(config.device)
        self.device = self.dist.device
        torch.manual_seed(config.seed)
        self.step = self.start_step = 0
        self.previous_minutes = 0.0
        self.losses: list[float] = []
        self.valid_log: list[dict[str, float]] = []
        self.last_valid: dict[str, float] = {}
        self.best_loss = self._saved_best()
        self.stopped_early = False
        self.writer: Any = None  # TensorBoard SummaryWriter while `fit` runs (rank 0, unless disabled)
        self._history: Any = None
        self._bar: Any = None
        self.window: list[float] = []  # the losses since the last log
        self._last_log = self.started
        self._signals: list[int] = []

    # ------------------------------------------------------------------------------------------ state
    @property
    def main(self) -> bool:
        return self.dist.main

    @property
    def resuming(self) -> bool:
        """The run continues from a saved training state (and `--no-resume` was not given)."""
        from models.checkpoint import has_training_state

        return self.config.resume and has_training_state(self.config.state_dir)

    @property
    def minutes(self) -> float:
        return (time.monotonic() - self.started) / 60

    @property
    def total_minutes(self) -> float:
        return self.previous_minutes + self.minutes

    def write_args(self, options: Any) -> None:
        """`OUT/train_args.json`: the options of the latest invocation."""
        if self.main:
            self.config.out.mkdir(parents=True, exist_ok=True)
            (self.config.out / "train_args.json").write_text(json.dumps(asdict(options), default=str, indent=2))

    def restore(self, model: Any, optimizer: Any = None, scheduler: Any = None) -> dict[str, Any]:
        """Load the saved training state when resuming (else nothing); returns it (`{"step", **extra}`).

        The scheduler keeps the schedule it was built with (this command line's), not the saved one.
        """
        from models.checkpoint import load_training_state

        if not self.resuming:
            return {}
        schedule = None
        if scheduler is not None:
            # load_state_dict updates the schedule objects in place: keep copies of this command's ones.
            schedule = ([copy.copy(f) for f in scheduler.lr_lambdas], list(scheduler.base_lrs))
        state = load_training_state(self.config.state_dir, model=model, optimizer=optimizer, scheduler=scheduler)
        if schedule is not None:
            scheduler.lr_lambdas, scheduler.base_lrs = schedule
        self.step = self.start_step = int(state["step"])
        self.previous_minutes = float(state.get("minutes", 0.0))
        logger.info("resumed %s at step %d", self.config.state_dir, self.step)
        return state

    def save_state(
        self, model: Any, optimizer: Any, scheduler: Any = None, *, directory: Path | None = None, **extra: Any
    ) -> None:
        """Write the resumable training state (to `state_dir` unless `directory`) at the current step."""
        from models.checkpoint import save_training_state

        save_training_state(
            directory or self.config.state_dir,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            step=self.step,
            extra={"minutes": self.total_minutes, **extra},
        )

    def rng(self) -> Any:
        """The numpy generator of batches for this invocation; also reseeds torch (dropout, noise draws).

        Seeded by (seed, step, rank): a resumed run does not replay the batches it already trained on, and
        every rank draws its own.
        """
        import numpy as np
        import torch

        torch.manual_seed(self.config.seed * 1_000_003 + self.step * 101 + self.dist.rank)
        return np.random.default_rng([self.config.seed, self.step, self.dist.rank])

    def optimize(self, loss: Any, model: Any, optimizer: Any, scheduler: Any = None, *, grad_clip: float) -> Any:
        """Backward, clip the gradient norm, step the optimizer and scheduler; returns the norm before clipping.

        A non-finite loss stops the run with a clear error instead of writing NaN weights.
        """
        import torch

        if not torch.isfinite(loss):
            raise SingsongError(f"training diverged at step {self.step} (loss is {loss.item()}); lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        return grad_norm

    # ------------------------------------------------------------------------------------------ loop
    def fit(
        self,
        train_step: TrainStep,
        *,
        save: Callable[[], None],
        scheduler: Any = None,
        validate: Callable[[], dict[str, float]] | None = None,
        save_best: Callable[[], None] | None = None,
        record: Callable[[dict[str, float]], dict[str, float]] | None = None,
    ) -> RunResult:
        """Run `train_step` until `steps`, the deadline or SIGTERM; log, validate and save around it.

        `save` writes the checkpoint + training state (rank 0 only calls it); `validate` returns `valid/...`
        scalars (empty: nothing to validate on); `record` may rewrite a log record before it is written.
        """
        hooks = {"save": save, "validate": validate, "save_best": save_best}
        self._open()
        try:
            with self._stop_signals():
                while self.step < self.config.steps:
                    if self._should_stop():
                        break
                    terms = train_step()
                    self._after_step(terms, hooks, scheduler, record)
                if validate is not None and (not self.valid_log or self.valid_log[-1]["step"] != self.step):
                    self._validate(validate, save_best)
                self._save(save)
        except KeyboardInterrupt:
            logger.info("interrupted at step %d: saving", self.step)
            self._save(save)
            raise
        finally:
            self._close()
        return RunResult(
            step=self.step,
            start_step=self.start_step,
            losses=self.losses,
            valid=self.valid_log,
            stopped_early=self.stopped_early,
            minutes=self.minutes,
            total_minutes=self.total_minutes,
            rank=self.dist.rank,
        )

    def _after_step(
        self, terms: Mapping[str, Any], hooks: dict[str, Any], scheduler: Any, record: Callable | None
    ) -> None:
        config = self.config
        self.step += 1
        loss = float(terms[config.loss_key])
        self.losses.append(loss)
        self.window.append(loss)
        self._bar.update(1)
        if self.main and (self.step % config.log_every == 0 or self.step == config.steps):
            self._log(terms, scheduler, record)
        if hooks["validate"] is not None and config.valid_every and self.step % config.valid_every == 0:
            self._validate(hooks["validate"], hooks["save_best"])
        if config.save_every and self.step % config.save_every == 0 and self.step < config.steps:
            self._save(hooks["save"])

    def _should_stop(self) -> bool:
        deadline = self.config.max_minutes is not None and self.minutes >= self.config.max_minutes
        if not self.dist.any(bool(self._signals) or deadline):
            return False
        self.stopped_early = True
        reason = "SIGTERM received" if self._signals else f"time budget of {self.config.max_minutes} minutes used up"
        logger.info("%s at step %d: saving and stopping", reason, self.step)
        return True

    def _log(self, terms: Mapping[str, Any], scheduler: Any, record: Callable | None) -> None:
        now = time.monotonic()
        scalars = {key: float(value) for key, value in terms.items()}
        if scheduler is not None:
            scalars["train/lr"] = scheduler.get_last_lr()[0]
        scalars["train/steps_per_second"] = len(self.window) / max(now - self._last_log, 1e-9)
        if record is not None:
            scalars = record(scalars)
        self._write(scalars)
        postfix = {label: f"{scalars[key]:.4g}" for label, key in self.config.postfix.items() if key in scalars}
        if postfix:
            self._bar.set_postfix(postfix)
        self._last_log, self.window = now, []

    def _validate(self, validate: Callable[[], dict[str, float]], save_best: Callable[[], None] | None) -> None:
        if not self.main:
            return
        scalars = validate()
        if not scalars:
            return
        self.last_valid = dict(scalars)
        self.valid_log.append({"step": self.step, **scalars})
        self._write(scalars)
        loss = scalars.get(self.config.best_key, math.inf)
        if save_best is not None and loss < self.best_loss:
            self.best_loss = loss
            save_best()

    def _save(self, save: Callable[[], None]) -> None:
        if not self.main:
            return
        save()
        if self.writer is not None:
            self.writer.flush()

    def _write(self, scalars: dict[str, float]) -> None:
        """One history line and TensorBoard scalars at the current step."""
        if self.writer is not None:
            for key, value in scalars.items():
                self.writer.add_scalar(key, value, self.step)
        self._history.write(json.dumps({"step": self.step, **scalars}) + "\n")
        self._history.flush()

    def _saved_best(self) -> float:
        from models.checkpoint import read_checkpoint_config

        best_dir = self.config.best_dir
        if best_dir is None or not best_dir.is_dir():
            return math.inf
        valid = read_checkpoint_config(best_dir).get("extra", {}).get("valid", {})
        return float(valid.get(self.config.best_key, math.inf))

    # ------------------------------------------------------------------------------------------ resources
    def _open(self) -> None:
        from tqdm import tqdm

        config = self.config
        if self.main:
            config.out.mkdir(parents=True, exist_ok=True)
            self._history = config.history.open("a")
            if config.tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(config.out / "tensorboard"))
        self._bar = tqdm(
            total=config.steps,
            initial=self.step,
            desc=config.desc,
            unit="step",
            disable=not (config.progress and self.main),
        )
        self._last_log = time.monotonic()

    def _close(self) -> None:
        self._bar.close()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self._history is not None:
            self._history.close()
            self._history = None
        self.dist.close()

    @contextlib.contextmanager
    def _stop_signals(self) -> Iterator[None]:
        """SIGTERM sets a flag the loop checks before each step (only the main thread may install handlers)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGTERM, lambda number, frame: self._signals.append(number))
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)


__all__ = ["RunConfig", "RunResult", "TrainStep", "TrainingRun", "options_dict"]
