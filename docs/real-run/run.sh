#!/usr/bin/env bash
# The recorded CPU training run of docs/real-run.md, from the repository root.
# SHARED_XRAYS: the team's shared chest-xray-pediatric folder (806 images); not part of the repo.
set -euo pipefail
: "${SHARED_XRAYS:?set SHARED_XRAYS to the chest-xray-pediatric folder}"
cd "$(dirname "$0")/../.."
export SPOTTHEFAKE_VAR_DIR=/tmp/realrun DEBUG=1
.venv/bin/python manage.py migrate -v0
.venv/bin/python manage.py import_images --manifest "$SHARED_XRAYS/manifest.csv" --source chest-xray-pediatric --modality CXR --no-progress | tail -1
date -u +"start %FT%TZ"
time .venv/bin/python manage.py train_model cxr-pediatric-64 --kind ddpm --modality CXR --resolution 64 --steps 700 --batch-size 16 --findings normal,pneumonia --checkpoint-every 100 --no-progress
date -u +"end %FT%TZ"
.venv/bin/python manage.py generate_images --model cxr-pediatric-64 --count 16 --finding pneumonia --steps 50 --guidance 2.0 --scheduler ddim --seed 0 --no-progress
.venv/bin/python manage.py generate_images --model cxr-pediatric-64 --count 16 --finding normal --steps 50 --guidance 2.0 --scheduler ddim --seed 100 --no-progress
