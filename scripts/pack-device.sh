#!/usr/bin/env bash
# Builds zt, zt_tests and bench_cuda for the GPU machine (portable x86-64, CUDA on) in
# build-device/ and packs them, stripped, with the non-system shared libraries they need into
# .ztcarry/zt-device.tar.xz (carried to the GPU machine; scripts/device-check.sh unpacks it).
# Left out of the pack: glibc, libstdc++, libgcc, the driver (libcuda) and the CUDA toolkit's
# own libraries, which the GPU image has.
set -euo pipefail
cd "$(dirname "$0")/.."
build="build-device"
carry=.ztcarry
jobs=${JOBS:-2}

# ccache where it is installed; the build does not need it.
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DZT_NATIVE=OFF -DZT_CUDA=ON -DZT_BUILD_BENCH=ON \
  "${launcher[@]}" > /dev/null
nice cmake --build "$build" -j"$jobs" --target zt zt_tests bench_cuda

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/zt-device"
mkdir -p "$root/bin" "$root/lib"
bins=("$build/zt" "$build/zt_tests" "$build/bench/bench_cuda")
for b in "${bins[@]}"; do
  cp "$b" "$root/bin/"
  strip "$root/bin/$(basename "$b")"
done

# System and CUDA libraries stay behind; everything else ldd resolves travels.
skip='/(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcublasLt|libnccl|libcudnn[a-z_]*|libnvrtc|libnvJitLink)\.so|/ld-linux|linux-vdso|/usr/local/cuda'
missing=0
while read -r lib; do
  [[ -z "$lib" ]] && continue
  if [[ "$lib" == "not-found:"* ]]; then
    echo "pack-device: ${lib#not-found:} is not found by ldd" >&2
    missing=1
    continue
  fi
  cp -L "$lib" "$root/lib/"
done < <(for b in "${bins[@]}"; do ldd "$b"; done |
  awk '/=> not found/ {print "not-found:" $1; next} /=> \// {print $3}' | sort -u | grep -Ev "$skip" || true)
[[ $missing -eq 0 ]] || exit 1

{
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- || echo -dirty)"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
  echo "cuda: $(nvcc --version | tail -1)"
  echo "libraries:"
  (cd "$root/lib" && ls -1)
} > "$root/MANIFEST"

mkdir -p "$carry"
tar -C "$stage" -cJf "$carry/zt-device.tar.xz" zt-device
ls -lh "$carry/zt-device.tar.xz"
echo "pack-device: carry .ztcarry, then run scripts/device-check.sh on the GPU machine"
