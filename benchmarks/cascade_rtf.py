"""Real-time factor of the token cascade: AudioLM back-end (semantic + coarse + fine) vs delay pattern
(semantic + delay) vs parallel (semantic + SoundStorm-style masked stage), at the default model size with
random weights (weights do not change the speed).

Streams: vocal and instrumental semantic tokens, 1 x 1024 codes at 25 Hz; codec 8 levels x 1024 codes at
50 Hz, 3 of them coarse (the default codec). Each stage is the default trunk of `singsong train cascade`
(d_model 256, 3 layers, 4 query heads, 2 key/value heads, MLP 1024) with default windows (10 s; fine 3 s),
featurisation S, top-k 250, guidance off (`--guidance 3` doubles the batch).

RTF = compute seconds / audio seconds. For a batch of B vocals of D seconds two figures are printed:
`latency` = seconds / D (how long one request waits, relative to its length) and `throughput` =
seconds / (B * D) (machine time per second of audio produced), both from the median wall time over
`--repeats` runs; `min` is the fastest run and `cpu` the process CPU time (all threads), which a shared
machine's load inflates less than wall time. Tokens/s counts every sampled code.

`--model DIR [DIR ...]` also times the whole `singsong accompany` path of a real model directory on the bundled example
vocal (looped to each length): featurise (noise + melody/semantic tokens), generate, codec decode, resample
and mix, with each part's share.

`--compare-decoders` also times one decoding step of our decoder (static KV cache + SDPA) against
`transformers`' `LlamaForCausalLM.generate` (dynamic and static caches) of the same size.

Threads: on a machine whose cores are shared with other jobs, OpenMP's busy-waiting threads can make
2 threads several times slower than 1; `OMP_WAIT_POLICY=PASSIVE` is set here unless the environment
sets it (it must be set before torch loads), which makes 2 threads about as fast as 1 under load.

    .venv/bin/python benchmarks/cascade_rtf.py [--threads 2] [--seconds 10 30] [--batch 1 8]
        [--back-ends parallel delay cascade] [--repeats 1] [--compare-decoders]
        [--d-model 256 --layers 3 --heads 4 --kv-heads 2] [--model models/checkpoints/default NEW_MODEL_DIR]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from models.cascade import (
    Cascade,
    SamplingConfig,
    StageLM,
    StreamInfo,
    TransformerConfig,
    build_stage_config,
    build_stage_model,
)
from models.cascade.sampling import Sampler
from pipelines.training.cascade import CascadeTrainOptions

STREAMS = {
    "vocals.semantic": StreamInfo("vocals.semantic", 1, 1024, 25.0),
    "instrumental.semantic": StreamInfo("instrumental.semantic", 1, 1024, 25.0),
    "instrumental.coarse": StreamInfo("instrumental.coarse", 3, 1024, 50.0),
    "instrumental.fine": StreamInfo("instrumental.fine", 5, 1024, 50.0),
}


def trunk_from(args: argparse.Namespace) -> TransformerConfig:
    """The default trunk of `singsong train cascade`, with any size given on the command line."""
    options = CascadeTrainOptions(stage="semantic", cache=Path(), out=Path())
    d_model, layers = args.d_model or options.d_model, args.layers or options.layers
    heads, kv_heads = args.heads or options.heads, options.kv_heads if args.kv_heads is None else args.kv_heads
    return TransformerConfig(d_model, layers, heads, num_kv_heads=kv_heads or None)


def build(back_end: str, trunk: TransformerConfig) -> Cascade:
    names = ["semantic", back_end] if back_end in ("delay", "parallel") else ["semantic", "coarse", "fine"]
    torch.manual_seed(0)
    stages = {
        n: build_stage_model(build_stage_config(n, STREAMS, ["vocals.semantic"], transformer=trunk)).eval()
        for n in names
    }
    return Cascade(stages, acoustic=back_end)


def time_generation(cascade: Cascade, seconds: float, batch: int, sampling: SamplingConfig) -> dict[str, float]:
    vocal = {"vocals.semantic": torch.randint(0, 1024, (batch, 1, round(seconds * 25)))}
    frames = round(seconds * 50)
    per_stage: dict[str, float] = {}
    for name, stage in cascade.stages.items():  # time each stage through a thin wrapper
        original = type(stage).generate

        def timed(*args, _stage=stage, _name=name, _original=original, **kwargs):
            start = time.perf_counter()
            out = _original(_stage, *args, **kwargs)
            per_stage[_name] = per_stage.get(_name, 0.0) + time.perf_counter() - start
            return out

        stage.generate = timed
    start, cpu_start = time.perf_counter(), time.process_time()
    codes = cascade.generate(vocal, frames, sampling, seeds=list(range(batch)))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    for stage in cascade.stages.values():
        del stage.generate
    steps = sum(
        s.generation_steps(frames if n != "semantic" else round(seconds * 25))
        for n, s in cascade.stages.items()
        if n == "semantic" or n in ([cascade.acoustic] if cascade.acoustic != "cascade" else ["coarse", "fine"])
    )
    tokens = batch * (round(seconds * 25) + codes.shape[1] * codes.shape[2])
    return {
        "seconds": elapsed,
        "cpu": cpu,
        "steps": steps,
        "tokens": tokens,
        **{f"stage/{k}": v for k, v in per_stage.items()},
    }


EXAMPLE_VOCAL = Path(__file__).resolve().parents[1] / "pipelines" / "inference" / "examples" / "vocal.flac"


def time_accompany(model_dir: Path, seconds: float, batch: int, generation_threads: int | None = 0) -> dict[str, float]:
    """Wall seconds of `Accompanist.accompany_batch` on `batch` copies of the looped example vocal, by part.
    `generation_threads`: override the engine's threads for generation (0: keep the engine's choice)."""
    import numpy as np

    from core.audio import Audio, load_audio
    from pipelines.inference.accompanist import Accompanist
    from pipelines.inference.engine import GenerationOptions

    accompanist = Accompanist.from_pretrained(model_dir)
    if generation_threads != 0:
        accompanist.generation_threads = generation_threads
    example = load_audio(EXAMPLE_VOCAL)
    frames = round(seconds * example.sample_rate)
    vocal = Audio(np.resize(example.samples, (example.channels, frames)), example.sample_rate)
    parts: dict[str, float] = {}

    def timed(obj: object, attribute: str, name: str) -> None:
        original = getattr(obj, attribute)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            out = original(*args, **kwargs)
            parts[name] = parts.get(name, 0.0) + time.perf_counter() - start
            return out

        setattr(obj, attribute, wrapper)

    timed(accompanist, "featurize", "featurize")
    timed(accompanist.cascade, "generate", "generate")
    timed(accompanist.codec, "decode", "decode")
    accompanist.accompany_batch([vocal], [GenerationOptions(seed=0)])  # warm-up
    parts.clear()
    start = time.perf_counter()
    accompanist.accompany_batch([vocal] * batch, [GenerationOptions(seed=i) for i in range(batch)])
    total = time.perf_counter() - start
    parts["resample+mix"] = total - sum(parts.values())
    return {"seconds": total, **parts}


def decoder_step_ms(batch: int, trunk: TransformerConfig, prompt: int = 100, new: int = 300) -> dict[str, float]:
    """ms per sampled token: our decoder (one 1024-code head, top-k 250) vs HF Llama `generate`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    results = {}
    streams = {n: STREAMS[n] for n in ("vocals.semantic", "instrumental.semantic")}
    ours = StageLM(
        build_stage_config("semantic", {**STREAMS, **streams}, ["vocals.semantic"], transformer=trunk)
    ).eval()
    condition = {"vocals.semantic": torch.randint(0, 1024, (batch, 1, prompt))}
    empty = torch.zeros(batch, 1, 0, dtype=torch.long)
    sampling = SamplingConfig(top_k=250)
    ours.generate_window(condition, empty, 20, Sampler(sampling, range(batch)))  # warm-up
    start = time.perf_counter()
    ours.generate_window(condition, empty, new, Sampler(sampling, range(batch)))
    results["ours (static KV cache + SDPA)"] = (time.perf_counter() - start) / new * 1e3
    for heads in sorted({trunk.num_heads, trunk.kv_heads}, reverse=True):
        config = LlamaConfig(
            vocab_size=1024,
            hidden_size=trunk.d_model,
            intermediate_size=int(trunk.mlp_ratio * trunk.d_model),
            num_hidden_layers=trunk.num_layers,
            num_attention_heads=trunk.num_heads,
            num_key_value_heads=heads,
            max_position_embeddings=4096,
        )
        llama = LlamaForCausalLM(config).eval()
        ids = torch.randint(0, 1024, (batch, prompt))
        for cache in ("dynamic", "static"):
            kwargs = {"do_sample": True, "top_k": 250, "max_new_tokens": new, "min_new_tokens": new, "pad_token_id": 0}
            if cache == "static":
                kwargs["cache_implementation"] = "static"
            with torch.inference_mode():
                llama.generate(ids, **{**kwargs, "max_new_tokens": 20, "min_new_tokens": 20})
                start = time.perf_counter()
                llama.generate(ids, **kwargs)
            results[f"HF Llama generate ({cache} cache, {heads} kv heads)"] = (time.perf_counter() - start) / new * 1e3
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 30.0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--back-ends", nargs="*", default=["delay", "cascade"], choices=["parallel", "delay", "cascade"]
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration (median reported)")
    parser.add_argument("--guidance", type=float, default=1.0)
    parser.add_argument("--compare-decoders", action="store_true")
    parser.add_argument("--d-model", type=int, default=None, help="override the default trunk size")
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--heads", type=int, default=None)
    parser.add_argument("--kv-heads", type=int, default=None, help="0 = one per query head")
    parser.add_argument(
        "--model", type=Path, nargs="*", default=[], help="also time `accompany` with these model directories"
    )
    parser.add_argument(
        "--generation-threads", type=int, default=0, help="--model: threads for generation (0: the engine's choice)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    trunk = trunk_from(args)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {args.threads} threads, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, "
        f"load average {load:.1f}"
    )
    print(f"trunk per stage: {trunk}")
    if args.compare_decoders:
        for batch in args.batch:
            for name, ms in decoder_step_ms(batch, trunk).items():
                print(f"decoder step, batch {batch}: {name:45s} {ms:6.2f} ms/step")
    sampling = SamplingConfig(top_k=250, guidance_scale=args.guidance)
    print(
        f"{'back-end':8s} {'audio':>5s} {'batch':>5s} {'wall':>6s} {'min':>6s} {'cpu':>6s} {'latency RTF':>11s} "
        f"{'thru RTF':>8s} {'tokens/s':>8s} {'ms/step':>7s}  per stage (wall s)"
    )
    for back_end in args.back_ends:
        cascade = build(back_end, trunk)
        params = ", ".join(f"{n} {c / 1e6:.2f}M" for n, c in cascade.num_parameters().items())
        print(f"# {back_end}: parameters {params}")
        cascade.generate({"vocals.semantic": torch.zeros(1, 1, 25, dtype=torch.long)}, 50, sampling, [0])  # warm-up
        for seconds in args.seconds:
            for batch in args.batch:
                runs = [time_generation(cascade, seconds, batch, sampling) for _ in range(args.repeats)]
                fastest = min(runs, key=lambda r: r["seconds"])
                wall = statistics.median(r["seconds"] for r in runs)
                cpu = statistics.median(r["cpu"] for r in runs)
                stages = " ".join(f"{k.split('/')[1]} {v:.1f}" for k, v in fastest.items() if k.startswith("stage/"))
                print(
                    f"{back_end:8s} {seconds:4.0f}s {batch:5d} {wall:5.1f}s {fastest['seconds']:5.1f}s {cpu:5.1f}s "
                    f"{wall / seconds:11.3f} {wall / (seconds * batch):8.3f} {fastest['tokens'] / wall:8.0f} "
                    f"{wall / fastest['steps'] * 1e3:7.2f}  {stages}",
                    flush=True,
                )
    for model in args.model:
        threads = "" if args.generation_threads == 0 else f", generation on {args.generation_threads} thread(s)"
        print(
            f"# singsong accompany, {model} (featurise + generate + decode + mix), the model's recommended sampling"
            f"{threads}"
        )
        print(f"{'audio':>5s} {'batch':>5s} {'wall':>6s} {'latency RTF':>11s} {'thru RTF':>8s}  share of the time")
        for seconds in args.seconds:
            for batch in args.batch:
                timing = time_accompany(model, seconds, batch, args.generation_threads)
                wall = timing.pop("seconds")
                shares = " ".join(f"{k} {v / wall:.0%}" for k, v in timing.items())
                print(
                    f"{seconds:4.0f}s {batch:5d} {wall:5.1f}s {wall / seconds:11.3f} {wall / (seconds * batch):8.3f}  "
                    f"{shares}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
