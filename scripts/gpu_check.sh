#!/usr/bin/env bash
# Every GPU measurement docs/benchmarks.md wants, in one run of under 8 minutes:
#   bash scripts/gpu_check.sh            (from the repository root, with facectx installed)
# 1. training it/s and img/s of experiment=paper_cascaded's network (width 1, batch 32): fp32,
#    bf16 autocast, + channels-last, + torch.compile; peak memory;
# 2. generator inference img/s at width 1 (the same lines, "inference" column);
# 3. the CPU recipe experiment=lfw_cpu on the GPU (what a GPU buys for the shipped model);
# 4. SwapInpaint inference img/s at 256 px, bf16, batch 64, with the Poisson blend.
# Loss networks without offline weights (LPIPS AlexNet, VGG-Face) run with random weights:
# their cost, not their values, is measured. Each step has its own time limit, so one slow
# step cannot eat the others' time; the table at the end collects what finished.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
out=$(mktemp -d)
step() {  # name, seconds, command...
  local name=$1 secs=$2; shift 2
  echo "== $name (limit ${secs}s)"
  timeout "$secs" "$@" 2>&1 | grep -v -i warn | tee "$out/$name.txt"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || echo "   $name: exit $rc (124 = time limit)" | tee -a "$out/$name.txt"
}
$PY - <<'PY'
import torch
print("torch", torch.__version__, "| cuda", torch.version.cuda, "|",
      torch.cuda.get_device_name() if torch.cuda.is_available() else "NO GPU")
PY
step paper_cascaded 240 $PY scripts/bench_train.py --device cuda --width 1 --batch 32 \
  --iters 10 --train-iters 5 --warmup 2
step lfw_cpu_recipe 90 $PY scripts/bench_train.py --device cuda --experiment lfw_cpu \
  --iters 10 --train-iters 10 --warmup 2
step swapinpaint 90 $PY scripts/bench_swapinpaint.py --device cuda --batch 64 \
  --precision bf16 --channels-last --iters 5
echo
echo "================ summary ================"
for f in "$out"/*.txt; do
  echo "-- $(basename "$f" .txt)"
  grep -E "img/s|it/s|GiB|exit" "$f" | sed 's/^/   /'
done
rm -rf "$out"
