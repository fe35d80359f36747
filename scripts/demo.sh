#!/usr/bin/env bash
# The main job: accompany the bundled example vocal with the shipped default model.
# Writes out/demo/song.wav (vocal + generated accompaniment) and out/demo/stems/{accompaniment,vocals}.wav.
# Sampling is the model's own (its singsong.json: guidance 3, top-k 50, the vocal's key as a prior on the harmony).
# Extra arguments go to `singsong accompany` (e.g. --seed 7 --takes 2 --temperature 0.9).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/singsong accompany pipelines/inference/examples/vocal.flac -o out/demo/song.wav --stems out/demo/stems \
    --seed 1 "$@"
