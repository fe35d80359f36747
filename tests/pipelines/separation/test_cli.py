"""The commands as a user runs them: `pipeline separate`, `train separator`, `eval separator`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import cli


@pytest.fixture
def run():
    """`singsong ARGS...` in-process, with every command registered as the installed CLI does."""
    return cli.main


def test_separate_train_and_eval_commands(
    run, tmp_path: Path, tiny_corpus: Path, tiny_repo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, name = tiny_repo
    args = [
        "pipeline",
        "separate",
        "--input",
        str(tiny_corpus),
        "--out",
        str(tmp_path / "sep"),
        "--repo",
        str(repo),
        "--model",
        name,
        "--shifts",
        "0",
        "--batch-size",
        "3",
        "--device",
        "cpu",
        "--quiet",
    ]
    assert run(args) == 0
    assert "4 separated, 0 already done, 0 failed" in capsys.readouterr().out
    assert run(args) == 0
    assert "0 separated, 4 already done" in capsys.readouterr().out

    assert (
        run(
            [
                "train",
                "separator",
                "--data",
                str(tiny_corpus),
                "--out",
                str(tmp_path / "repo"),
                "--name",
                "cli",
                "--channels",
                "4",
                "--depth",
                "3",
                "--sample-rate",
                "8000",
                "--segment",
                "0.5",
                "--batch-size",
                "1",
                "--steps",
                "1",
                "--save-every",
                "1",
                "--log-every",
                "1",
                "--device",
                "cpu",
                "--quiet",
            ]
        )
        == 0
    )
    assert "separator cli: step 1" in capsys.readouterr().out

    report = tmp_path / "eval.json"
    assert (
        run(
            [
                "eval",
                "separator",
                "--repo",
                str(tmp_path / "repo"),
                "--name",
                "cli",
                "--data",
                str(tiny_corpus),
                "--split",
                "all",
                "--device",
                "cpu",
                "--report",
                str(report),
            ]
        )
        == 0
    )
    assert "vocals" in capsys.readouterr().out and json.loads(report.read_text())["songs"] == 4


def test_expected_errors_are_one_line_messages(run, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        run(
            [
                "pipeline",
                "separate",
                "--input",
                str(tmp_path / "nowhere"),
                "--out",
                str(tmp_path / "o"),
                "--repo",
                str(tmp_path),
                "--model",
                "x",
            ]
        )
        == 2
    )
    assert "no model or bag named 'x'" in capsys.readouterr().err
    assert run(["pipeline", "separate", "--out", str(tmp_path / "o"), "--shard", "2/2", "--input", "."]) == 2
