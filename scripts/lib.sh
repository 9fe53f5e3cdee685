# shellcheck shell=bash
# Helpers shared by scripts/*.sh. Source it; do not run it.
#
#   log TAG MSG...        progress line "[TAG] MSG" on stderr
#   die TAG MSG...        same, then exit 1
#   is_root               true when running as uid 0
#   apt_update            `apt-get update`, once per script run
#   apt_install PKG...    apt-get install (non-interactive), running
#                         `apt-get update` once per script run first, and
#                         waiting for another apt/dpkg (e.g. a concurrent
#                         install) to release its locks instead of failing.

: "${DOCKER:=/usr/bin/docker}"   # always Debian's client, never /usr/local/bin/docker
export DEBIAN_FRONTEND=noninteractive
export NEEDRESTART_MODE=l        # needrestart (if installed) must never prompt

log() { local tag=$1; shift; printf '[%s] %s\n' "$tag" "$*" >&2; }
die() { log "$@"; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

_MINIK_APT_UPDATED=${_MINIK_APT_UPDATED:-0}

# _apt_retry CMD...: run an apt-get command; DPkg::Lock::Timeout makes apt
# wait for the dpkg lock, and the loop covers the locks it does not wait on
# (the lists lock during `update`).
_apt_retry() {
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        if apt-get -q -o DPkg::Lock::Timeout=600 "$@" </dev/null; then
            return 0
        fi
        log apt "apt-get $1 failed (attempt $i/10; another apt may hold the lock), retrying in 10 s"
        sleep 10
    done
    return 1
}

apt_update() {
    is_root || die apt "need root to run apt-get"
    command -v apt-get >/dev/null 2>&1 || die apt "apt-get not found"
    if [ "$_MINIK_APT_UPDATED" != 1 ]; then
        log apt "apt-get update"
        _apt_retry update >/dev/null || die apt "apt-get update failed"
        _MINIK_APT_UPDATED=1
    fi
}

apt_install() {
    is_root || die apt "need root to install: $*"
    command -v apt-get >/dev/null 2>&1 || die apt "apt-get not found; install by hand: $*"
    apt_update
    log apt "installing: $*"
    _apt_retry install -y --no-install-recommends "$@" >/dev/null \
        || die apt "apt-get install $* failed"
}
