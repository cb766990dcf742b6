#!/usr/bin/env bash
# Rebuild every benchmark result (JSON in benchmarks/results/, plots in benchmarks/out/). Run on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NDPD=${NDPD:-.venv/bin/ndpd}
$PY benchmarks/bench_simulator.py
$PY benchmarks/bench_accuracy.py
$PY benchmarks/bench_bounds.py
$PY benchmarks/bench_precision.py
$PY benchmarks/bench_noise_filter.py
$PY benchmarks/bench_completion.py
$PY benchmarks/bench_strain.py
$PY benchmarks/bench_strain.py --size 512 --doses 1e6
$PY benchmarks/bench_sweeps.py
$PY benchmarks/bench_external.py
$PY benchmarks/bench_external.py --validation
$PY benchmarks/bench_detectors.py
$PY benchmarks/bench_detectors.py --validation
$PY benchmarks/bench_detectors.py --no-repair --cameras counting quad_gaps --out detectors_no_repair
$PY benchmarks/bench_throughput.py --sizes 256 512 --memory-budget-mb 1024
$NDPD bench --scan 16 16 --size 256 > benchmarks/results/speed_vs_template_256.json
$NDPD bench --scan 12 12 --size 512 > benchmarks/results/speed_vs_template_512.json
