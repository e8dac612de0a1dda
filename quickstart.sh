#!/usr/bin/env bash
# Set up, then run the workflow end to end on a short recipe (about 10 minutes
# on 2 cores once set up): memory accounting, a smoke-sized MLM
# pretraining, 3 epochs of fine-tuning on all of sms_spam's training part
# (98.6 % test accuracy on the board when we ran it, = host int8 = float), then `embbert deploy` (conversion to full-int8
# TFLite checked on the TFLite-Micro interpreter, the firmware for the
# emulated Cortex-M4 board qemu-m4, the emulator started, a smoke check) and
# `embbert eval` of the whole sms_spam test split on that emulated board.
# The full recipe: drop --preset smoke (see README, "Reproduce the paper").
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
OUT=${OUT:-runs/quickstart}
E=.venv/bin/embbert
$E memory embbert
$E pretrain --model embbert --preset smoke --out "$OUT/pretrain" --force
$E train --model embbert --task sms_spam --init "$OUT/pretrain" --epochs 3 --out "$OUT/sms_spam" --force
$E deploy "$OUT/sms_spam" --board qemu-m4
$E eval "$OUT/sms_spam/artifact" --board qemu-m4 --task sms_spam --out "$OUT/eval" --force
$E stop "$OUT/sms_spam/artifact" --board qemu-m4
echo "run: $OUT/sms_spam  artifact: $OUT/sms_spam/artifact  evaluation: $OUT/eval (summary.json, report.md)"
