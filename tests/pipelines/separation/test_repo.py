"""Demucs repository export: checksummed file names, loadable by demucs itself (API and CLI)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.audio import load_audio, save_audio
from core.errors import SingsongError
from pipelines.separation.repo import SeparatorLoadError, build_model, export_to_repo, list_repo, load_separator
from tests.pipelines.separation.conftest import TINY_RATE, build_tiny


def test_export_is_checksummed_and_loads_with_demucs_get_model(tmp_path: Path) -> None:
    from demucs.pretrained import get_model

    model = build_tiny(seed=3).eval()
    path = export_to_repo(model, tmp_path, "mysep")
    signature, checksum = path.stem.rsplit("-", 1)
    assert signature == "mysep" and checksum == hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    loaded = get_model("mysep", repo=tmp_path)
    x = torch.randn(1, 2, 2 * TINY_RATE)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)
    assert list(loaded.sources) == ["vocals", "instrumental"]


def test_reexport_replaces_the_previous_file_and_a_damaged_file_is_refused(tmp_path: Path) -> None:
    first = export_to_repo(build_tiny(seed=1), tmp_path, "sep")
    second = export_to_repo(build_tiny(seed=2), tmp_path, "sep")
    assert first != second and not first.exists() and list(list_repo(tmp_path)) == ["sep"]
    data = bytearray(second.read_bytes())
    data[-10] ^= 0xFF
    second.write_bytes(bytes(data))
    with pytest.raises(SeparatorLoadError, match="checksum"):
        load_separator("sep", tmp_path)


def test_load_separator_reports_missing_models_and_repositories(tmp_path: Path, tiny_repo) -> None:
    repo, name = tiny_repo
    _model, info = load_separator(name, repo)
    assert info.sources == ("vocals", "instrumental") and info.sample_rate == TINY_RATE and info.segment == 2.0
    with pytest.raises(SeparatorLoadError, match="nope"):
        load_separator("nope", repo)
    with pytest.raises(SeparatorLoadError, match="does not exist"):
        load_separator(name, tmp_path / "absent")
    with pytest.raises(SingsongError, match="signature"):
        export_to_repo(build_tiny(), tmp_path, "bad-name")


def test_htdemucs_small_config_builds_and_runs() -> None:
    model = build_model("htdemucs", channels=8, depth=2, sample_rate=TINY_RATE, segment=1.0, t_heads=2).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 2, TINY_RATE))
    assert out.shape == (2, 2, 2, TINY_RATE)


@pytest.mark.slow
def test_python_m_demucs_separates_with_the_exported_model(tmp_path: Path, tiny_repo) -> None:
    repo, name = tiny_repo
    track = save_audio(
        tmp_path / "song.wav", np.random.default_rng(0).uniform(-0.3, 0.3, (2, 12000)).astype(np.float32), TINY_RATE
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "demucs",
            "--repo",
            str(repo),
            "-n",
            name,
            "--two-stems",
            "vocals",
            "--shifts",
            "0",
            "-o",
            str(tmp_path / "out"),
            str(track),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    vocals = load_audio(tmp_path / "out" / name / "song" / "vocals.wav")
    assert vocals.sample_rate == TINY_RATE and vocals.num_frames == 12000
