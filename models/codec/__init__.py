"""Neural audio codec (SEANet + residual VQ) that turns audio into SingSong's acoustic tokens.

Public API::

    from models.codec import CodecConfig, build_codec, load_codec, get_preset
    codec = build_codec(get_preset("small"))   # or load_codec("runs/codec/model")
    codes = codec.encode(wav)                  # [B, C, T] -> [B, K, F] int64, F = ceil(T / hop)
    audio = codec.decode(codes[:, :codec.num_coarse_levels])   # coarse-only decode
"""

from models.codec.codec import CHECKPOINT_KIND, Codec, CodecOutput, build_codec, load_codec
from models.codec.config import PRESETS, CodecConfig, CodecConfigError, get_preset

__all__ = [
    "CHECKPOINT_KIND",
    "PRESETS",
    "Codec",
    "CodecConfig",
    "CodecConfigError",
    "CodecOutput",
    "build_codec",
    "get_preset",
    "load_codec",
]
