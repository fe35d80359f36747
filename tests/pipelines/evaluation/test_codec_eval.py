"""`singsong eval codec`: one table comparing renditions of held-out instrumentals (tiny codecs, tiny corpus)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest
import torch

from models.codec import build_codec, get_preset
from models.codec.spectral import build_spectral_codec
from models.codec.spectral_config import get_spectral_preset
from pipelines.evaluation import codec as codec_eval
from pipelines.evaluation.codec import format_table, held_out_songs


def test_held_out_songs_sum_the_instrumental_stems_and_find_the_vocals(tiny_corpus: Path) -> None:
    songs = held_out_songs(tiny_corpus, (), None)
    assert len(songs) == 4
    for song in songs:
        assert [p.stem for p in song.truth] == ["drums", "bass", "other"]
        assert song.vocals is not None and song.vocals.name == "vocals.flac"
    assert len(held_out_songs(tiny_corpus, (), 2)) == 2


def test_eval_command_compares_codecs_in_one_table(tiny_corpus: Path, tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    spectral = build_spectral_codec(get_spectral_preset("tiny"))
    t = torch.arange(8000) / 8000
    wav = (0.3 * torch.sin(2 * math.pi * 220 * t))[None, None].repeat(2, 1, 1)
    spectral.calibrate(spectral.log_mel(wav))
    spectral.init_codebooks(spectral.log_mel(wav))
    spectral.save_pretrained(tmp_path / "spectral")
    seanet = build_codec(get_preset("tiny"))
    seanet.init_codebooks(wav)
    seanet.save_pretrained(tmp_path / "seanet" / "model")  # a run directory: named after the run

    parser = argparse.ArgumentParser()
    groups = {"eval": parser.add_subparsers().add_parser("eval").add_subparsers()}
    codec_eval.register(groups)
    out = tmp_path / "report"
    command = f"eval codec --model {tmp_path / 'spectral'} --model {tmp_path / 'seanet' / 'model'} --data {tiny_corpus}"
    args = parser.parse_args(
        [*command.split(), "--out", str(out), "--split", "all", "--max-songs", "2", "--figures", "1"]
    )
    assert args.handler(args) == 0
    printed = capsys.readouterr().out
    assert "| rendition |" in printed and "code perplexity/used per level" in printed

    report = json.loads((out / "report.json").read_text())
    summary = report["summary"]
    assert list(summary) == [
        "truth",
        "griffin-lim",
        "spectral all 2",
        "spectral coarse 1",
        "seanet all 2",
        "seanet coarse 1",
    ]
    truth = summary["truth"]
    assert truth["songs"] == 2 and truth["chroma_corr"] == pytest.approx(1.0) and truth["key_agree"] == 1.0
    assert truth["margin_ratio"] == pytest.approx(1.0) and truth["mel"] == pytest.approx(0.0, abs=1e-6)
    for name in list(summary)[1:]:  # renditions differ from the truth
        assert summary[name]["mel"] > 0.01 and summary[name]["chroma_corr"] < 0.9999, name
    # the untrained codecs are far worse than Griffin-Lim of the true magnitude
    assert summary["griffin-lim"]["chroma_corr"] > summary["spectral all 2"]["chroma_corr"]
    assert summary["griffin-lim"]["mel"] < summary["seanet all 2"]["mel"]
    assert [len(levels) for levels in report["codebooks"].values()] == [2, 2]
    assert all(1 <= level["perplexity"] <= 16 for level in report["codebooks"]["spectral"])
    assert report["models"]["spectral"]["frame_rate"] == 50.0 and report["models"]["seanet"]["coarse_levels"] == 1
    assert len(report["per_song"]) == 2 and "key" in report["per_song"][0]["spectral all 2"]
    assert (out / "table.md").read_text().startswith("| rendition |")
    pngs = list(out.glob("spectrograms_*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_format_table_has_one_row_per_rendition() -> None:
    row = dict.fromkeys(codec_eval.METRICS, 0.5)
    table = format_table({"a": row, "b": row}).splitlines()
    assert len(table) == 4 and table[2].startswith("| a | 0.500")
