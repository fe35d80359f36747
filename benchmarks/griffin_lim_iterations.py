"""Griffin-Lim iterations and starting phase vs quality vs time, for the spectral codec's vocoder path
(log-mel -> NNLS -> GL).

For held-out songs' instrumentals (drums + bass + other), the true 256-band log-mel - or, with `--codec DIR`,
what that trained codec decodes from its own codes - is vocoded with 0..64 Griffin-Lim iterations (fast GL,
Perraudin et al., 2013) from each starting phase of `--inits` ("random" or "peaks", `models/codec/phase.py`,
each with its momentum) and compared with the original by the codec evaluation's metrics
(`pipelines/evaluation/fit.py`: chroma correlation of the constant-Q chromagrams, estimated key agreement,
harmonic support margin with the +-1 semitone control). Time is the vocoder's wall time for the batch of songs
in this process, reported per second of audio (RTF) on `--threads` threads; the random start with momentum
0.99 (the decoder before 2026-12-03) is the baseline of the same run.

    .venv/bin/python benchmarks/griffin_lim_iterations.py --data data/synth [--songs 10] [--seconds 10]
        [--codec models/checkpoints/codec_v4] [--inits random:0.99,peaks:0.9]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/synth"))
    parser.add_argument("--split", default="valid,test")
    parser.add_argument("--songs", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", default="0,8,16,24,32,64")
    parser.add_argument("--inits", default="random:0.99,peaks:0.9", help="starting phase:momentum pairs")
    parser.add_argument("--codec", type=Path, default=None, help="vocode this codec's decoded log-mel instead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from models.codec.spectral import build_spectral_codec
    from models.codec.spectral_config import get_spectral_preset
    from models.loading import load_tokenizer
    from pipelines.evaluation.codec import _Scorer, held_out_songs
    from pipelines.evaluation.fit import chromagram, estimate_key, harmonic_support

    if args.codec is None:
        codec = build_spectral_codec(get_spectral_preset("small")).eval()
    else:
        codec = load_tokenizer(args.codec).float().eval()
    rate = codec.sample_rate
    songs = held_out_songs(args.data, tuple(args.split.split(",")), args.songs)
    scorers = [_Scorer(song, args.seconds) for song in songs]
    truths = [scorer.truth(rate) for scorer in scorers]
    length = min(len(t) for t in truths)
    wav = torch.from_numpy(np.stack([t[:length] for t in truths]))[:, None]
    reference = [chromagram(t[:length], rate) for t in truths]
    keys = [estimate_key(c.mean(axis=1)).name for c in reference]
    margins = [
        harmonic_support(s.melody, c, control="semitone").margin for s, c in zip(scorers, reference, strict=True)
    ]
    with torch.inference_mode():
        log_mel = codec.log_mel(wav) if args.codec is None else codec.decode_log_mel(codec.encode(wav))
    source = "true log-mel" if args.codec is None else f"{args.codec} decoded"
    print(
        f"{len(songs)} songs x {length / rate:.1f} s, {source}, {args.threads} threads; "
        f"truth margin {np.mean(margins):.3f}"
    )
    runs = [(init, float(momentum)) for init, momentum in (pair.split(":") for pair in args.inits.split(","))]
    for (init, momentum), iterations in ((run, int(n)) for run in runs for n in args.iterations.split(",")):
        codec.config = dataclasses.replace(codec.config, griffin_lim_init=init, griffin_lim_momentum=momentum)
        start = time.perf_counter()
        with torch.inference_mode():
            audio = codec.vocode(log_mel, iterations=iterations)[:, 0].numpy()
        seconds = time.perf_counter() - start
        chroma = [chromagram(a, rate) for a in audio]
        corr = np.mean(
            [np.corrcoef(r.ravel(), c[:, : r.shape[1]].ravel())[0, 1] for r, c in zip(reference, chroma, strict=True)]
        )
        agree = np.mean([estimate_key(c.mean(axis=1)).name == k for c, k in zip(chroma, keys, strict=True)])
        margin = [
            harmonic_support(s.melody, c, control="semitone").margin for s, c in zip(scorers, chroma, strict=True)
        ]
        rtf = seconds / (len(songs) * length / rate)
        print(
            f"{init:>6} start, momentum {momentum:.2f}, {iterations:2d} iterations: "
            f"chroma corr {corr:.3f}, key agree {agree:.2f}, "
            f"margin ratio {np.sum(margin) / np.sum(margins):.2f}, vocoder RTF {rtf:.4f}"
        )


if __name__ == "__main__":
    main()
