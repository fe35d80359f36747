"""`singsong eval cascade`: teacher-forced loss and accuracy of every stage of a cascade model on a cache split.

The validation of `singsong train cascade` (`pipelines.training.cascade.evaluate`), run on fixed windows of a
token-cache split for each stage of a finished model directory. Stages conditioned on the vocal are also scored
with every window's vocal streams swapped for another window's of the same batch
(`valid/loss_ce_other_vocal`): the gap to `valid/loss_ce` is how much the stage's predictions depend on *this*
vocal (0 = it ignores the vocal).

With `--plans N --harmony-tokenizer DIR`, the semantic stage also *generates* the harmony plans of N songs,
scored against their vocals without audio (`semantic_plan.py`): the margin of the plan sampled from the
song's own vocal vs from another song's vocal says whether sampling, not just teacher forcing, follows it.

Usage::

    singsong eval cascade --model MODEL_DIR --cache data/cache --split test --json reports/cascade.json
    singsong eval cascade --model RUN_DIR --cache data/cache --plans 20 \
        --harmony-tokenizer models/checkpoints/semantic_harmony --top-k 50 --guidance 2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from core.device import resolve_device


def evaluate_model(
    model_dir: Path,
    cache_dir: Path,
    *,
    split: str = "test",
    batches: int = 8,
    batch_size: int = 8,
    noise_prob: float = 0.0,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, dict[str, float]]:
    """Teacher-forced scalars of every stage of a cascade model directory on windows of a cache split.

    `model_dir` may also be one stage: a stage checkpoint or a `train cascade` run directory (its `best/`, else
    its latest state), so a stage can be judged before the stages after it exist.
    """
    import torch

    from models.cascade import Cascade
    from pipelines.inference.model_dir import read_manifest
    from pipelines.tokens.reader import TokenCache
    from pipelines.training.cascade import evaluate
    from pipelines.training.cascade_data import WindowSampler

    model_dir, torch_device = Path(model_dir), torch.device(resolve_device(device))
    if (model_dir / "singsong.json").is_file():  # a complete model directory: its cascade part
        model_dir = model_dir / read_manifest(model_dir).cascade
    if (model_dir / "cascade.json").is_file():
        stages = Cascade.from_pretrained(model_dir, device=torch_device).stages
    else:
        stages = {"stage": _load_stage(model_dir, torch_device)}
    cache = TokenCache(cache_dir)
    results = {}
    for name, stage in stages.items():
        name = stage.config.stage if name == "stage" else name
        data = WindowSampler(cache, stage.config, split, noise_prob=noise_prob)
        fixed = data.fixed_batches(batches, batch_size, seed=seed)
        results[name] = evaluate(stage, fixed, torch_device)
        guided = set(stage.config.guided)
        if guided and batch_size > 1:
            swapped = [{k: v.roll(1, dims=0) if k in guided else v for k, v in batch.items()} for batch in fixed]
            results[name]["valid/loss_ce_other_vocal"] = evaluate(stage, swapped, torch_device)["valid/loss_ce"]
    return results


def _load_stage(directory: Path, device: Any) -> Any:
    """A stage checkpoint, or the best (else latest) one of a `train cascade` run directory."""
    from core.errors import SingsongError
    from models.cascade import StageModel

    for candidate in (directory, directory / "best", directory / "model"):
        if (candidate / "config.json").is_file():
            return StageModel.from_pretrained(candidate, device=device).eval()
    raise SingsongError(f"{directory}: neither a cascade model directory nor a stage checkpoint or run")


def _run(args: argparse.Namespace) -> int:
    results = evaluate_model(
        Path(args.model),
        Path(args.cache),
        split=args.split,
        batches=args.batches,
        batch_size=args.batch_size,
        noise_prob=args.noise_prob,
        seed=args.seed,
        device=args.device,
    )
    for name, scalars in results.items():
        other = scalars.get("valid/loss_ce_other_vocal")
        versus = f"  (another song's vocal: loss {other:.4f})" if other is not None else ""
        print(
            f"{name:9s} loss {scalars['valid/loss_ce']:.4f}  accuracy {scalars['valid/metrics_accuracy']:.3f}{versus}"
        )
    report: dict[str, Any] = dict(results)
    if args.plans:
        report["plans"] = _plans(args)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


def _plans(args: argparse.Namespace) -> dict[str, Any]:
    """`--plans`: generate and score harmony plans with the model's semantic stage."""
    import torch

    from core.errors import SingsongError
    from models.cascade import Cascade, SamplingConfig
    from pipelines.evaluation.semantic_plan import evaluate_plans, format_plan_table
    from pipelines.inference.model_dir import read_manifest
    from pipelines.tokens.reader import TokenCache

    if not args.harmony_tokenizer:
        raise SingsongError("--plans needs --harmony-tokenizer (the tokenizer of the instrumental.semantic stream)")
    model_dir, device = Path(args.model), torch.device(resolve_device(args.device))
    if (model_dir / "singsong.json").is_file():
        model_dir = model_dir / read_manifest(model_dir).cascade
    if (model_dir / "cascade.json").is_file():
        stage = Cascade.from_pretrained(model_dir, device=device).stages["semantic"]
    else:
        stage = _load_stage(model_dir, device)
    if stage.config.stage != "semantic":
        raise SingsongError(f"{args.model}: --plans needs a semantic stage, this is a {stage.config.stage} stage")
    sampling = SamplingConfig(temperature=args.temperature, top_k=args.top_k, guidance_scale=args.guidance)
    plans = evaluate_plans(
        stage,
        TokenCache(args.cache),
        Path(args.harmony_tokenizer),
        split=args.split,
        songs=args.plans,
        sampling=sampling,
        seed=args.seed,
        candidates=args.plan_candidates,
        key_strength=args.key_strength,
    )
    best_of = f", best of {args.plan_candidates}" if args.plan_candidates > 1 else ""
    best_of += f", key prior {args.key_strength:g}" if args.key_strength > 0 else ""
    print(f"harmony plans of {plans['songs']} {args.split} songs ({sampling}{best_of}):")
    print(format_plan_table(plans["summary"]))
    return plans


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    """Add `singsong eval cascade`."""
    parser = groups["eval"].add_parser(
        "cascade",
        help="teacher-forced loss/accuracy of every stage of a cascade model on a token cache split",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="model directory (or its cascade/ part)")
    parser.add_argument("--cache", required=True, help="token cache directory")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--noise-prob", type=float, default=0.0, help="noisy vocal condition probability")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--plans", type=int, default=0, help="also generate and score this many harmony plans")
    parser.add_argument("--harmony-tokenizer", default=None, help="tokenizer of instrumental.semantic (--plans)")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling of the plans")
    parser.add_argument("--top-k", type=int, default=50, help="sampling of the plans")
    parser.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance of the plans")
    parser.add_argument("--plan-candidates", type=int, default=1, help="plans sampled per song, the critic's best kept")
    parser.add_argument("--key-strength", type=float, default=0.0, help="key prior on the plans (0 = off)")
    parser.set_defaults(handler=_run)


__all__ = ["evaluate_model", "register"]
