#!/usr/bin/env bash
# Install kdaug into the current Python environment. Used by the Makefile, CI and the Docker images,
# so that every installation takes the same steps.
#   scripts/install.sh            runtime only
#   scripts/install.sh --dev      plus test and lint tools (pytest, ruff, httpx, hypothesis, ray)
# torch is installed first and pinned: a looser range lets pip pull a multi-GB CUDA build.
# TORCH_SPEC overrides the pin (e.g. a CUDA build in the GPU image); PIP_ARGS adds pip options.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
torch_spec="${TORCH_SPEC:-torch==2.13.0}"
extras=""
editable=""
for arg in "$@"; do
  case "$arg" in
    --dev) extras="[dev]" ;;
    --editable) editable="-e" ;;
    *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done
python -m pip install ${PIP_ARGS:-} --upgrade pip >/dev/null
python -m pip install ${PIP_ARGS:-} "$torch_spec"
python -m pip install ${PIP_ARGS:-} $editable "${here}${extras}"
python - <<'PY'
import torch, transformers, spacy
print(f"kdaug installed: torch {torch.__version__}, transformers {transformers.__version__}, spacy {spacy.__version__}")
PY
