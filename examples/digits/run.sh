#!/usr/bin/env bash
# One command: prepare the data, train, build a signed pack, verify --rebuild it (sklearn).
# Usage: ./run.sh [WORKDIR]   (default: a temporary copy of this directory)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-$(mktemp -d)}
mlpack=${MLPACK:-mlpack}
if [ "$here" != "$work" ]; then
  mkdir -p "$work" && cp -r "$here"/. "$work"/ && rm -rf "$work"/data "$work"/.mlpack
fi
cd "$work"
python prepare_data.py
python train.py
[ -f author.pem ] || "$mlpack" keygen -o author
"$mlpack" build -o model.mlpack --key author.pem --force
"$mlpack" verify model.mlpack --key author.pub --rebuild --report report.md \
  --data digits-train=data/train --data digits-test=data/test
