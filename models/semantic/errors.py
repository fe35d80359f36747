"""Errors raised by the semantic tokenizer (bad configuration, unusable pretrained encoder, too little data).

Both derive from `SingsongError`, so the CLI reports them as one-line messages naming the file or option.
"""

from __future__ import annotations

from core.errors import SingsongError


class SemanticTokenizerError(SingsongError):
    """Invalid semantic tokenizer configuration, or data that cannot fit one (e.g. fewer frames than k)."""


class PretrainedEncoderError(SemanticTokenizerError):
    """A local pretrained speech encoder (HuBERT, wav2vec 2.0, ...) is missing, incomplete or unsupported."""
