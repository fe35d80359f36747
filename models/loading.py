"""Load any tokenizer directory the project knows, by looking at what is inside it.

- our codec (`config.json` with kind "codec") -> `models.codec.Codec`
- our spectral codec (kind "spectral_codec") -> `models.codec.spectral.SpectralCodec`
- our semantic tokenizer (kind "semantic_tokenizer") -> `models.semantic.SemanticTokenizer`
- a transformers EnCodec directory (`config.json` with `"model_type": "encodec"`) -> `EncodecTokenizer`
"""

from __future__ import annotations

import json
from pathlib import Path

from models.checkpoint import CheckpointError
from models.tokenizer import AudioTokenizer


def load_tokenizer(directory: str | Path, *, device: str = "cpu") -> AudioTokenizer:
    directory = Path(directory)
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{directory}: not a tokenizer directory (config.json is missing)")
    try:
        document = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{config_path}: corrupt config ({error})") from error
    kind = document.get("kind")
    if kind == "codec":
        from models.codec import load_codec

        return load_codec(directory, device=device)
    if kind == "spectral_codec":
        from models.codec.spectral import load_spectral_codec

        return load_spectral_codec(directory, device=device)
    if kind == "semantic_tokenizer":
        from models.semantic.tokenizer import load_semantic_tokenizer

        return load_semantic_tokenizer(directory, device=device)
    if document.get("model_type") == "encodec":
        from models.codec.pretrained_encodec import EncodecTokenizer

        return EncodecTokenizer(directory, device=device)
    raise CheckpointError(
        f"{directory}: unknown tokenizer (kind={kind!r}, model_type={document.get('model_type')!r}); expected "
        "a singsong codec or spectral codec, a singsong semantic tokenizer or a transformers EnCodec directory"
    )
