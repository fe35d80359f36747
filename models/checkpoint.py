"""Checkpoint format shared by every model of the project: safetensors weights + a JSON config, no pickle.

A checkpoint is a directory::

    my_model/
        config.json         {"format_version": 1, "kind": "codec", "config": {...}, "extra": {...},
                             "singsong_version": "0.1.0"}
        model.safetensors   the tensors (weights, k-means centroids, ...)

Training runs additionally keep `training_state.safetensors` + `training_state.json` (optimizer moments,
scheduler, step) so a run can resume exactly. Nothing is ever unpickled: loading a checkpoint from an
untrusted source cannot execute code.

Writes are atomic: files are written into a temporary sibling directory which then replaces the target
with `os.replace`-style renames, so a reader (or a crash) never sees half a checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from core.errors import SingsongError

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STATE_TENSORS_FILE = "training_state.safetensors"
STATE_JSON_FILE = "training_state.json"


class CheckpointError(SingsongError):
    """A checkpoint directory is missing, incomplete, corrupt, of the wrong kind or too new."""


@dataclass
class Checkpoint:
    kind: str
    config: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    path: Path | None = None


def _package_version() -> str:
    try:
        return metadata.version("singsong")
    except metadata.PackageNotFoundError:
        return "unknown"


def _replace_dir(tmp: Path, target: Path) -> None:
    """Move `tmp` to `target`, replacing an existing directory with as small a window as possible."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def save_checkpoint(
    directory: str | Path,
    *,
    kind: str,
    config: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write `tensors` and `config` to `directory` atomically; returns the directory.

    Tensors are made contiguous and moved to CPU; shared storage is cloned (safetensors refuses aliases).
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        save_file({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}, tmp / WEIGHTS_FILE)
        document = {
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "config": config,
            "extra": extra or {},
            "singsong_version": _package_version(),
        }
        (tmp / CONFIG_FILE).write_text(json.dumps(document, indent=2, sort_keys=True))
        # Keep any training state already in the directory (a model save must not drop resumability).
        for name in (STATE_TENSORS_FILE, STATE_JSON_FILE):
            if (directory / name).exists():
                shutil.copy2(directory / name, tmp / name)
        _replace_dir(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def read_checkpoint_config(directory: str | Path, *, kind: str | None = None) -> dict[str, Any]:
    """The parsed `config.json` document of a checkpoint, validated (kind, version) without loading weights."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: checkpoint directory does not exist")
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise CheckpointError(f"{directory}: not a checkpoint ({CONFIG_FILE} is missing)")
    try:
        document = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{config_path}: corrupt checkpoint config ({error})") from error
    if not isinstance(document, dict) or "kind" not in document or "config" not in document:
        raise CheckpointError(f"{config_path}: not a singsong checkpoint config (no 'kind'/'config')")
    version = document.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{config_path}: checkpoint format version {version!r} is newer than this singsong supports "
            f"({FORMAT_VERSION}); upgrade singsong"
        )
    if kind is not None and document["kind"] != kind:
        raise CheckpointError(f"{directory}: expected a '{kind}' checkpoint, found '{document['kind']}'")
    return document


def load_checkpoint(directory: str | Path, *, kind: str | None = None, device: str = "cpu") -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint`; `kind` (if given) must match."""
    directory = Path(directory)
    document = read_checkpoint_config(directory, kind=kind)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{directory}: checkpoint is incomplete ({WEIGHTS_FILE} is missing)")
    try:
        tensors = load_file(weights, device=device)
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{weights}: corrupt weights file ({error})") from error
    return Checkpoint(
        kind=document["kind"],
        config=document["config"],
        tensors=tensors,
        extra=document.get("extra", {}),
        format_version=document["format_version"],
        path=directory,
    )


# --------------------------------------------------------------------------------------------------------
# Training state (optimizer / scheduler / step) without pickle.
# --------------------------------------------------------------------------------------------------------


def _split_tensors(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace every tensor inside a nested dict/list by a `{"__tensor__": key}` reference."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {str(k): _split_tensors(v, f"{prefix}.{k}", tensors) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_split_tensors(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    return obj


def _join_tensors(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        return {k: _join_tensors(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_tensors(v, tensors) for v in obj]
    return obj


def _int_keys(state: dict[str, Any]) -> dict[Any, Any]:
    """Optimizer state dicts key per-parameter state by int; JSON turned those keys into strings."""
    return {int(k) if k.isdigit() else k: v for k, v in state.items()}


def save_training_state(
    directory: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None = None,
    step: int,
    extra: dict[str, Any] | None = None,
) -> None:
    """Save what is needed to resume training into `directory` (created if needed), atomically per file.

    The model weights go to `training_state.safetensors` too (prefixed `model.`), so a run directory is
    resumable even before its first exported model checkpoint.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {f"model.{k}": v for k, v in model.state_dict().items()}
    document = {
        "format_version": FORMAT_VERSION,
        "step": step,
        "optimizer": _split_tensors(optimizer.state_dict(), "optimizer", tensors),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "extra": extra or {},
    }
    tmp_tensors = directory / f".{STATE_TENSORS_FILE}.tmp"
    tmp_json = directory / f".{STATE_JSON_FILE}.tmp"
    save_file(
        {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()},
        tmp_tensors,
        metadata={"step": str(step)},
    )
    tmp_json.write_text(json.dumps(document))
    # Tensors first, then the JSON that refers to them: a crash in between leaves a JSON whose step differs
    # from the one in the tensors' metadata, which `load_training_state` reports instead of mixing them.
    os.replace(tmp_tensors, directory / STATE_TENSORS_FILE)
    os.replace(tmp_json, directory / STATE_JSON_FILE)


def has_training_state(directory: str | Path) -> bool:
    directory = Path(directory)
    return (directory / STATE_TENSORS_FILE).is_file() and (directory / STATE_JSON_FILE).is_file()


def load_training_state(
    directory: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
) -> dict[str, Any]:
    """Restore model/optimizer/scheduler in place; returns `{"step": int, **extra}`."""
    directory = Path(directory)
    if not has_training_state(directory):
        raise CheckpointError(f"{directory}: no training state to resume from")
    try:
        document = json.loads((directory / STATE_JSON_FILE).read_text())
        tensors = load_file(directory / STATE_TENSORS_FILE)
        with safe_open(directory / STATE_TENSORS_FILE, framework="pt") as handle:
            tensor_step = (handle.metadata() or {}).get("step")
    except (json.JSONDecodeError, SafetensorError, OSError) as error:
        raise CheckpointError(f"{directory}: corrupt training state ({error})") from error
    if tensor_step is not None and int(tensor_step) != int(document["step"]):
        raise CheckpointError(
            f"{directory}: training state is inconsistent (tensors at step {tensor_step}, "
            f"state file at step {document['step']}): the last save was interrupted"
        )
    model_state = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    model.load_state_dict(model_state)
    if optimizer is not None:
        optimizer_state = _join_tensors(document["optimizer"], tensors)
        optimizer_state["state"] = _int_keys(optimizer_state["state"])
        optimizer.load_state_dict(optimizer_state)
    if scheduler is not None and document.get("scheduler") is not None:
        scheduler.load_state_dict(document["scheduler"])
    return {"step": int(document["step"]), **document.get("extra", {})}
