#!/usr/bin/env bash
# Renders `zt report` of a run in headless Chromium and checks the page survives a real
# browser: every figure is in the parsed DOM and the screenshot is not blank.
#
#   bash scripts/check-report.sh [RUN_DIR]    # default: trains a short tiny run into
#                                             # build/check-report/test-tiny-gpt2 first
#
# Not part of the test suite (Chromium is too large for CI). Installs Debian's chromium
# when missing. Writes RUN_DIR/report.html and RUN_DIR/report.png; exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

ZT=${ZT:-./build/zt}
FIGURES=(loss lr grad-norm throughput memory comm)
MIN_PNG_BYTES=${MIN_PNG_BYTES:-50000}  # a blank 1200x3000 page compresses to a few KB

fail() { echo "check-report: FAIL: $*" >&2; exit 1; }

[[ -x "$ZT" ]] || fail "$ZT not built (run: bash scripts/build.sh)"
if ! command -v chromium > /dev/null; then
  echo "check-report: installing chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium > /dev/null || { apt-get update -q > /dev/null && apt-get install -y -q chromium > /dev/null; }
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run=${1:-}
if [[ -z "$run" ]]; then
  out=build/check-report
  rm -rf "$out"
  OMP_NUM_THREADS=1 "$ZT" train configs/test-tiny-gpt2.yaml --set run.out_dir="$out" --set train.steps=40 \
    --set train.log_every=2 --set train.eval_every=10 --set data.val_fraction=0.1 > "$tmp/train.log" \
    || { cat "$tmp/train.log"; fail "training the tiny run failed"; }
  run=$out/test-tiny-gpt2
fi
[[ -d "$run" ]] || fail "$run: no such run directory"
run=$(cd "$run" && pwd)
page=$run/report.html
png=$run/report.png

"$ZT" report "$run" -o "$page"

chrome=(chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$tmp/profile")
# The page must need nothing from the network: block every request that is not a file.
chrome+=(--host-resolver-rules="MAP * ~NOTFOUND")
"${chrome[@]}" --dump-dom "file://$page" > "$tmp/dom.html" 2> "$tmp/chromium.log" \
  || { cat "$tmp/chromium.log"; fail "chromium --dump-dom failed"; }
"${chrome[@]}" --screenshot="$png" --window-size=1200,3000 "file://$page" 2>> "$tmp/chromium.log" \
  || { cat "$tmp/chromium.log"; fail "chromium --screenshot failed"; }

for id in "${FIGURES[@]}"; do
  grep -q "<figure id=\"$id\"" "$tmp/dom.html" || fail "figure '$id' missing from the rendered DOM"
done
svgs=$(grep -o '<svg' "$tmp/dom.html" | wc -l)
(( svgs >= ${#FIGURES[@]} )) || fail "only $svgs <svg> elements in the rendered DOM"
! grep -Eq 'https?://' "$page" || fail "$page references the network"
[[ -s "$png" ]] || fail "no screenshot written"
bytes=$(stat -c %s "$png")
(( bytes >= MIN_PNG_BYTES )) || fail "screenshot $png is only $bytes bytes (blank page?)"

echo "check-report: ok: $page (${#FIGURES[@]} figures and $svgs <svg> in the DOM), screenshot $png ($bytes bytes)"
