"""The training-run skeleton on a trivial model: stop on a deadline, SIGTERM or Ctrl-C with a save, resume the
step count and history, keep the best checkpoint across resumes."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from core.errors import SingsongError
from models.checkpoint import has_training_state, load_checkpoint, load_training_state, save_checkpoint
from pipelines.training.run import RunConfig, RunResult, TrainingRun
from pipelines.training.schedule import warmup_cosine_scheduler


def fit_line(
    out: Path,
    steps: int,
    *,
    valid_losses: list[float] | None = None,
    on_step: Callable[[TrainingRun], None] | None = None,
    lr: float = 0.3,
    **config,
) -> tuple[RunResult, TrainingRun]:
    """A trainer of y = 2x with a 1x1 linear layer; validation reports `valid_losses` in turn."""
    settings = {"log_every": 2, "save_every": 1000, "progress": False, "best_dir": out / "best", **config}
    run = TrainingRun(RunConfig(out=out, steps=steps, loss_key="loss/mse", **settings))
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    scheduler = warmup_cosine_scheduler(optimizer, warmup_steps=0, total_steps=steps, min_ratio=0.1)
    run.restore(model, optimizer, scheduler)
    rng = run.rng()
    scripted = iter(valid_losses or [])

    def train_step() -> dict[str, torch.Tensor]:
        x = torch.from_numpy(rng.normal(size=(16, 1))).float()
        loss = torch.nn.functional.mse_loss(model(x), 2 * x)
        grad_norm = run.optimize(loss, model, optimizer, scheduler, grad_clip=10.0)
        if on_step is not None:
            on_step(run)
        return {"loss/mse": loss.detach(), "train/grad_norm": grad_norm}

    def save_best() -> None:
        extra = {"step": run.step, "valid": run.last_valid}
        save_checkpoint(run.config.best_dir, kind="line", config={}, tensors=model.state_dict(), extra=extra)

    def validate() -> dict[str, float]:
        return {"valid/loss_ce": next(scripted)} if valid_losses is not None else {}

    result = run.fit(
        train_step,
        save=lambda: run.save_state(model, optimizer, scheduler),
        scheduler=scheduler,
        validate=validate,
        save_best=save_best,
    )
    return result, run


def history(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]


def saved_step(out: Path) -> int:
    return load_training_state(out / "model", model=torch.nn.Linear(1, 1))["step"]


def test_resume_continues_the_step_count_history_weights_and_schedule(tmp_path: Path) -> None:
    first, _ = fit_line(tmp_path, 6)
    assert (first.start_step, first.step, len(first.losses), first.stopped_early) == (0, 6, 6, False)
    assert [h["step"] for h in history(tmp_path)] == [2, 4, 6]
    assert {"loss/mse", "train/grad_norm", "train/lr", "train/steps_per_second"} <= set(history(tmp_path)[0])
    assert first.losses[-1] < 0.2 * first.losses[0]  # it learns
    assert any((tmp_path / "tensorboard").iterdir())

    second, run = fit_line(tmp_path, 10)
    assert (second.start_step, second.step, len(second.losses)) == (6, 10, 4)
    assert [h["step"] for h in history(tmp_path)] == [2, 4, 6, 8, 10]  # appended, not restarted
    assert second.losses[0] < 0.2 * first.losses[0]  # the trained weights came back
    assert second.total_minutes > second.minutes  # wall time adds up over invocations
    # The schedule of the second command line (10 steps) applies, not the saved one (6: already at its floor).
    assert run.config.steps == 10 and history(tmp_path)[3]["train/lr"] > 1.5 * 0.3 * 0.1
    assert saved_step(tmp_path) == 10

    fresh, _ = fit_line(tmp_path, 2, resume=False)
    assert (fresh.start_step, fresh.step) == (0, 2)


def test_a_spent_deadline_stops_at_once_with_a_save(tmp_path: Path) -> None:
    result, _ = fit_line(tmp_path, 50, max_minutes=1e-9)
    assert result.stopped_early and result.step == 0 and result.losses == []
    assert has_training_state(tmp_path / "model") and saved_step(tmp_path) == 0


def test_the_deadline_stops_a_running_loop_and_saves_where_it_stopped(tmp_path: Path) -> None:
    result, _ = fit_line(tmp_path, 10_000, max_minutes=0.2 / 60, on_step=lambda run: time.sleep(0.02))
    assert result.stopped_early and 1 <= result.step < 100
    assert saved_step(tmp_path) == result.step


def test_sigterm_stops_after_the_current_step_and_saves(tmp_path: Path) -> None:
    previous = signal.getsignal(signal.SIGTERM)

    def terminate_at_step_3(run: TrainingRun) -> None:
        if run.step == 2:  # during the third step (the count increments after it)
            os.kill(os.getpid(), signal.SIGTERM)

    result, _ = fit_line(tmp_path, 20, on_step=terminate_at_step_3)
    assert result.stopped_early and result.step == 3
    assert saved_step(tmp_path) == 3
    assert signal.getsignal(signal.SIGTERM) is previous  # the handler is put back


def test_ctrl_c_saves_and_reraises(tmp_path: Path) -> None:
    def interrupt(run: TrainingRun) -> None:
        if run.step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_line(tmp_path, 20, on_step=interrupt)
    assert saved_step(tmp_path) == 4


def test_best_checkpoint_is_kept_across_resumes(tmp_path: Path) -> None:
    best = tmp_path / "best"
    first, _ = fit_line(tmp_path, 4, valid_every=2, valid_losses=[0.5, 0.3])
    assert [v["step"] for v in first.valid] == [2, 4]
    assert load_checkpoint(best).extra["step"] == 4
    # A resumed run whose validation is worse than the saved best leaves it alone ...
    second, _ = fit_line(tmp_path, 8, valid_every=2, valid_losses=[0.4, 0.35])
    assert [v["step"] for v in second.valid] == [6, 8]
    assert load_checkpoint(best).extra == {"step": 4, "valid": {"valid/loss_ce": 0.3}}
    # ... and one that beats it replaces it; a final step off the validation cadence is validated too.
    third, _ = fit_line(tmp_path, 11, valid_every=2, valid_losses=[0.31, 0.1])
    assert [v["step"] for v in third.valid] == [10, 11]
    assert load_checkpoint(best).extra["step"] == 11
    assert [h["step"] for h in history(tmp_path) if "valid/loss_ce" in h] == [2, 4, 6, 8, 10, 11]


def test_a_diverging_loss_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SingsongError, match="diverged at step"):
        fit_line(tmp_path, 50, lr=1e30)
