#!/usr/bin/env bash
# Set up, then run the workflow end to end on a short recipe (about 10 minutes
# on 2 cores once set up): memory accounting, 3 epochs of fine-tuning on all
# of sms_spam's training part from the shipped pretrained EmbBERT backbone
# (`--init embbert`, see docs/results.md; 96.7 % float test accuracy when we ran
# it), then `embbert deploy` (conversion to full-int8
# TFLite checked on the TFLite-Micro interpreter, the firmware for the
# emulated Cortex-M4 board qemu-m4, the emulator started, a smoke check) and
# `embbert eval` of the whole sms_spam test split on that emulated board.
# Your own backbone: `embbert pretrain --out DIR`, then --init DIR (see README, "Reproduce the paper").
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
OUT=${OUT:-runs/quickstart}
E=.venv/bin/embbert
$E memory embbert
$E train --model embbert --task sms_spam --init embbert --epochs 3 --out "$OUT/sms_spam" --force
$E deploy "$OUT/sms_spam" --board qemu-m4
$E eval "$OUT/sms_spam/artifact" --board qemu-m4 --task sms_spam --out "$OUT/eval" --force
$E stop "$OUT/sms_spam/artifact" --board qemu-m4
echo "run: $OUT/sms_spam  artifact: $OUT/sms_spam/artifact  evaluation: $OUT/eval (summary.json, report.md)"
