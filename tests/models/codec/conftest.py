"""Shared fixtures: one CPU thread per test, and a tiny codec whose codebooks were initialised on tones."""

from __future__ import annotations

import pytest
import torch

from models.codec import Codec, build_codec, get_preset
from tests.models.codec.signals import tone


@pytest.fixture(scope="module")
def tiny_codec() -> Codec:
    torch.manual_seed(0)
    codec = build_codec(get_preset("tiny"))
    codec.init_codebooks(tone(1.0, codec.sample_rate, batch=2))
    return codec.eval()
