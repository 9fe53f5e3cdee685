#!/usr/bin/env bash
# `make demo`: start a minik cluster named "demo" in the background and apply
# the manifests in examples/. Assumes `make venv docker images` already ran
# (the Makefile target depends on them).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
MINIK=$ROOT/.venv/bin/minik
[ -x "$MINIK" ] || { echo "[demo] $MINIK not found; run: make venv" >&2; exit 1; }

echo "[demo] minik up -d --name demo"
out=$("$MINIK" up -d --name demo)
printf '%s\n' "$out"
# `minik up` prints the kubeconfig path; fall back to the default location.
kubeconfig=$(printf '%s\n' "$out" | grep -oE '/[^[:space:]"]*kubeconfig[^[:space:]"]*' | tail -n 1 || true)
kubeconfig=${kubeconfig:-$HOME/.minik/kubeconfig}

echo "[demo] minik apply -f examples/"
"$MINIK" apply -f examples/

cat <<EOF

minik is running (cluster "demo"). Try:

  export KUBECONFIG=$kubeconfig
  kubectl get all -A            # any kubectl works against it
  .venv/bin/minik get pods      # or minik's own client
  .venv/bin/minik down          # stop it (containers are removed)
EOF
