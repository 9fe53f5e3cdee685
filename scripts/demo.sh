#!/usr/bin/env bash
# `make demo`: start a minik instance of the demo's own, apply examples/, wait
# for the rollout (with kubectl's progress lines), then show it working: the
# pods Running, one pod fetching a page from the other over the pod network and
# through the Service's name, the host fetching it through the Service's
# LoadBalancer address, and the ConfigMap's value in a pod's environment; then
# the redis StatefulSet storing a key on its claim (the commands to see it
# survive the pod's replacement are printed at the end).
# Assumes `make venv docker images` already ran (the Makefile target depends on
# them).
#
# The demo is an instance of its own - name "demo", home ~/.minik-demo, port
# 6444 - so it runs beside an instance of yours and touches nothing else:
# every Docker object minik makes for it is labelled minik.dev/instance=demo.
# It removes nothing. Run again, it re-applies examples/ to the running demo;
# it refuses a home that belongs to another instance. Override with
# MINIK_DEMO_NAME, MINIK_DEMO_HOME, MINIK_DEMO_PORT.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
MINIK=$ROOT/.venv/bin/minik
[ -x "$MINIK" ] || die demo "$MINIK not found; run: make venv"

NAME=${MINIK_DEMO_NAME:-demo}
DEMO_HOME=${MINIK_DEMO_HOME:-$HOME/.minik-demo}
PORT=${MINIK_DEMO_PORT:-6444}
NS=demo
m() { "$MINIK" --home "$DEMO_HOME" "$@"; }

owner=$("$ROOT/.venv/bin/python" - "$DEMO_HOME/instance.json" <<'EOF'
import json, sys
try:
    print(json.load(open(sys.argv[1])).get("name", ""))
except (OSError, ValueError):
    print("")
EOF
)
if [ -n "$owner" ] && [ "$owner" != "$NAME" ]; then
    die demo "$DEMO_HOME belongs to minik instance '$owner', not '$NAME'; the demo leaves it alone (set MINIK_DEMO_HOME to another directory)"
fi

log demo "minik up -d --name $NAME --port $PORT --home $DEMO_HOME"
m up -d --name "$NAME" --port "$PORT" >/dev/null

log demo "minik apply -f examples/"
m apply -f examples/

log demo "minik rollout status deployment/web -n $NS"
m rollout status deployment/web -n "$NS" --timeout 120s

log demo "minik get pods -n $NS -o wide"
m get pods -n "$NS" -l app=web -o wide

read -r -a pods <<<"$(m get pods -n "$NS" -l app=web -o 'jsonpath={.items[*].metadata.name}')"
read -r -a ips <<<"$(m get pods -n "$NS" -l app=web -o 'jsonpath={.items[*].status.podIP}')"
[ "${#pods[@]}" -ge 1 ] && [ "${#ips[@]}" -eq "${#pods[@]}" ] \
    || die demo "expected the web pods with their IPs, got: ${pods[*]:-none} / ${ips[*]:-none}"
from=${pods[0]}
to=${pods[${#pods[@]}-1]}
to_ip=${ips[${#ips[@]}-1]}

# The server starts with its container; give it a moment to listen.
answer=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
    answer=$(timeout 10 "$MINIK" --home "$DEMO_HOME" exec -n "$NS" "$from" -- \
        wget -qO- "http://$to_ip:8080/" 2>/dev/null) && break
    sleep 0.3
done
[ -n "$answer" ] || die demo "pod $from got no answer from $to at http://$to_ip:8080/"
log demo "pod $from fetched http://$to_ip:8080/ from pod $to over the pod network: $answer"

answer=$(timeout 10 "$MINIK" --home "$DEMO_HOME" exec -n "$NS" "$from" -- \
    wget -qO- "http://web/" 2>/dev/null) || die demo "pod $from got no answer from http://web/"
log demo "pod $from fetched http://web/ through the Service's name and ClusterIP: $answer"

log demo "waiting for the LoadBalancer address of service/web"
lb=""
for _ in $(seq 1 50); do
    lb=$(m get svc web -n "$NS" -o 'jsonpath={.status.loadBalancer.ingress[0].ip}')
    [ -n "$lb" ] && break
    sleep 0.2
done
[ -n "$lb" ] || die demo "service/web got no LoadBalancer address"
m get svc web -n "$NS"
answer=""
for _ in $(seq 1 25); do
    answer=$("$ROOT/.venv/bin/python" -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode().strip())' \
        "http://$lb/" 2>/dev/null) && break
    sleep 0.2
done
[ -n "$answer" ] || die demo "no answer from http://$lb/ on the host"
log demo "the host fetched http://$lb/ through the LoadBalancer: $answer"
greeting=$(m exec -n "$NS" "$from" -- sh -c 'echo "$GREETING"')
log demo "GREETING in pod $from, from ConfigMap web-config: $greeting"

log demo "minik rollout status statefulset/redis -n $NS"
m rollout status statefulset/redis -n "$NS" --timeout 120s
m exec -n "$NS" redis-0 -- redis-cli set greeting "$greeting" >/dev/null
volume=$(m get pvc data-redis-0 -n "$NS" -o 'jsonpath={.spec.volumeName}')
[ -n "$volume" ] || die demo "claim data-redis-0 of redis-0 is not bound"
log demo "redis-0 keeps its keys on claim data-redis-0, bound to $volume (a Docker volume)"

cat <<EOF

minik is running the demo (instance "$NAME", home $DEMO_HOME). Try:

  curl http://$lb/                          # the demo's app, through its LoadBalancer Service

  export KUBECONFIG=$DEMO_HOME/kubeconfig MINIK_HOME=$DEMO_HOME
  kubectl get all -n $NS                    # any kubectl works against it
  .venv/bin/minik get pods -n $NS -o wide   # or minik's own client
  kubectl delete pod redis-0 -n $NS          # redis-0 comes back on the same claim:
  kubectl exec redis-0 -n $NS -- redis-cli get greeting
  .venv/bin/minik down                       # stop it (its containers are removed)
EOF
