#!/usr/bin/env bash
# Create .venv (if missing) and install the project with its test/sweep/plot extras.
# torch is installed first: $TORCH_SPEC if set (e.g. TORCH_SPEC="torch --index-url <cuda wheels>"),
# otherwise torch==2.13.0, whose CPU build these machines carry as a local wheel. pyproject.toml
# itself leaves torch unpinned, so an existing torch install is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
if ! python -c "import torch" >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  python -m pip install -q ${TORCH_SPEC:-torch==2.13.0}
fi
python -m pip install -q -e ".[${EXTRAS:-dev}]"
