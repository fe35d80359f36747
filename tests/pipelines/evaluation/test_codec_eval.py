"""`singsong eval codec` on a tiny codec: report contents, figure, and the SI-SNR metric."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from models.codec import build_codec, get_preset
from pipelines.evaluation import codec as codec_eval
from pipelines.evaluation.codec import si_snr


def test_si_snr_is_scale_invariant_and_orders_distortions() -> None:
    generator = torch.Generator().manual_seed(0)
    reference = torch.randn(2, 1, 4000, generator=generator)
    noise = torch.randn(2, 1, 4000, generator=generator)
    assert (si_snr(reference, reference) > 60).all()
    scaled = si_snr(3.0 * reference + 0.1 * noise, reference)
    torch.testing.assert_close(scaled, si_snr(reference + noise / 30, reference))
    assert float(si_snr(reference + 0.1 * noise, reference).mean()) == pytest.approx(20.0, abs=0.5)
    assert (si_snr(reference + noise, reference) < si_snr(reference + 0.1 * noise, reference)).all()


def test_eval_command_writes_report_and_spectrogram_png(tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    codec = build_codec(get_preset("tiny"))
    t = torch.arange(8000) / 8000
    codec.init_codebooks((0.3 * torch.sin(2 * math.pi * 220 * t))[None, None].repeat(2, 1, 1))
    codec.save_pretrained(tmp_path / "model")
    data = tmp_path / "data"
    for split in ("train", "test"):
        (data / split).mkdir(parents=True)
    sr = 44_100
    time = np.arange(int(0.6 * sr)) / sr
    for i, f in enumerate((220.0, 330.0)):
        x = 0.3 * np.sin(2 * np.pi * f * time)
        sf.write(data / "test" / f"song{i}.wav", np.stack([x, x], axis=1), sr)
    sf.write(data / "train" / "ignored.wav", np.zeros((100, 1)), sr)

    parser = argparse.ArgumentParser()
    groups = {"eval": parser.add_subparsers().add_parser("eval").add_subparsers()}
    codec_eval.register(groups)
    out = tmp_path / "report"
    args = parser.parse_args(
        [
            "eval",
            "codec",
            "--model",
            str(tmp_path / "model"),
            "--data",
            str(data),
            "--out",
            str(out),
            "--max-files",
            "5",
        ]
    )
    assert args.handler(args) == 0
    assert "SI-SNR" in capsys.readouterr().out

    report = json.loads((out / "report.json").read_text())
    assert report["num_files"] == 2  # the train split is left out
    assert report["audio_seconds"] == pytest.approx(1.2, abs=0.01)
    assert report["coarse"]["levels"] == 1 and report["full"]["levels"] == 2
    assert report["full"]["bitrate_kbps"] == pytest.approx(2 * report["coarse"]["bitrate_kbps"])
    for name in ("coarse", "full"):
        assert math.isfinite(report[name]["mel_distance"]) and report[name]["mel_distance"] > 0
        assert math.isfinite(report[name]["si_snr_db"])
    assert report["coarse"]["mel_distance"] != report["full"]["mel_distance"]
    assert [c["level"] for c in report["codebooks"]] == [0, 1]
    assert [c["coarse"] for c in report["codebooks"]] == [True, False]
    for level in report["codebooks"]:
        assert 1 <= level["perplexity"] <= 16 and 0 < level["used_fraction"] <= 1
    assert len(report["files"]) == 2 and {"coarse", "full"} <= set(report["files"][0])
    assert (out / "spectrograms.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("input", "coarse", "full"):
        audio, rate = sf.read(out / "examples" / f"{name}.wav")
        assert rate == 8000 and len(audio) >= int(0.6 * 8000)
