#!/usr/bin/env bash
# Set up, then run the workflow end to end on a smoke-sized recipe (~5 min on
# 2 cores): memory accounting, MLM pretraining, fine-tuning on sms_spam,
# conversion to full-int8 TFLite checked on the TFLite-Micro interpreter, and
# the firmware for the emulated Cortex-M4 board (qemu-m4) with that model.
# The full recipe: drop --preset smoke (see README, "Reproduce the paper").
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
OUT=${OUT:-runs/quickstart}
E=.venv/bin/embbert
$E memory embbert
$E pretrain --model embbert --preset smoke --out "$OUT/pretrain" --force
$E train --model embbert --task sms_spam --init "$OUT/pretrain" --preset smoke --out "$OUT/sms_spam" --force
$E convert "$OUT/sms_spam" --out "$OUT/artifact" --force
$E build "$OUT/artifact" --board qemu-m4
echo "run: $OUT/sms_spam (checkpoint.pt, metrics.json)  artifact: $OUT/artifact (model.tflite, manifest.json)"
