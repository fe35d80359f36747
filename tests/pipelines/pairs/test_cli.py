"""`singsong pipeline pairs` as a user runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import cli
from pipelines.pairs.manifest import read_pairs


def test_pairs_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "pipeline",
        "pairs",
        "--input",
        str(tiny_corpus),
        "--out",
        str(tmp_path / "p"),
        "--window",
        "2",
        "--hop",
        "1",
        "--min-activity",
        "0",
        "--loudness",
        "joint",
        "--target-lufs",
        "-20",
        "--quiet",
    ]
    assert cli.main(args) == 0
    assert "4 processed" in capsys.readouterr().out
    pairs = list(read_pairs(tmp_path / "p"))
    assert len(pairs) == 4 * 3 and {p.stats["vocals_gain_db"] == p.stats["instrumental_gain_db"] for p in pairs} == {
        True
    }
    assert cli.main([*args, "--rebuild-manifest"]) == 0
    assert "12 windows in the manifest" in capsys.readouterr().out
