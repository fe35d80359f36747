#!/usr/bin/env bash
# The main job. Until the default accompaniment model ships, it renders a small synthetic corpus:
# 5 songs of 20 s with stems, MIDI and metadata, into out/demo-corpus/ (reruns skip finished songs).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/singsong corpus synth --out out/demo-corpus --songs 5 --seconds 20 --seed 0 "$@"
