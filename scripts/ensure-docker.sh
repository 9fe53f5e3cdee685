#!/usr/bin/env bash
# Make sure a Docker engine is reachable through /usr/bin/docker.
#
#   1. `docker info` answers            -> exit 0 (costs ~50 ms).
#   2. root + apt-get                   -> install docker.io if missing, start
#                                          dockerd in the background, wait for it.
#   3. otherwise                        -> print how to get Docker, exit 1.
#
# Idempotent and safe to run concurrently (a lock serialises starts); needs
# no stdin (CI=true). dockerd is started with setsid+nohup so it outlives the
# calling shell / make / CI step; its log goes to $MINIK_DOCKERD_LOG.
#
# dockerd flags: on this machine kind (Debian 12, docker.io 20.10, cgroup v1,
# iptables-nft, no systemd as PID 1) the DEFAULT flags work: overlay2 storage,
# iptables NAT/isolation rules, user bridge networks. That was checked: a
# `docker network create --subnet 10.244.0.0/16` network, a container on it
# reached from the host at its IP (TCP), container-to-container and
# container-to-host ping, and a published port. So no flags are passed by
# default. minik needs bridge networks with their own subnet whose container
# IPs the host can reach, which plain defaults give (the host has a route via
# the bridge). `--iptables=false` is deliberately NOT used: it would break
# published ports and outbound NAT. Should the defaults fail on some other
# host, the script retries once with fallbacks chosen from the log
# (`--storage-driver=vfs` for overlay errors, `--iptables=false` for iptables
# errors), and extra flags can always be given in MINIK_DOCKERD_FLAGS.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$HERE/lib.sh"

DOCKERD=/usr/sbin/dockerd
LOGFILE=${MINIK_DOCKERD_LOG:-/var/log/minik-dockerd.log}
WAIT=${MINIK_DOCKER_WAIT:-60}
read -r -a EXTRA_FLAGS <<<"${MINIK_DOCKERD_FLAGS:-}"

engine_up() { [ -x "$DOCKER" ] && timeout 15 "$DOCKER" info >/dev/null 2>&1; }

engine_version() { "$DOCKER" version -f '{{.Server.Version}}' 2>/dev/null || echo '?'; }

how_to_install() {
    cat >&2 <<'EOF'
[docker] No Docker engine is reachable through /usr/bin/docker.
[docker] minik runs real containers and needs a local Docker engine:
[docker]   Debian/Ubuntu (as root):  apt-get update && apt-get install -y docker.io
[docker]                             dockerd >/var/log/dockerd.log 2>&1 &   (or: systemctl start docker)
[docker]   other systems:            https://docs.docker.com/engine/install/
[docker] then make sure your user can use it (root, or the `docker` group), and rerun.
EOF
}

if engine_up; then
    log docker "engine is up (server $(engine_version))"
    exit 0
fi

if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
    if [ -x "$DOCKER" ]; then
        "$DOCKER" info 2>&1 | tail -n 3 | sed 's/^/[docker] docker info: /' >&2 || true
    fi
    how_to_install
    exit 1
fi

# One starter at a time (e.g. `make -j` or two sessions).
LOCK=/run/minik-ensure-docker.lock
exec 9>"$LOCK"
if ! flock -w $((WAIT + 600)) 9; then
    die docker "could not take $LOCK"
fi
if engine_up; then   # someone else started it while we waited for the lock
    log docker "engine is up (server $(engine_version))"
    exit 0
fi

if [ ! -x "$DOCKER" ] || [ ! -x "$DOCKERD" ]; then
    pkgs=(docker.io iptables)
    # Only needed where the kernel enforces AppArmor (docker then loads a profile).
    if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || true)" = Y ]; then
        pkgs+=(apparmor)
    fi
    apt_install "${pkgs[@]}"
    [ -x "$DOCKERD" ] || die docker "docker.io installed but $DOCKERD is missing"
fi

# Hosts without an init that mounts cgroups (none here: this VM mounts v1+v2).
if ! grep -qE '^[^ ]+ /sys/fs/cgroup[/ ]' /proc/mounts; then
    command -v cgroupfs-mount >/dev/null 2>&1 || apt_install cgroupfs-mount
    log docker "mounting cgroups (cgroupfs-mount)"
    cgroupfs-mount || log docker "cgroupfs-mount failed; dockerd may not start"
fi

dockerd_pid() {
    local pid
    pid=$(cat /var/run/docker.pid 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
        && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then
        echo "$pid"
        return 0
    fi
    pgrep -x dockerd 2>/dev/null | head -n 1
}

start_dockerd() {
    mkdir -p "$(dirname "$LOGFILE")"
    # Keep one previous log: a daemon's log is never trimmed while it runs.
    if [ "$(stat -c %s "$LOGFILE" 2>/dev/null || echo 0)" -gt $((16 * 1024 * 1024)) ]; then
        mv -f "$LOGFILE" "$LOGFILE.1"
    fi
    log docker "starting dockerd${*:+ $*} (log: $LOGFILE)"
    {
        echo "==== $(date -u +%FT%TZ) minik ensure-docker: $DOCKERD $*"
    } >>"$LOGFILE"
    # setsid: own session, not killed with the caller's process group/terminal.
    # nohup + </dev/null: no SIGHUP, no stdin (CI has none). 9>&-: the
    # daemon must not inherit (and so hold forever) our lock.
    setsid nohup "$DOCKERD" "$@" >>"$LOGFILE" 2>&1 </dev/null 9>&- &
    disown 2>/dev/null || true
}

# The daemon's log since our last "==== ... ensure-docker" marker line.
# Linear in the log's size: the log of a long-lived engine grows to tens of MB.
log_since_start() {
    local start
    start=$(grep -n '^==== .* minik ensure-docker: ' "$LOGFILE" 2>/dev/null | tail -n 1 \
        | cut -d: -f1)
    tail -n "+$((${start:-0} + 1))" "$LOGFILE" 2>/dev/null | tail -n 200
}

# wait_up SECONDS: 0 when the engine answers, 1 on timeout, 2 if dockerd died.
wait_up() {
    local deadline=$((SECONDS + $1)) next=$((SECONDS + 5))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if engine_up; then return 0; fi
        if [ -z "$(dockerd_pid)" ]; then
            sleep 1
            engine_up && return 0
            [ -z "$(dockerd_pid)" ] && return 2
        fi
        if [ "$SECONDS" -ge "$next" ]; then
            log docker "waiting for the engine ... $((SECONDS + $1 - deadline))s/${1}s"
            next=$((SECONDS + 5))
        fi
        sleep 0.5
    done
    engine_up
}

started_at=$SECONDS
if [ -n "$(dockerd_pid)" ]; then
    log docker "dockerd is already running (pid $(dockerd_pid)); waiting for it"
elif [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 \
    && [ ${#EXTRA_FLAGS[@]} -eq 0 ]; then
    log docker "starting docker.service with systemctl"
    systemctl start docker.service 9>&- || start_dockerd
else
    start_dockerd "${EXTRA_FLAGS[@]}"
fi

rc=0
wait_up "$WAIT" || rc=$?

if [ "$rc" = 2 ]; then
    # dockerd exited. Pick a fallback from what it logged, and retry once.
    recent=$(log_since_start)
    log docker "dockerd exited; what it reported:"
    grep -E 'level=(error|fatal)|failed|^[^t]' <<<"$recent" | tail -n 8 \
        | sed 's/^/[docker]   /' >&2 || true
    errors=$(grep -E 'level=(error|fatal)|failed to start daemon' <<<"$recent" || true)
    fallback=()
    if grep -qiE 'overlay|storage.driver|graphdriver' <<<"$errors"; then
        fallback+=(--storage-driver=vfs)
    fi
    if grep -qiE 'iptables|nf_tables|xtables' <<<"$errors"; then
        fallback+=(--iptables=false)
    fi
    if [ ${#fallback[@]} -gt 0 ]; then
        log docker "retrying with fallback flags: ${fallback[*]}"
        if [[ " ${fallback[*]} " == *" --iptables=false "* ]]; then
            log docker "WARNING: --iptables=false: no NAT, published ports do not work"
        fi
        start_dockerd "${EXTRA_FLAGS[@]}" "${fallback[@]}"
        rc=0
        wait_up "$WAIT" || rc=$?
    fi
fi

if [ "$rc" != 0 ]; then
    log docker "the engine did not come up within ${WAIT}s; last log lines of $LOGFILE:"
    log_since_start | tail -n 25 | sed 's/^/[docker]   /' >&2 || true
    how_to_install
    exit 1
fi

log docker "engine is up (server $(engine_version), $((SECONDS - started_at))s)"
