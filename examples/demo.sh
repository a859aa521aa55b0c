#!/usr/bin/env bash
# End-to-end run of the main job on the bundled example: key, pack, inspect, verify,
# unpack, the OpenSSF peer check (when model_signing is installed), and a tampered copy
# being refused. Usage: examples/demo.sh [WORKDIR]   (default: a fresh temporary directory)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(dirname "$(command -v python)")
mlpack=${MLPACK:-$(command -v mlpack || echo "$bin/mlpack")}
work=${1:-$(mktemp -d)}
mkdir -p "$work"
cd "$work"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step "$mlpack" keygen -o author
step "$mlpack" pack "$here/tiny-model" -o tiny.mlpack --key author.pem --name tiny-mlp
step "$mlpack" inspect tiny.mlpack
step "$mlpack" verify tiny.mlpack --key author.pub
step "$mlpack" unpack tiny.mlpack -d unpacked --key author.pub
if command -v model_signing >/dev/null 2>&1; then
  step model_signing verify key unpacked --signature unpacked/.mlpack/model.sig --public_key author.pub
fi

printf '\n\033[1m# a copy with one byte changed must be refused (exit 1)\033[0m\n'
cp tiny.mlpack tampered.mlpack
offset=$(grep -boa '"arch": "mlp"' tampered.mlpack | head -1 | cut -d: -f1)
printf 'X' | dd of=tampered.mlpack bs=1 seek="$((offset + 1))" conv=notrunc status=none
if "$mlpack" verify tampered.mlpack --key author.pub; then
  echo "tampered pack was accepted: this is a bug" >&2
  exit 1
fi
printf '\ndemo finished in %s: the tampered copy was refused, the original verified.\n' "$work"
