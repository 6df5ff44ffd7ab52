#!/usr/bin/env bash
# One-shot GPU check, at most 8 minutes (docs/benchmarks.md, "When a GPU is lent"):
#   bash benchmarks/gpu_check.sh                      # on the GPU machine; writes gpu_check.json
#   bash benchmarks/gpu_check.sh --device cpu --quick # the same parts at small sizes on a CPU
# Needs only this repository: it uses $PYTHON, else .venv (created by scripts/setup.sh when missing; set
# TORCH_SPEC for a CUDA torch there). Options: see benchmarks/gpu_check.py --help.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${PYTHON:-}" ]; then
  PY="$PYTHON"
else
  [ -x .venv/bin/python ] || ./scripts/setup.sh
  PY=.venv/bin/python
fi
exec "$PY" benchmarks/gpu_check.py "$@"
