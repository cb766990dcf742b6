#!/usr/bin/env bash
# The GPU check of issues #4 and #8 in one device call: the CUDA/AMP path against the CPU, the batch size chosen
# from free device memory, and end-to-end patterns/s at 512 x 512 (sync, async, network alone).
#
#   bash scripts/device_check.sh prepare   # here (needs the .venv and PyPI): wheels into .whl/, inputs into .gpu/
#   device run, carry [".whl", ".gpu"], timeout_s 480:
#       bash scripts/device_check.sh run    # there: writes $OUT/gpu.json and $OUT/gpu.log
#
# The device machine has its own Python 3.12 with torch, numpy 2, scipy, h5py, opencv-headless, but not
# ultralytics (carried as wheels, pure Python) nor py4DSTEM (not needed: the inputs are simulated here).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  prepare)
    PY=${PY:-.venv/bin/python}
    rm -rf .whl && mkdir -p .whl .gpu
    # the versions this repo is tested with (pure-Python wheels; their other needs are on the device already)
    for req in $("$PY" -m pip show ultralytics ultralytics-thop ultralytics-platform 2>/dev/null |
                 awk '/^Name:/{n=$2} /^Version:/{print n"=="$2}'); do
      "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl "$req"
    done
    "$PY" benchmarks/bench_gpu.py --prepare .gpu/inputs.h5
    du -sh .whl .gpu
    ;;
  run)
    : "${OUT:?run this on the device machine (OUT is where results go)}"
    export PYTHONUNBUFFERED=1
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
    (nvidia-smi -L || echo "no nvidia-smi") | tee "$OUT/gpu.log"
    python3 -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__)" \
      | tee -a "$OUT/gpu.log"
    timeout 420 python3 benchmarks/bench_gpu.py --inputs .gpu/inputs.h5 --device "${NDPD_DEVICE:-cuda}" \
      ${NDPD_GPU_ARGS:-} --out "$OUT/gpu.json" 2>&1 | tee -a "$OUT/gpu.log"
    ;;
  *)
    echo "usage: bash scripts/device_check.sh prepare|run" >&2
    exit 2
    ;;
esac
