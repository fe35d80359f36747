"""A singsong model directory: codec + semantic tokenizer + cascade stages + one JSON manifest.

    MODEL/
        singsong.json   {"format": "singsong-model", "version": 1, "featurization": "M",
                         "vocal_noise_snr_db": 20.0, "codec": "codec", "semantic": "semantic",
                         "cascade": "cascade", "notes": "..."}
        codec/          our codec checkpoint, or a transformers EnCodec directory
        semantic/       semantic tokenizer (k-means); optional when nothing needs it at inference
        cascade/        the token transformers (see models.cascade)

Loading checks that the parts agree — the cascade was trained on tokens of exactly these tokenizers (frame
rates, vocabulary sizes, number of codebooks) — and fails with a message naming the part and the mismatch,
instead of generating garbage or crashing deep inside a forward pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import SingsongError
from models.tokenizer import AudioTokenizer
from pipelines.tokens.streams import StreamName, StreamNameError

MANIFEST = "singsong.json"
FORMAT = "singsong-model"
VERSION = 1


class ModelDirectoryError(SingsongError):
    """A model directory is missing parts, or its parts do not fit together."""


@dataclass(frozen=True)
class ModelManifest:
    featurization: str
    vocal_noise_snr_db: float | None
    codec: str = "codec"
    semantic: str | None = "semantic"
    cascade: str = "cascade"
    notes: str = ""
    #: Recommended sampling (GenerationOptions fields) for requests that leave them unset; {} = the defaults.
    sampling: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, **self.__dict__}


def read_manifest(directory: str | Path) -> ModelManifest:
    directory = Path(directory)
    path = directory / MANIFEST
    if not directory.is_dir():
        raise ModelDirectoryError(f"{directory}: model directory does not exist")
    if not path.is_file():
        raise ModelDirectoryError(f"{directory}: not a singsong model ({MANIFEST} is missing)")
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ModelDirectoryError(f"{path}: corrupt manifest ({error})") from error
    if document.get("format") != FORMAT:
        raise ModelDirectoryError(f"{path}: not a singsong model manifest (format={document.get('format')!r})")
    if not isinstance(document.get("version"), int) or document["version"] > VERSION:
        raise ModelDirectoryError(f"{path}: manifest version {document.get('version')!r} is newer than supported")
    fields = {k: document[k] for k in ModelManifest.__dataclass_fields__ if k in document}
    if "featurization" not in fields:
        raise ModelDirectoryError(f"{path}: manifest lacks 'featurization'")
    manifest = ModelManifest(**fields)
    from pipelines.inference.engine import DEFAULT_SAMPLING

    if not isinstance(manifest.sampling, dict) or set(manifest.sampling) - set(DEFAULT_SAMPLING):
        raise ModelDirectoryError(f"{path}: 'sampling' may only set {', '.join(DEFAULT_SAMPLING)}")
    for part in (manifest.codec, manifest.cascade, manifest.semantic):
        if part is not None and not (directory / part).is_dir():
            raise ModelDirectoryError(f"{directory}: part '{part}/' named in {MANIFEST} is missing")
    return manifest


def write_manifest(directory: str | Path, manifest: ModelManifest) -> Path:
    path = Path(directory) / MANIFEST
    path.write_text(json.dumps(manifest.to_dict(), indent=2) + "\n")
    return path


def _expect(problems: list[str], what: str, trained: Any, actual: Any) -> None:
    if isinstance(trained, float) or isinstance(actual, float):
        if abs(float(trained) - float(actual)) > 1e-6:
            problems.append(f"{what}: cascade trained with {trained}, tokenizer has {actual}")
    elif trained != actual:
        problems.append(f"{what}: cascade trained with {trained}, tokenizer has {actual}")


def check_compatibility(
    directory: Path,
    stream_specs: dict[str, dict[str, Any]],
    tokenizers: dict[str, AudioTokenizer | None],
    num_coarse_levels: int,
) -> None:
    """Raise ModelDirectoryError unless every stream the cascade uses matches its tokenizer.

    `tokenizers` maps "codec", "semantic", "melody", "beat" to loaded tokenizers (None when absent).
    """
    problems: list[str] = []
    acoustic_codebooks = 0
    for name, spec in stream_specs.items():
        try:
            stream = StreamName.parse(name)
        except StreamNameError as error:
            problems.append(str(error))
            continue
        tokenizer = tokenizers.get(stream.tokenizer)
        if tokenizer is None and stream.source == "instrumental" and stream.kind == "semantic":
            continue  # generated and consumed inside the cascade: no tokenizer needed at inference
        if tokenizer is None:
            problems.append(f"stream {name} needs a {stream.tokenizer} tokenizer, but the model has none")
            continue
        _expect(problems, f"{name} frame rate", spec["frame_rate"], tokenizer.frame_rate)
        _expect(problems, f"{name} vocabulary size", spec["cardinality"], tokenizer.cardinality)
        if not stream.acoustic:
            _expect(problems, f"{name} codebooks", spec["codebooks"], tokenizer.num_codebooks)
        if stream.source == "instrumental" and stream.acoustic:
            acoustic_codebooks += spec["codebooks"]
        if name == "instrumental.coarse":
            _expect(problems, "coarse levels", spec["codebooks"], num_coarse_levels)
    codec = tokenizers.get("codec")
    if codec is not None and acoustic_codebooks and acoustic_codebooks != codec.num_codebooks:
        problems.append(
            f"instrumental coarse+fine codebooks: cascade generates {acoustic_codebooks}, codec has "
            f"{codec.num_codebooks}"
        )
    if problems:
        raise ModelDirectoryError(f"{directory}: parts do not fit together: " + "; ".join(problems))


def _checkpoint_dir(path: Path) -> Path:
    """A checkpoint directory, given it or a training run directory that holds it in `model/`."""
    for candidate in (path, path / "model"):
        if (candidate / "config.json").is_file():
            return candidate
    raise ModelDirectoryError(f"{path}: neither a checkpoint nor a run directory with model/config.json")


def copy_tokenizer(source: str | Path, target: Path) -> None:
    """Copy a tokenizer checkpoint into a model directory, leaving training state (optimizer moments) behind."""
    import shutil

    source = _checkpoint_dir(Path(source))
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_file() and not item.name.startswith(("training_state", ".")):
            shutil.copy2(item, target / item.name)
