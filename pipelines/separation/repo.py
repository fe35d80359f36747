"""Demucs model repositories: load a separator by name, build small models, export them as demucs does.

Demucs (Défossez, 2021, "Hybrid Spectrogram and Waveform Source Separation"; Rouard et al., 2023, "Hybrid
Transformers for Music Source Separation") distributes models as a *repository*: a folder of `.th` files
named `<signature>-<sha256[:8]>.th` (or `<signature>.th`) plus optional `<bag>.yaml` files listing several
signatures to average. Each `.th` is a `torch.save` of `{"klass", "args", "kwargs", "state"}`: the class
and the constructor arguments captured by demucs' `capture_init`, then the weights. `demucs.pretrained.
get_model(name, repo=DIR)` verifies the checksum in the file name and rebuilds the model.

We write exactly that format with demucs' own pieces (`_init_args_kwargs` from `capture_init`,
`demucs.states.get_state`, `demucs.repo.check_checksum`), so a separator trained here loads with
`get_model`, with `python -m demucs --repo DIR -n SIG` and in `singsong pipeline separate --repo DIR`
exactly like a pretrained model. (`demucs.states.serialize_model` itself needs omegaconf, which is only in
demucs' training extra; the package it builds is the same dict.) These files are pickles: only load
repositories you trust.

Loading never goes to the network on its own: without a local `repo`, demucs 4.1.0 first tries the
Hugging Face hub, which offline costs ~24 s of retries, so `HF_HUB_OFFLINE=1` is set unless the caller set it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.errors import SingsongError

logger = logging.getLogger(__name__)

TWO_STEMS = ("vocals", "instrumental")
FOUR_STEMS = ("drums", "bass", "other", "vocals")


class SeparatorLoadError(SingsongError):
    """A demucs model could not be found, verified or built."""


@dataclass(frozen=True)
class ModelInfo:
    """What the rest of the pipeline needs to know about a loaded separator."""

    name: str
    repo: str | None
    sources: tuple[str, ...]
    sample_rate: int
    channels: int
    segment: float  # seconds per forward chunk the model was built/trained for
    max_segment: float | None  # HTDemucs cannot run on chunks longer than its training segment
    parameters: int
    bag_size: int  # 1 for a single model


def load_separator(name: str, repo: str | os.PathLike[str] | None = None) -> tuple[Any, ModelInfo]:
    """(model, info) for a demucs model: a pretrained name (`htdemucs`, `htdemucs_ft`, ...) or a signature/bag
    in a local repository. The model is in eval mode on the CPU."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from demucs.apply import BagOfModels
    from demucs.htdemucs import HTDemucs
    from demucs.pretrained import get_model

    repo_path = Path(repo) if repo is not None else None
    if repo_path is not None and not repo_path.is_dir():
        raise SeparatorLoadError(f"{repo_path}: demucs model repository does not exist")
    try:
        model = get_model(name, repo=repo_path)
    except SystemExit as error:  # demucs.utils.fatal calls sys.exit
        raise SeparatorLoadError(f"cannot load demucs model {name!r}: {error}") from None
    except Exception as error:  # ModelLoadingError, network errors, unpickling errors
        where = f"repository {repo_path}" if repo_path else "the pretrained catalogue (no network here? use --repo)"
        raise SeparatorLoadError(f"cannot load demucs model {name!r} from {where}: {error}") from error
    members = list(model.models) if isinstance(model, BagOfModels) else [model]
    max_segment = min((float(m.segment) for m in members if isinstance(m, HTDemucs)), default=None)
    info = ModelInfo(
        name=name,
        repo=str(repo_path) if repo_path else None,
        sources=tuple(model.sources),
        sample_rate=int(model.samplerate),
        channels=int(model.audio_channels),
        segment=float(min(float(m.segment) for m in members)),
        max_segment=max_segment,
        parameters=sum(p.numel() for p in model.parameters()),
        bag_size=len(members),
    )
    if "vocals" not in info.sources:
        raise SeparatorLoadError(f"model {name!r} has no 'vocals' source (sources: {', '.join(info.sources)})")
    return model.eval(), info


def build_model(
    kind: str = "hdemucs",
    *,
    sources: tuple[str, ...] = TWO_STEMS,
    channels: int = 8,
    depth: int = 5,
    sample_rate: int = 44100,
    segment: float = 10.0,
    audio_channels: int = 2,
    **overrides: Any,
) -> torch.nn.Module:
    """A (small) HDemucs or HTDemucs built from scratch.

    Hybrid demucs needs the STFT hop to equal the time branch's total stride, 4 ** (depth - 1), so
    `nfft = 4 ** depth` (depth 6 -> 4096, the published models; depth 5 -> 1024; depth 3 -> 64 for tests).
    HTDemucs puts its cross-domain transformer after the last encoder layer and needs frequency bins left
    there (8 in the published model), hence its default `nfft = 4 ** (depth + 2)` (depth 4 -> 4096).
    `overrides` go to the constructor unchanged.
    """
    from demucs.hdemucs import HDemucs
    from demucs.htdemucs import HTDemucs

    common: dict[str, Any] = {
        "sources": list(sources),
        "audio_channels": audio_channels,
        "channels": channels,
        "depth": depth,
        "samplerate": sample_rate,
        "segment": segment,
    }
    if kind == "hdemucs":
        return HDemucs(**{"nfft": 4**depth, **common, **overrides})
    if kind == "htdemucs":
        defaults = {"nfft": 4 ** (depth + 2), "t_layers": 1, "t_heads": 4, "bottom_channels": 0}
        return HTDemucs(**{**defaults, **common, **overrides})
    raise SingsongError(f"unknown separator architecture {kind!r} (choose hdemucs or htdemucs)")


def model_package(model: torch.nn.Module, training_args: dict[str, Any] | None = None, half: bool = False) -> dict:
    """The dict demucs' `serialize_model` builds: class, captured constructor arguments, weights."""
    from demucs.states import get_state

    if not hasattr(model, "_init_args_kwargs"):
        raise SingsongError(f"{type(model).__name__} was not built through demucs' capture_init")
    args, kwargs = model._init_args_kwargs
    return {
        "klass": model.__class__,
        "args": args,
        "kwargs": kwargs,
        "state": get_state(model, None, half),
        "training_args": training_args or {},
    }


def export_to_repo(
    model: torch.nn.Module,
    repo: str | os.PathLike[str],
    signature: str,
    *,
    training_args: dict[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Save `model` into the demucs repository `repo` as `<signature>-<sha256[:8]>.th`; returns the file.

    Atomic: the package is written to a hidden temporary file, hashed, then renamed into place; older files
    of the same signature are removed afterwards (demucs refuses a repository with duplicate signatures).
    `half=True` stores float16 weights, as demucs does for its releases (half the size).
    """
    if not signature or "-" in signature or "/" in signature or signature.startswith("."):
        raise SingsongError(f"invalid model signature {signature!r}: no '-', '/' or leading '.'")
    repo = Path(repo)
    repo.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{signature}.", suffix=".part", dir=repo)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        torch.save(model_package(model, training_args, half), tmp)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
        target = repo / f"{signature}-{digest}.th"
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a repository is meant to be shared
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    for old in [*repo.glob(f"{signature}-*.th"), repo / f"{signature}.th"]:
        if old != target and old.exists() and old.stem.rsplit("-", 1)[0] == signature:
            old.unlink()
    logger.info("exported %s to %s", signature, target)
    return target


def list_repo(repo: str | os.PathLike[str]) -> dict[str, Path]:
    """Signatures (and bag names) in a local repository -> file."""
    from demucs.repo import BagOnlyRepo, LocalRepo

    model_repo = LocalRepo(Path(repo))
    found = dict(model_repo.list_model())
    found.update(BagOnlyRepo(Path(repo), model_repo).list_model())
    return {name: Path(path) for name, path in found.items()}


__all__ = [
    "FOUR_STEMS",
    "TWO_STEMS",
    "ModelInfo",
    "SeparatorLoadError",
    "build_model",
    "export_to_repo",
    "list_repo",
    "load_separator",
    "model_package",
]
