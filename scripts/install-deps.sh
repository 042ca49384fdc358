#!/usr/bin/env bash
# Installs every Debian package that building, testing and benchmarking zerotrain needs
# (with clang, its sanitizer runtimes with libFuzzer and LLVM's OpenMP for the fuzz harnesses),
# and the Python environment .venv that the tokenizer, model-directory and TensorBoard tests
# compare against (Hugging Face tokenizers, tiktoken, safetensors, transformers, tensorboard;
# zt itself never runs Python). Idempotent: what is present is left alone. Run as root (or with sudo).
#   bash scripts/install-deps.sh [--no-venv]   (--no-venv: the Debian packages only)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=1
for arg in "$@"; do
  case $arg in
    --no-venv) venv=0 ;;
    *) echo "install-deps: unknown argument '$arg' (expected --no-venv)" >&2; exit 1 ;;
  esac
done

packages=(
  build-essential cmake ninja-build pkg-config git
  libyaml-cpp-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libdnnl-dev libopenblas-dev
  libopenmpi-dev openmpi-bin libgloo-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-venv python3-pip
  clang libclang-rt-14-dev libomp-dev
)
# Versions the tests were checked with (tokenizer ids can change between releases);
# safetensors, numpy and transformers (no PyTorch: its config classes only) read the
# Hugging Face directories `zt export` writes; tensorboard reads the event files.
python_packages=(tokenizers==0.20.3 tiktoken==0.8.0 safetensors==0.4.5 numpy==2.4.6 transformers==4.46.3 tensorboard==2.21.0)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ "$venv" -eq 1 ] || exit 0
# Debian's python3, not whatever python3 comes first on PATH: the venv must outlive shells.
python=/usr/bin/python3
[ -x "$python" ] || python=python3
if ! .venv/bin/python3 -c 'import sys
from importlib.metadata import version
sys.exit(0 if all(version(p.split("==")[0]) == p.split("==")[1] for p in sys.argv[1:]) else 1)' \
    "${python_packages[@]}" 2>/dev/null; then
  echo "install-deps: creating .venv with ${python_packages[*]}"
  [ -x .venv/bin/python3 ] || "$python" -m venv .venv
  .venv/bin/python3 -m pip install -q --disable-pip-version-check "${python_packages[@]}"
else
  echo "install-deps: .venv has ${python_packages[*]}"
fi
