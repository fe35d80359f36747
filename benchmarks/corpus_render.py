"""Synthetic corpus render speed on one core, against FluidSynth rendering the same songs in the same run.

    .venv/bin/python benchmarks/corpus_render.py --songs 8 --seconds 20

Our pipeline composes a song, renders every part separately (tinysoundfont), synthesises the vocal,
adds reverb, balances levels and writes five 16-bit FLAC stems + MIDI + metadata. The baseline is the
conventional way to render MIDI: the FluidSynth command line rendering each song's MIDI file (mixture only,
no stems, no vocal synthesis, no files beyond one WAV) with the same soundfont. Both run single-threaded.
Reported: songs per minute, x real time, the ratio of the two, and where our time goes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.corpus.composer import compose
from pipelines.corpus.generate import CorpusSettings, build_song, render_song
from pipelines.corpus.render import PartRenderer


def _time_stages(seeds: list[int], seconds: float, renderer: PartRenderer) -> dict[str, float]:
    stages = {"compose": 0.0}
    for seed in seeds:
        started = time.perf_counter()
        song = compose(seed, seconds)
        stages["compose"] += time.perf_counter() - started
        render_song(song, renderer, np.random.default_rng(seed), timings=stages)
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--songs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    settings = CorpusSettings(songs=args.songs, seconds=args.seconds, seed=1000)
    seeds = [settings.seed + i for i in range(args.songs)]
    audio_seconds = args.songs * args.seconds

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "corpus"
        build_song(out, seeds[0] + 10_000, settings)  # warm-up: imports, soundfont read, numba/scipy caches
        started = time.perf_counter()
        for seed in seeds:
            build_song(out, seed, settings)
        ours = time.perf_counter() - started
        print(
            f"singsong corpus synth (stems+vocal+files): {args.songs} songs x {args.seconds:.0f} s in {ours:.2f} s"
            f" = {60 * args.songs / ours:.1f} songs/min, {audio_seconds / ours:.1f}x real time (1 core)"
        )

        fluidsynth = shutil.which("fluidsynth")
        if fluidsynth is None:
            print("baseline skipped: the `fluidsynth` command is not installed (apt-get install fluidsynth)")
        else:
            renderer = PartRenderer(sample_rate=settings.sample_rate)
            midis = []
            for seed in seeds:
                path = Path(tmp) / f"{seed}.mid"
                compose(seed, args.seconds).to_midi().write(str(path))
                midis.append(path)
            started = time.perf_counter()
            for path in midis:
                subprocess.run(
                    [
                        fluidsynth,
                        "-ni",
                        "-q",
                        "-g",
                        "0.5",
                        "-r",
                        str(settings.sample_rate),
                        "-o",
                        "synth.cpu-cores=1",
                        "-F",
                        str(path.with_suffix(".wav")),
                        str(renderer.soundfont),
                        str(path),
                    ],
                    check=True,
                    capture_output=True,
                )
            baseline = time.perf_counter() - started
            print(
                f"fluidsynth CLI (mixture only, same soundfont):   {args.songs} songs in {baseline:.2f} s"
                f" = {60 * args.songs / baseline:.1f} songs/min, {audio_seconds / baseline:.1f}x real time"
            )
            print(f"ratio (ours / fluidsynth throughput): {baseline / ours:.2f}")

        stages = _time_stages(seeds, args.seconds, PartRenderer(sample_rate=settings.sample_rate))
        total = sum(stages.values())
        print("where our time goes (excluding file writing):")
        for name, value in stages.items():
            print(f"  {name:22s} {value:7.2f} s  {100 * value / total:5.1f}%")


if __name__ == "__main__":
    main()
