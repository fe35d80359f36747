"""`singsong train cascade-assemble`: put trained cascade stages (and tokenizers) into one model directory.

The last step of the training recipe and the first of inference: it writes what `singsong accompany --model`
loads (`model_dir.py`), so it lives with inference rather than with the trainers (which never import
inference). Stages come from their run directories (`RUN/best` or `RUN/model`) or checkpoints; with
`--codec` (and `--semantic-tokenizer`) the directory is complete (tokenizers + `cascade/` + `singsong.json`)
and is loaded once by `Accompanist.from_pretrained`, which names any part that does not fit the others.

Usage::

    singsong train cascade-assemble --semantic runs/stage_semantic/best --delay runs/stage_delay/best \\
        --codec runs/codec --semantic-tokenizer runs/semantic --out MODEL_DIR --weights-dtype float16
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipelines.training.cascade import CLI_FEATURIZATIONS

WEIGHTS_DTYPES = ("float32", "float16", "bfloat16")


def assemble_model(
    out: Path,
    stages: dict[str, str | None],
    *,
    featurization: str | None = None,
    weights_dtype: str = "float32",
    codec: str | None = None,
    semantic_tokenizer: str | None = None,
    vocal_noise_snr_db: float | None = 20.0,
    sampling: dict[str, float] | None = None,
    iterations: dict[str, tuple[int, ...]] | None = None,
) -> Any:
    """Write the cascade of `stages` (semantic/coarse/fine/delay/parallel -> run or checkpoint) to `out`.

    With `codec`, `out` becomes a complete model directory and the cascade goes to `out/cascade`; `sampling`
    is then its recommended sampling (`GenerationOptions` fields a request may leave unset). Returns the cascade.
    """
    import torch

    from models.cascade import build_cascade
    from pipelines.inference.model_dir import ModelManifest, copy_tokenizer, write_manifest

    out = Path(out)
    cascade_dir = out
    if codec is not None:
        copy_tokenizer(codec, out / "codec")
        if semantic_tokenizer is not None:
            copy_tokenizer(semantic_tokenizer, out / "semantic")
        cascade_dir = out / "cascade"
    dtype = {"float32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}[weights_dtype]
    cascade = build_cascade(
        cascade_dir, **stages, featurization=featurization, weights_dtype=dtype, iterations=iterations
    )
    if codec is not None:
        from pipelines.inference.accompanist import Accompanist

        manifest = ModelManifest(
            featurization=cascade.featurization,
            vocal_noise_snr_db=vocal_noise_snr_db,
            semantic="semantic" if semantic_tokenizer is not None else None,
            sampling=dict(sampling or {}),
        )
        write_manifest(out, manifest)
        Accompanist.from_pretrained(out)  # fails with a message naming any part that does not fit
    return cascade


def _sampling(text: str | None) -> dict[str, float]:
    """`--sampling` JSON -> the recommended sampling, checked against `GenerationOptions`."""
    import json

    from core.errors import SingsongError
    from pipelines.inference.engine import DEFAULT_SAMPLING, GenerationOptions

    if not text:
        return {}
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise SingsongError(f"--sampling: not valid JSON ({error})") from error
    if not isinstance(values, dict) or set(values) - set(DEFAULT_SAMPLING):
        raise SingsongError(f"--sampling must be a JSON object of {', '.join(DEFAULT_SAMPLING)}")
    try:
        GenerationOptions(**values).validate()
    except (TypeError, ValueError) as error:
        raise SingsongError(f"--sampling: {error}") from error
    return values


def _passes(args: argparse.Namespace) -> dict[str, tuple[int, ...]]:
    """`--semantic-passes` / `--parallel-passes` "8,1,1" -> {stage: passes}."""
    from core.errors import SingsongError

    passes = {}
    for stage in ("semantic", "parallel"):
        text = getattr(args, f"{stage}_passes", None)
        if text:
            try:
                passes[stage] = tuple(int(n) for n in text.split(","))
            except ValueError as error:
                raise SingsongError(f"--{stage}-passes must be comma-separated integers, got {text!r}") from error
    return passes


def _run(args: argparse.Namespace) -> int:
    stages = {
        "semantic": args.semantic,
        "coarse": args.coarse,
        "fine": args.fine,
        "delay": args.delay,
        "parallel": args.parallel,
    }
    cascade = assemble_model(
        Path(args.out),
        stages,
        featurization=args.featurization,
        weights_dtype=args.weights_dtype,
        codec=args.codec,
        semantic_tokenizer=args.semantic_tokenizer,
        vocal_noise_snr_db=args.vocal_noise_snr,
        sampling=_sampling(args.sampling),
        iterations=_passes(args),
    )
    cascade_dir = Path(args.out) / "cascade" if args.codec is not None else Path(args.out)
    sizes = ", ".join(f"{name} {count / 1e6:.2f}M" for name, count in cascade.num_parameters().items())
    print(f"cascade ({cascade.featurization}, {cascade.acoustic} back-end; {sizes}) -> {cascade_dir}")
    if args.codec is not None:
        print(f"model directory for `singsong accompany --model {args.out}` is complete")
    return 0


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    """Add `singsong train cascade-assemble`."""
    parser = groups["train"].add_parser(
        "cascade-assemble",
        help="put trained cascade stages into one model directory",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--semantic", required=True, help="run directory or stage checkpoint")
    parser.add_argument("--coarse", default=None)
    parser.add_argument("--fine", default=None)
    parser.add_argument("--delay", default=None)
    parser.add_argument("--parallel", default=None, help="the parallel (masked) acoustic stage")
    parser.add_argument("--featurization", default=None, choices=sorted(CLI_FEATURIZATIONS), help="check it")
    parser.add_argument("--out", required=True, help="model directory to write")
    parser.add_argument(
        "--weights-dtype",
        default="float32",
        choices=WEIGHTS_DTYPES,
        help="precision the stage weights are stored at (float16: half the size, to ship)",
    )
    parser.add_argument(
        "--codec", default=None, help="codec checkpoint or run: write a complete model directory (tokenizers + cascade)"
    )
    parser.add_argument("--semantic-tokenizer", default=None, help="semantic tokenizer directory (with --codec)")
    parser.add_argument(
        "--vocal-noise-snr",
        type=float,
        default=20.0,
        help="SNR (dB) of the white noise added to vocals at inference (with --codec)",
    )
    for stage in ("semantic", "parallel"):
        parser.add_argument(
            f"--{stage}-passes", default=None, help=f"masked {stage} stage: decoding passes per level, e.g. 8,1,1"
        )
    parser.add_argument(
        "--sampling",
        default=None,
        help="recommended sampling for requests that leave it unset (with --codec), e.g. '{\"guidance_scale\": 3}'",
    )
    parser.set_defaults(handler=_run)


__all__ = ["WEIGHTS_DTYPES", "assemble_model", "register"]
