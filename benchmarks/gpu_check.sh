#!/usr/bin/env bash
# The GPU path, proven on a machine with a CUDA GPU: the `cuda`-marked tests, then the GPU
# benchmarks (training step time and peak memory per preset, inference megapixels/s).
#
#   bash benchmarks/gpu_check.sh                        # from the repository root
#   PYTHON=python OUT=/tmp/results bash benchmarks/gpu_check.sh
#
# PYTHON: the interpreter (default .venv/bin/python; a relative path is taken from the
# repository root); OUT: folder of gpu_bench.json (default: the current folder).
# Exits non-zero when a test fails (the benchmarks still run: GPU time is scarce), or when
# the benchmark fails. Without a GPU the tests are skipped and the benchmark
# says "no CUDA GPU: nothing measured" (both exit 0): a dry run of the script itself.
# Extra arguments go to bench_gpu.py (e.g. --presets fast --steps 10).
set -euo pipefail

mkdir -p "${OUT:-.}"
OUT="$(cd "${OUT:-.}" && pwd)"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-.venv/bin/python}"

if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi || echo "nvidia-smi failed (exit status $?)"
else
    echo "nvidia-smi: not found"
fi
"$PYTHON" -c 'import torch; print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, '\
'GPU available: {torch.cuda.is_available()}")'

echo "== tests marked cuda"
tests=0
"$PYTHON" -m pytest -q -m cuda tests/ || tests=$?

echo "== GPU benchmarks"
"$PYTHON" benchmarks/bench_gpu.py --out "$OUT/gpu_bench.json" "$@"

if [ "$tests" -ne 0 ]; then
    echo "gpu_check: the cuda tests FAILED (pytest exit status $tests)" >&2
fi
exit "$tests"
