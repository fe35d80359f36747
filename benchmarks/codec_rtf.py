"""Encode + decode real-time factor: the spectral codec vs the SEANet codec vs EnCodec 24 kHz, in one run.

All three get the same 10 s of mono 24 kHz audio in the same process on the same number of CPU threads (2 by
default, like the project's machines):

* the spectral codec (`models/codec/spectral.py`): `--spectral DIR` (default the committed
  `models/checkpoints/default/codec`, else an untrained `small` preset with k-means-initialised codebooks, which
  runs at the same speed); its decode includes the NNLS mel inverse and Griffin-Lim (`--gl-iters`);
* the SEANet codec: `--seanet DIR` (a trained one, e.g. the v1 default model's `codec/` from git history),
  else the v1 default's architecture (`small` preset) untrained with k-means-initialised codebooks, which runs
  at the same speed (the shipped default model's codec is the spectral one since 2026-12-03);
* EnCodec, built from `EncodecConfig()` (the 24 kHz model's architecture) with random weights, which does not
  change its speed, so nothing is downloaded; 6 kbps = 8 codebooks at 75 Hz.

Each model is warmed up once, then they are timed in turns `--repeats` times and the medians reported (taking
turns keeps a shared machine's changing load from favouring one of them). RTF = processing seconds / audio
seconds (below 1 is faster than real time). Griffin-Lim iterations vs time are listed with `--sweep`.

    .venv/bin/python benchmarks/codec_rtf.py [--threads 2] [--seconds 10] [--repeats 5] [--sweep]
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

ROOT = Path(__file__).resolve().parents[1]


def interleaved_medians(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Warm each function up once, then time them in turns (so load changes hit all alike); medians."""
    for fn in fns:
        fn()  # warm-up (allocations, oneDNN kernel selection)
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return [statistics.median(bucket) for bucket in times]


def test_signal(seconds: float, sample_rate: int) -> torch.Tensor:
    """`[1, 1, T]`: a chord with harmonics, a pulsing bass and a little noise (something to encode)."""
    torch.manual_seed(0)
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    chord = sum(0.1 * torch.sin(2 * torch.pi * f * t) for f in (261.6, 329.6, 392.0, 523.3))
    bass = 0.2 * torch.sin(2 * torch.pi * 65.4 * t) * (torch.sin(2 * torch.pi * 2 * t) > 0)
    return (chord + bass + 0.02 * torch.randn_like(t))[None, None]


def spectral_codec(directory: Path | None, wav: torch.Tensor):
    from models.codec.spectral import build_spectral_codec, load_spectral_codec
    from models.codec.spectral_config import get_spectral_preset

    if directory is not None and (directory / "config.json").is_file():
        return load_spectral_codec(directory), str(
            directory.relative_to(ROOT) if directory.is_relative_to(ROOT) else directory
        )
    codec = build_spectral_codec(get_spectral_preset("small"))
    mel = codec.log_mel(wav)
    codec.calibrate(mel)
    codec.init_codebooks(mel)
    return codec.eval(), "untrained small preset"


def seanet_codec(directory: Path | None, wav: torch.Tensor):
    from models.codec import build_codec, get_preset, load_codec

    if directory is not None and (directory / "config.json").is_file():
        return load_codec(directory).eval(), directory.name
    codec = build_codec(get_preset("small"))
    codec.init_codebooks(wav)
    return codec.eval(), "untrained small preset"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--spectral", type=Path, default=ROOT / "models/checkpoints/default/codec")
    parser.add_argument("--seanet", type=Path, default=None, help="a trained SEANet codec (default: untrained)")
    parser.add_argument("--gl-iters", type=int, default=None, help="Griffin-Lim iterations (default: the codec's)")
    parser.add_argument("--sweep", action="store_true", help="also time decode at 8/16/32/64 Griffin-Lim iterations")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from transformers import EncodecConfig, EncodecModel

    sample_rate = 24_000
    wav = test_signal(args.seconds, sample_rate)
    ours, ours_source = spectral_codec(args.spectral, wav)
    seanet, seanet_source = seanet_codec(args.seanet, wav)
    encodec = EncodecModel(EncodecConfig()).eval()
    assert ours.sample_rate == seanet.sample_rate == sample_rate

    def run_ours() -> None:
        with torch.inference_mode():
            ours.decode(ours.encode(wav), iterations=args.gl_iters)

    def run_seanet() -> None:
        with torch.inference_mode():
            seanet.decode(seanet.encode(wav))

    def run_encodec() -> None:
        with torch.inference_mode():
            encoded = encodec.encode(wav, bandwidth=6.0)
            encodec.decode(encoded.audio_codes, encoded.audio_scales)

    ours_s, seanet_s, encodec_s = interleaved_medians([run_ours, run_seanet, run_encodec], args.repeats)
    codes = ours.encode(wav)
    iterations = ours.config.griffin_lim_iters if args.gl_iters is None else args.gl_iters
    print(f"audio: {args.seconds:g} s mono @ {sample_rate} Hz, torch {torch.__version__}, {args.threads} threads")
    rows = [
        (
            f"spectral codec ({ours_source}), {ours.num_parameters() / 1e6:.2f} M params, "
            f"{ours.frame_rate:g} Hz x {ours.num_codebooks} levels {tuple(codes.shape)}, GL {iterations} iters",
            ours_s,
        ),
        (
            f"SEANet codec ({seanet_source}), {seanet.num_parameters() / 1e6:.2f} M params, "
            f"{seanet.frame_rate:g} Hz x {seanet.num_codebooks} levels",
            seanet_s,
        ),
        (f"EnCodec 24 kHz @ 6 kbps, {sum(p.numel() for p in encodec.parameters()) / 1e6:.2f} M params", encodec_s),
    ]
    for label, seconds in rows:
        print(f"{label}: encode+decode {seconds:.3f} s, RTF {seconds / args.seconds:.4f}")
    print(f"spectral codec speed-up: {seanet_s / ours_s:.2f}x vs SEANet, {encodec_s / ours_s:.2f}x vs EnCodec")
    if args.sweep:
        with torch.inference_mode():
            times = interleaved_medians(
                [lambda n=n: ours.decode(codes, iterations=n) for n in (8, 16, 32, 64)], args.repeats
            )
        for n, seconds in zip((8, 16, 32, 64), times, strict=True):
            print(
                f"spectral decode with {n:2d} Griffin-Lim iterations: {seconds:.3f} s, RTF {seconds / args.seconds:.4f}"
            )


if __name__ == "__main__":
    main()
