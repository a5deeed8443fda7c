#!/usr/bin/env bash
# The recipe comparison of docs/real-run.md: the old and the new ddpm recipe trained side by side
# on the same images, batch size, steps and seed, then sampled and measured the same way.
# From the repository root. Images: sample_data/chest-xray-pediatric + SHARED_XRAYS (the shared
# chest-xray-pediatric folder, default /work/shared/data/chest-xray-pediatric), deduplicated.
# STEPS sets the schedules; STOP_AT the step both runs stop at (0: the last); PER_FINDING the
# images each model draws per finding; NAME the prefix of the files written into docs/real-run.
# Recorded: STEPS=100 STOP_AT=50 (NAME=recipe), STEPS=300 STOP_AT=150 (recipe150) and
# STEPS=1000 STOP_AT=0 PER_FINDING=32 (recipe1000).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-/tmp/recipe-cmp}
STEPS=${STEPS:-100}
STOP_AT=${STOP_AT:-50}
NAME=${NAME:-recipe}
SCRIPT=docs/real-run/recipe_comparison.py
$PY $SCRIPT prepare "$OUT"
date -u +"start %FT%TZ"
$PY $SCRIPT extractor "$OUT" > "$OUT/extractor.log" 2>&1 &   # the evaluation's feature network
for recipe in old new; do   # at the same time: each sees the same (shared) machine
  $PY $SCRIPT train "$OUT" $recipe --steps "$STEPS" --stop-at "$STOP_AT" > "$OUT/$recipe.log" 2>&1 &
done
wait
date -u +"trained %FT%TZ"
for recipe in old new; do
  $PY $SCRIPT sample "$OUT" $recipe --step "$STOP_AT" >> "$OUT/$recipe.log" 2>&1 &
done
wait
$PY $SCRIPT evaluate "$OUT" | tee "$OUT/figures.txt"
cp "$OUT/figures.json" "docs/real-run/$NAME-figures.json"
# the recorded grids are these, enlarged 3x (nearest neighbour) for reading
for grid in old new real; do
  $PY -c 'import sys; from PIL import Image; g = Image.open(sys.argv[1]); g.resize((g.width * 3, g.height * 3), Image.Resampling.NEAREST).save(sys.argv[2])' \
    "$OUT/$grid-grid.png" "docs/real-run/$NAME-$grid-grid.png"
done
