#!/usr/bin/env bash
# The fixed validation probe of docs/results.md: FID, SSIM and rho of checkpoints on the first
# 150 faces of LFW's val split, beside mean_context (the reference every recipe must beat).
#   scripts/val_probe.sh /abs/lfw_prepared RUN/checkpoints/iter001000.ckpt [more.ckpt ...] [key=value ...]
# Rows are named <task>_<checkpoint> (logs/<task>/<date>/checkpoints/<checkpoint>.ckpt); extra
# key=value arguments go to facectx.evaluate. results.md lands in logs/evaluate/<date-time>/.
set -euo pipefail
root=$1; shift
ckpts=""; extra=()
for a in "$@"; do
  if [[ $a == *.ckpt || $a == *.pt ]]; then
    task=$(basename "$(dirname "$(dirname "$(dirname "$a")")")")
    name="${task}_$(basename "${a%.*}")"
    ckpts+="${ckpts:+,}${name//[^A-Za-z0-9_]/_}:$a"
  else
    extra+=("$a")
  fi
done
python -m facectx.evaluate data.root="$root" split=val limit=150 train_root="$root" \
  "ckpt={$ckpts}" "method=[mean_context]" landmarks.enabled=false num_samples=12 \
  threads="${THREADS:-1}" "${extra[@]}"
