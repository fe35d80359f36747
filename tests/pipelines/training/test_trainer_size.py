"""Every trainer holds only its model, batches and losses (the run mechanics are `run.py`'s): no function of
the trainers is longer than a screen (~80 lines), so each training loop can be read at once."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
MAX_LINES = 80


def test_no_training_function_is_longer_than_a_screen() -> None:
    long = []
    for path in sorted((REPO / "pipelines" / "training").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


def test_every_step_trainer_stands_on_the_training_run() -> None:
    """The trainers with an optimizer loop use `TrainingRun` and keep no deadline/signal/history code."""
    trainers = ["codec.py", "cascade.py", "separator.py"]
    for name in trainers:
        source = (REPO / "pipelines" / "training" / name).read_text()
        assert "TrainingRun(" in source, name
        for own_scaffolding in ("signal.signal", "SummaryWriter", 'history.jsonl").open', "time.monotonic"):
            assert own_scaffolding not in source, (name, own_scaffolding)
