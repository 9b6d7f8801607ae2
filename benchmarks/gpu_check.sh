#!/usr/bin/env bash
# Issue 15's GPU measurements in one call on the lent GPU machine (one H100/H200):
#   1. the CUDA/bf16 tests of the suite (pytest -m gpu);
#   2. gkc (gkc-r50, random-init CLIP, bf16, batch 8, CUDA graphs, 480x853) on 1,040 validation
#      frames: model-only and end-to-end frames/s (targets: >= 60 e2e, e2e/model >= 0.9);
#   3. clip-twostage (ViT-B-16, 100 proposals) on the first 2 of the same videos (260 frames):
#      gkc must reach >= 4x its frames/s;
#   4. peak GPU memory for a 1,000- vs a 100-frame video (target <= 1.1x);
#   5. a torch.profiler table of a 240-frame gkc run (where the end-to-end time goes).
# With --zoo instead (a separate call: it does not fit the same 10-minute command): the zoo
# (every model of models/zoo.py, its published ViT-B-class variant with RANDOM weights,
# checkpoint=none, at the authors' test size) and gkc-r50 (random-init checkpoint), end to end
# at batch 8, bf16, 480x853 on 1,040 validation frames; random weights cost what released ones do.
# Everything is written under $OUT (the device tool brings it back); the last lines are a summary.
#
#   on the device machine:  bash benchmarks/gpu_check.sh [--zoo]          (carry .whl: see below)
#   dry run on a CPU:       bash benchmarks/gpu_check.sh --cpu-dry-run [--zoo]   (tiny sizes, minutes)
#
# The device image lacks open_clip_torch (and ftfy, wcwidth), decord and pycocotools: download
# them as wheels into .whl/ first (device README), and name .whl in the call's carry.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1

zoo=false
case " $* " in *" --zoo "*) zoo=true ;; esac
if [ "${1:-}" = "--cpu-dry-run" ]; then
  variant=tiny_args
  device=cpu precision=fp32 batch=2 workers=1 height=120 width=214 speed_frames=10 mem_frames=6
  gkc_config=gkc-tiny twostage_args="clip-twostage:clip=ovbench-tiny-vit,pretrained=none,proposals=8" profile_frames=2
else
  variant=full_args
  device=cuda precision=bf16 batch=8 workers=8 height=480 width=853 speed_frames=130 mem_frames=100
  gkc_config=gkc-r50 twostage_args="clip-twostage:pretrained=none" profile_frames=30
  site=/tmp/ovbench-site
  if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl
  fi
  python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target "$site" . >/dev/null
  export PYTHONPATH="$site"
  cd /tmp  # import the installed copy, not the checkout
  repo="$OLDPWD"
fi
repo=${repo:-$PWD}
bench="$repo/benchmarks/bench_pipeline.py"

{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  python3 -c "import torch, platform; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'python', platform.python_version())"
} | tee "$OUT/env.txt"

common=(--device "$device" --precision "$precision" --batch-size "$batch" --workers "$workers" --height "$height" --width "$width")
if $zoo; then
  for item in $(python3 -c "from ovbench.models.zoo import ZOO; print(' '.join(f'{e.id}:{e.$variant}' for e in ZOO))"); do
    model=${item%%:*}
    echo "== $model with RANDOM weights (${item#*:}), the authors' test size" | tee "$OUT/zoo-$model.txt"
    python3 "$bench" --models "$model" --model-args "$item" "${common[@]}" --speed-frames "$speed_frames" \
      --skip-memory 2>&1 | tee -a "$OUT/zoo-$model.txt"
  done
  echo "== gkc with a RANDOM-init $gkc_config checkpoint" | tee "$OUT/zoo-gkc.txt"
  python3 "$bench" --models gkc --gkc-config "$gkc_config" "${common[@]}" --speed-frames "$speed_frames" \
    --skip-memory 2>&1 | tee -a "$OUT/zoo-gkc.txt"
  echo "== zoo summary ($(head -n 1 "$OUT/env.txt")): model-args, then model fps / e2e fps, random weights"
  grep -h "^== \|^cat-seg \|^san \|^fc-clip \|^gkc " "$OUT"/zoo-*.txt
  exit 0
fi

if [ "$device" = cuda ]; then
  (cd "$repo" && python3 -m pytest -p no:cacheprovider -q -m gpu -rs 2>&1 | tail -n 25) | tee "$OUT/gpu_tests.txt"
fi

python3 "$bench" --models gkc --gkc-config "$gkc_config" "${common[@]}" --speed-frames "$speed_frames" \
  --frames "$mem_frames" 2>&1 | tee "$OUT/gkc.txt"
python3 "$bench" --models clip-twostage --model-args "$twostage_args" "${common[@]}" --speed-frames "$speed_frames" \
  --speed-videos 2 --skip-memory 2>&1 | tee "$OUT/twostage.txt"
python3 "$bench" --models gkc --gkc-config "$gkc_config" "${common[@]}" --speed-frames "$profile_frames" \
  --skip-memory --profile "$OUT/profile.txt" 2>&1 | tail -n 3

echo "== summary ($(head -n 1 "$OUT/env.txt"))"
grep -h "^gkc \|^clip-twostage \|ratio long/short" "$OUT/gkc.txt" "$OUT/twostage.txt"
[ -f "$OUT/gpu_tests.txt" ] && tail -n 1 "$OUT/gpu_tests.txt"
head -n 25 "$OUT/profile.txt"
