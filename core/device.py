"""One place that turns a user's `--device` choice into a torch device name."""

from __future__ import annotations

from core.errors import SingsongError


def resolve_device(name: str) -> str:
    """ "auto" -> "cuda" when a GPU is visible, else "cpu"; "cuda..." without a GPU is a clear error.

    Returns a string (torch accepts it wherever a device goes) so callers that never touch torch, such as
    engine factories, can pass it on unchanged.
    """
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SingsongError(f"--device {name} was requested but no CUDA device is available")
    return name
