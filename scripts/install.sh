#!/usr/bin/env bash
# Create ./.venv (if missing) and install py4dstem-ndpd with its test extras. Idempotent.
# torch is installed first, pinned to the build this project is tested with (override: TORCH_SPEC="torch").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# shellcheck disable=SC2086
.venv/bin/python -m pip install -q $TORCH_SPEC
.venv/bin/python -m pip install -q -e ".[dev]"
echo "installed: $(.venv/bin/python -c 'import py4dstem_ndpd, torch, ultralytics, py4DSTEM; print("py4dstem_ndpd", py4dstem_ndpd.__version__, "torch", torch.__version__, "ultralytics", ultralytics.__version__, "py4DSTEM", py4DSTEM.__version__)')"
