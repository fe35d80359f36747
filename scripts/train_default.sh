#!/usr/bin/env bash
# The default model's recipe, end to end, with the project's own commands:
#   corpus -> codec -> harmony semantic tokenizer -> token cache -> semantic stage -> parallel acoustic stage
#   -> assemble a model directory -> token losses, harmony plans and the fit report.
#
# Every step is resumable: rerun the script after an interruption (a stopped session, Ctrl-C, a full disk)
# and each command continues where it stopped (finished songs, cached items and finished stages are kept;
# stage runs resume from their training state). Steps whose output already exists are skipped. A later
# session without the run directories continues from committed stage checkpoints with INIT_SEMANTIC= and
# INIT_PARALLEL= (`train cascade --init-from`: their weights and step, a fresh optimizer), e.g.
# INIT_SEMANTIC=models/checkpoints/default/cascade/semantic INIT_PARALLEL=models/checkpoints/default/cascade/parallel.
#
# Settings (environment):
#   DEVICE=auto|cpu|cuda     where training runs (cuda: bf16 autocast, minutes instead of hours)
#   THREADS=2                torch CPU threads per training process
#   STAGE_MINUTES=           wall-time budget per stage run (empty: run all steps); rerun to continue
#   DATA=data/synth RUNS=data/runs CACHE=data/cache_v2 OUT=data/models/default_v2
#   CODEC=models/checkpoints/default/codec   a trained spectral codec (trained here when the folder is missing)
#   HARMONY=models/checkpoints/semantic_harmony   the harmony tokenizer (fitted here when missing)
#   STEPS_SEMANTIC=20000 STEPS_PARALLEL=20000      total optimizer steps per stage
#
# On 2 CPU cores: corpus ~50 min, codec ~60 min, tokenizer ~5 min, cache ~20 min, each stage several hours.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

SINGSONG=.venv/bin/singsong
DEVICE=${DEVICE:-auto}
THREADS=${THREADS:-2}
DATA=${DATA:-data/synth}
RUNS=${RUNS:-data/runs}
CACHE=${CACHE:-data/cache_v2}
OUT=${OUT:-data/models/default_v2}
CODEC=${CODEC:-models/checkpoints/default/codec}
HARMONY=${HARMONY:-models/checkpoints/semantic_harmony}
budget=()
[ -n "${STAGE_MINUTES:-}" ] && budget=(--max-minutes "$STAGE_MINUTES")
export HF_HUB_OFFLINE=1

step() { printf '\n== %s\n' "$*"; }

step "1. corpus: 1200 songs x 20 s, keys drawn uniformly, 10 styles (seeds 0..1199; reruns skip finished songs)"
$SINGSONG corpus synth --out "$DATA" --songs 1200 --seconds 20 --seed 0 --jobs "$THREADS"

step "2. codec: spectral (log-mel RVQ, 25 Hz x 8 levels)"
if [ ! -f "$CODEC/config.json" ]; then
  $SINGSONG train codec --kind spectral --data "$DATA" --out "$RUNS/codec_v2" --max-songs 600 --steps 12000 \
    --batch-size 8 --segment-seconds 3 --chroma-weight 1.0 --low-band-weight 2.0 --device "$DEVICE" \
    --threads "$THREADS" "${budget[@]}"
  CODEC="$RUNS/codec_v2/model"
fi

step "3. harmony semantic tokenizer: k-means over chroma / bass / onsets of the training instrumentals"
if [ ! -f "$HARMONY/config.json" ]; then
  $SINGSONG train semantic --data "$DATA" --stem instrumental --split train --backend harmony --k 512 \
    --max-frames 300000 --out "$RUNS/semantic_harmony"
  HARMONY="$RUNS/semantic_harmony"
fi

step "4. token cache (resumable)"
$SINGSONG tokens build --data "$DATA" --codec "$CODEC" --semantic "$HARMONY" --out "$CACHE"

init_semantic=() init_parallel=()
[ -n "${INIT_SEMANTIC:-}" ] && init_semantic=(--init-from "$INIT_SEMANTIC")
[ -n "${INIT_PARALLEL:-}" ] && init_parallel=(--init-from "$INIT_PARALLEL")

step "5. semantic stage: vocal melody + beat (MB) -> instrumental harmony tokens (masked, MaskGIT decoding)"
# The beat stream (models/rhythm.py) carries the vocal's pulse: plans keep the tempo (0.85 vs 0.50 without it).
$SINGSONG train cascade --stage semantic --pattern masked --iterations 16 --cache "$CACHE" \
  --out "$RUNS/stage_semantic_masked" --featurization MB --layers 4 --batch-size 16 --dropout 0.1 --lr 1e-3 \
  --warmup 200 --steps "${STEPS_SEMANTIC:-20000}" --device "$DEVICE" --threads "$THREADS" --no-progress \
  "${init_semantic[@]}" "${budget[@]}"

step "6. parallel stage: M + harmony tokens -> all codec levels (SoundStorm-style masked decoding)"
$SINGSONG train cascade --stage parallel --iterations 12,2,1 --cache "$CACHE" --out "$RUNS/stage_parallel" \
  --featurization M --layers 4 --window-seconds 5 --batch-size 12 --dropout 0.1 --lr 1e-3 --warmup 200 \
  --steps "${STEPS_PARALLEL:-20000}" --device "$DEVICE" --threads "$THREADS" --no-progress \
  "${init_parallel[@]}" "${budget[@]}"

step "7. assemble the model directory (float16 stage weights)"
# Sampling measured on the fit report's 30 held-out songs (model card): guidance 3, top-k 50, the vocal's key as a
# prior on the plan (strength 8: key agreement 0.57 -> 0.87), 8 plan passes (real-time factor 0.22 at batch 1).
$SINGSONG train cascade-assemble --semantic "$RUNS/stage_semantic_masked/best" \
  --parallel "$RUNS/stage_parallel/best" --parallel-passes 8,1,1 --semantic-passes 8 --codec "$CODEC" \
  --semantic-tokenizer "$HARMONY" --featurization MB --weights-dtype float16 \
  --sampling '{"guidance_scale": 3, "top_k": 50, "plan_candidates": 1, "key_strength": 8}' --out "$OUT"

step "8. evaluation: token losses (own vs another song's vocal), harmony plans and the fit report"
$SINGSONG eval cascade --model "$OUT" --cache "$CACHE" --split test --plans 30 --harmony-tokenizer "$HARMONY" \
  --guidance 3 --key-strength 8 --json "$OUT/eval_cascade.json"
$SINGSONG eval report --data "$DATA" --split valid,test --max-songs 30 --seconds 10 --model "$OUT" \
  --model models/checkpoints/default --codec "$CODEC" --out "$OUT/fit-report"
