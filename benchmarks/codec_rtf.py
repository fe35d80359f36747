"""Encode + decode real-time factor of the default codec vs EnCodec 24 kHz (`transformers.EncodecModel`).

Both models get the same 10 s of mono 24 kHz audio in the same process, on the same number of CPU threads
(2 by default, like the project's machines). EnCodec is built from `EncodecConfig()` (the 24 kHz model's
architecture) with random weights, which does not change its speed, so nothing is downloaded. It runs at
6 kbps, i.e. 8 codebooks at 75 Hz, the same number of RVQ levels as our default codec (8 at 50 Hz, 4 kbps).

Each model is warmed up once, then the two are timed in turns `--repeats` times and the medians reported
(taking turns keeps a shared machine's changing load from favouring one of them). RTF = processing
seconds / audio seconds (below 1 is faster than real time).

    .venv/bin/python benchmarks/codec_rtf.py [--threads 2] [--seconds 10] [--repeats 5] [--preset small]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch


def interleaved_medians(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Warm each function up once, then time them in turns (so load changes hit both alike); medians."""
    for fn in fns:
        fn()  # warm-up (allocations, oneDNN kernel selection)
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return [statistics.median(bucket) for bucket in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--preset", default="small", help="codec preset to time (default: the default config)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from transformers import EncodecConfig, EncodecModel

    from models.codec import build_codec, get_preset

    sample_rate = 24_000
    t = torch.arange(int(args.seconds * sample_rate)) / sample_rate
    wav = (0.3 * torch.sin(2 * torch.pi * 220 * t) + 0.05 * torch.randn_like(t))[None, None]  # [1, 1, T]

    codec = build_codec(get_preset(args.preset))
    assert codec.sample_rate == sample_rate
    codec.init_codebooks(wav)  # populated codebooks, as in a trained model
    codec.eval()

    def ours() -> None:
        with torch.inference_mode():
            codec.decode(codec.encode(wav))

    encodec = EncodecModel(EncodecConfig()).eval()

    def theirs() -> None:
        with torch.inference_mode():
            encoded = encodec.encode(wav, bandwidth=6.0)
            encodec.decode(encoded.audio_codes, encoded.audio_scales)

    with torch.inference_mode():
        encoded = encodec.encode(wav, bandwidth=6.0)
    codes = codec.encode(wav)
    ours_s, theirs_s = interleaved_medians([ours, theirs], args.repeats)
    ours_rtf, theirs_rtf = ours_s / args.seconds, theirs_s / args.seconds

    print(f"audio: {args.seconds:g} s mono @ {sample_rate} Hz, torch {torch.__version__}, {args.threads} threads")
    print(
        f"singsong codec ({args.preset}): {codec.num_parameters() / 1e6:.2f} M params, "
        f"{codec.frame_rate:g} Hz x {codec.num_codebooks} levels {tuple(codes.shape)}, "
        f"encode+decode {ours_s:.3f} s, RTF {ours_rtf:.4f} ({1 / ours_rtf:.0f}x real time)"
    )
    print(
        f"EnCodec 24 kHz @ 6 kbps: {sum(p.numel() for p in encodec.parameters()) / 1e6:.2f} M params, "
        f"codes {tuple(encoded.audio_codes.shape)}, "
        f"encode+decode {theirs_s:.3f} s, RTF {theirs_rtf:.4f} ({1 / theirs_rtf:.0f}x real time)"
    )
    print(f"speed-up vs EnCodec: {theirs_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
