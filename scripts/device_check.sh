#!/usr/bin/env bash
# One prepared check for a fresh machine with an NVIDIA GPU and no network (about 9 min on an
# H200 machine with 16 cores, most of it projecting the synthetic volumes at 512 px).
#
#   bash scripts/device_check.sh [WHEELS_DIR] [OUT_DIR]
#
# 1. installs what the machine lacks from wheels carried beside the checkout (WHEELS_DIR,
#    default .whl/: MONAI, nibabel, pydicom, and this package's own wheel; torch is expected
#    there), never touching the network;
# 2. the benchmark on the GPU at a realistic size: 512 px, a ResNet50-class MONAI encoder
#    (configs/gpu-resnet50.yaml), bf16, with the fraction of the card's bf16 peak reached;
# 3. a short real pretrain -> finetune -> predict on synthetic data through the CLI, bf16,
#    --batch-size auto;
# 4. prints throughput, peak GPU memory and the wall time of each step; everything lands in
#    OUT_DIR (default runs/device-check), the benchmark's JSON included.
#
# To prepare the wheels on a machine with pip access (Python 3.12, x86-64):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --platform manylinux2014_x86_64 -d .whl monai nibabel pydicom
#   python3 -m pip wheel --no-deps -w .whl .          # this package, adapters' entry points in it
#
# A dry run of the same steps on a CPU, small (checks the script, measures nothing useful):
#   DEVICE=cpu SIZE=64 PATIENTS=8 bash scripts/device_check.sh
# SECTIONS=training,loader,inference skips the benchmark's CPU-only sections (memory, io).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=${1:-.whl}
OUT=${2:-runs/device-check}
DEVICE=${DEVICE:-cuda}
SIZE=${SIZE:-512}
PATIENTS=${PATIENTS:-64}
SECTIONS=${SECTIONS:-training,loader,memory,io,inference}  # the benchmark's, --only
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*"; }

stamp "install"
SITE=/tmp/aneurysm-site
if [ -d "$WHEELS" ] && compgen -G "$WHEELS/*.whl" > /dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$SITE" \
    "$WHEELS"/*.whl
fi
if ! $PY -c "import aneurysm_adapters" 2>/dev/null \
    && ! compgen -G "$SITE/aneurysm-*.dist-info" > /dev/null; then  # no wheel of ours: build
  $PY -m pip install -q --no-index --no-deps --no-build-isolation --target "$SITE" .
fi
export PYTHONPATH=$SITE:${PYTHONPATH:-}
DEVICE=$DEVICE $PY - <<'EOF'
import importlib.util, os, sys
missing = [m for m in ("torch", "monai", "timm", "nibabel", "pydicom", "sklearn", "skimage",
                       "pandas", "click", "rich", "yaml", "jinja2")
           if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"device_check: missing {missing}; carry their wheels in the wheels folder")
import torch
if os.environ["DEVICE"] == "cuda":
    if not torch.cuda.is_available():
        sys.exit("device_check: torch sees no CUDA device")
    p = torch.cuda.get_device_properties(0)
    print(f"device: {p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}")
else:
    print(f"device: {os.environ['DEVICE']} (dry run), torch {torch.__version__}")
EOF
ANEURYSM="$PY -m aneurysm"
$ANEURYSM --version

# the presets, with this run's device and size (a dry run on the CPU shrinks them)
for name in gpu gpu-resnet50; do
  sed -e "s/device: cuda/device: $DEVICE/" -e "s/image_size: 512/image_size: $SIZE/" \
    "configs/$name.yaml" > "$OUT/$name.yaml"
  if ! grep -q "cache_dir" "$OUT/$name.yaml"; then
    printf 'data:\n  cache_dir: %s\n' "$OUT/cache" >> "$OUT/$name.yaml"
  fi
done

# the card's dense bf16 peak from its name (vendor datasheets), for the fraction reached
PEAK=$($PY - <<'EOF'
import torch
name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
peaks = {"H200": 989, "H100": 989, "A100": 312, "L40S": 362, "L4": 121, "A10": 125}
print(next((v for k, v in peaks.items() if k in name), 0))
EOF
)

stamp "benchmark: $SIZE px, ResNet50-class encoder, bf16"
$PY scripts/benchmark.py --device "$DEVICE" --config "$OUT/gpu-resnet50.yaml" \
  --precision bf16 --batch-size 8 --steps 10 --rounds 3 --only "$SECTIONS" \
  --patients $((PATIENTS / 4 > 8 ? PATIENTS / 4 : 8)) \
  --source-size "$SIZE" --peak-tflops "$PEAK" --work "$OUT/work" \
  --json "$OUT/benchmark.json" | tee "$OUT/benchmark.txt"

stamp "pretrain -> finetune -> predict (synthetic, bf16, batch size auto)"
DATA="$OUT/data"
$ANEURYSM synth kium "$DATA/kium" --patients "$PATIENTS" --test $((PATIENTS / 4)) \
  --image-size "$SIZE" --force
$ANEURYSM synth external "$DATA" --rsna $((PATIENTS / 3)) --adam $((PATIENTS / 6)) \
  --lausanne $((PATIENTS / 6)) --cada 4 --topcow 2 --force
$ANEURYSM pretrain --data-root "$DATA" --config "$OUT/gpu.yaml" --out "$OUT/pretrain" \
  --epochs 3 --batch-size auto --force
$ANEURYSM finetune --root "$DATA/kium" --config "$OUT/gpu.yaml" --out "$OUT/run" --folds 2 \
  --epochs 3 --batch-size auto --init "$OUT/pretrain/pretrained.safetensors" --force
$ANEURYSM predict --run "$OUT/run" --input "$DATA/kium/test_set" --output "$OUT/output.csv" \
  --force
$ANEURYSM evaluate --truth "$DATA/kium/groundtruth.csv" --pred "$OUT/output.csv" \
  --run "$OUT/run"
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,memory.used,memory.total,utilization.gpu --format=csv || true
fi
stamp "done: $OUT"
