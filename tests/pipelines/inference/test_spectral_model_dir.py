"""A spectral codec is a valid codec part of a model directory: the compatibility check reads its stream shape."""

from __future__ import annotations

import pytest

from models.codec.spectral import build_spectral_codec
from models.codec.spectral_config import get_spectral_preset
from pipelines.inference.model_dir import ModelDirectoryError, check_compatibility


def _specs(frame_rate: float, coarse: int, fine: int) -> dict[str, dict]:
    return {
        "instrumental.coarse": {"frame_rate": frame_rate, "cardinality": 1024, "codebooks": coarse},
        "instrumental.fine": {"frame_rate": frame_rate, "cardinality": 1024, "codebooks": fine},
    }


def test_spectral_codec_passes_and_fails_the_model_directory_check(tmp_path) -> None:
    codec = build_spectral_codec(get_spectral_preset("small"))
    assert codec.frame_rate == 25.0 and codec.num_codebooks == 8 and codec.num_coarse_levels == 3
    check_compatibility(tmp_path, _specs(25.0, 3, 5), {"codec": codec}, num_coarse_levels=3)
    with pytest.raises(ModelDirectoryError, match="frame rate"):  # a cascade trained on the 50 Hz SEANet codec
        check_compatibility(tmp_path, _specs(50.0, 3, 5), {"codec": codec}, num_coarse_levels=3)
