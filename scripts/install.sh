#!/usr/bin/env bash
# Install kdaug into the current Python environment. Used by the Makefile, CI and the Docker image,
# so that every installation takes the same steps.
#   scripts/install.sh                 runtime only
#   scripts/install.sh --dev           plus test and lint tools (pytest, ruff, httpx, hypothesis, ray)
#   scripts/install.sh --editable      the package as an editable install (the Makefile's)
#   scripts/install.sh --cpu           torch's CPU build on Linux, from the PyTorch CPU wheel index
#                                      ($TORCH_INDEX); `make` passes it unless nvidia-smi sees a GPU
#   scripts/install.sh --deps-only     torch and the dependencies in pyproject.toml, not the package
#   scripts/install.sh --package-only  the package alone (after --deps-only: the Docker layers)
# torch is installed first and pinned: a looser range lets pip pull another build. On Linux x86_64
# PyPI's torch wheel is the CUDA build (527 MB, and it pulls the CUDA libraries); --cpu takes
# the CPU build (192 MB) from $TORCH_INDEX, and when that index cannot be reached within
# 10 s says so and installs the plain pin instead. TORCH_SPEC overrides the pin (then --cpu does
# nothing); PIP_ARGS adds pip options.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
torch_version="2.13.0"
torch_spec="${TORCH_SPEC:-torch==$torch_version}"
torch_index="${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
extras=""
editable=""
cpu=""
deps=1
package=1
for arg in "$@"; do
  case "$arg" in
    --dev) extras="dev" ;;
    --editable) editable="-e" ;;
    --cpu) cpu=1 ;;
    --deps-only) package="" ;;
    --package-only) deps="" ;;
    *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done
pip_install() { python -m pip install ${PIP_ARGS:-} "$@"; }

# Whether pip can reach the index $1: one request, at most 10 s (pip would retry for minutes).
reachable() {
  python - "$1" <<'PY'
import sys, urllib.request

url = sys.argv[1].rstrip("/") + "/torch/"
try:
    urllib.request.urlopen(url, timeout=10).close()
except Exception as exc:
    sys.exit(f"install.sh: {url} cannot be reached ({exc})")
PY
}

install_torch() {
  if [ -n "$cpu" ] && [ -z "${TORCH_SPEC:-}" ] && [ "$(uname -s)" = Linux ]; then
    if reachable "$torch_index"; then
      pip_install --extra-index-url "$torch_index" "torch==$torch_version+cpu"
      return
    fi
    echo "install.sh: installing $torch_spec from the default index instead: on Linux x86_64" \
      "that is the CUDA build (several GB with its libraries) unless pip finds a CPU build" \
      "locally (find-links)." \
      "For the CPU build run: pip install $torch_spec --index-url $torch_index" >&2
  fi
  # elsewhere (macOS, Windows) PyPI's wheel is the CPU build already
  pip_install "$torch_spec"
}

if [ -n "$deps" ]; then
  pip_install --upgrade pip >/dev/null
  install_torch
fi
if [ -z "$package" ]; then
  # the dependencies (and those of the extras) as pyproject.toml lists them, without the source
  requirements="$(mktemp)"
  trap 'rm -f "$requirements"' EXIT
  python - "$here/pyproject.toml" "$extras" >"$requirements" <<'PY'
import sys, tomllib

project = tomllib.load(open(sys.argv[1], "rb"))["project"]
deps = list(project.get("dependencies", []))
for extra in filter(None, sys.argv[2].split(",")):
    deps += project.get("optional-dependencies", {})[extra]
print("\n".join(deps))
PY
  pip_install -r "$requirements"
  exit 0
fi
if [ -n "$deps" ]; then
  pip_install $editable "${here}${extras:+[$extras]}"
else
  pip_install --no-deps $editable "${here}${extras:+[$extras]}"
fi
python - <<'PY'
import torch, transformers, spacy
print(f"kdaug installed: torch {torch.__version__}, transformers {transformers.__version__}, spacy {spacy.__version__}")
PY
