#!/usr/bin/env bash
# The main job end to end on the bundled example (examples/digits): a fresh copy of the
# project under git, its data prepared, the model trained inside mlpack.run(), then
# mlpack build (code, environment lock, dataset manifests, hardware, training record,
# metrics, weights index), inspect, verify, verify --rebuild (the model retrained from the
# pack alone in a fresh environment and checked against its claimed metric), unpack, the
# OpenSSF peer check (when model_signing is installed), and a tampered copy being refused.
# Usage: examples/demo.sh [WORKDIR]   (default: a fresh temporary directory)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(dirname "$(command -v python)")
mlpack=${MLPACK:-$(command -v mlpack || echo "$bin/mlpack")}
work=${1:-$(mktemp -d)}
mkdir -p "$work"
cd "$work"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

rm -rf digits && cp -r "$here/digits" digits && rm -rf digits/data digits/.mlpack digits/model.safetensors
git -C digits init -q && git -C digits add -A
git -C digits -c user.name=demo -c user.email=demo@example.org commit -qm "digits example"
step "$mlpack" keygen -o author --force
cd digits
step python prepare_data.py
step python train.py
step "$mlpack" build -o ../digits.mlpack --key ../author.pem --force
cd ..
step "$mlpack" inspect digits.mlpack
step "$mlpack" verify digits.mlpack --key author.pub
# the whole product: a stranger rebuilds the model from the pack alone (fresh environment from
# the pack's lock, data checked against the signed manifests, training re-run in the sandbox)
# and is told whether the claimed metric holds
sandbox=()
if ! command -v bwrap >/dev/null 2>&1; then
  printf '\nbubblewrap is not installed: running the bundled example unsandboxed (apt-get install bubblewrap)\n'
  sandbox=(--unsafe-no-sandbox)
fi
step "$mlpack" verify digits.mlpack --key author.pub --rebuild --report report.md "${sandbox[@]}" \
  --data digits-train=digits/data/train --data digits-test=digits/data/test
rm -rf unpacked
step "$mlpack" unpack digits.mlpack -d unpacked --key author.pub
if command -v model_signing >/dev/null 2>&1; then
  step model_signing verify key unpacked --signature unpacked/.mlpack/model.sig --public_key author.pub
fi

printf '\n\033[1m# a copy with one byte changed must be refused (exit 1)\033[0m\n'
cp digits.mlpack tampered.mlpack
offset=$(grep -boa 'def predict' tampered.mlpack | head -1 | cut -d: -f1)
printf 'X' | dd of=tampered.mlpack bs=1 seek="$((offset + 1))" conv=notrunc status=none
if "$mlpack" verify tampered.mlpack --key author.pub; then
  echo "tampered pack was accepted: this is a bug" >&2
  exit 1
fi
printf '\ndemo finished in %s: the tampered copy was refused, the original verified.\n' "$work"
