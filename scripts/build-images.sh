#!/usr/bin/env bash
# Build minik's local images (no registry needed; nothing is pulled).
#
#   scripts/build-images.sh [--force] [IMAGE...]
#
#   minik/pause:1.0        FROM scratch: static C pause (images/pause/pause.c)
#   minik/busybox:1.35     FROM scratch: Debian's busybox-static + applet links
#   minik/web:v1, :v2      FROM minik/busybox:1.35: httpd on :8080 answering v1/v2
#   minik/debian:bookworm  debootstrap minbase + nginx-light, redis-server,
#                          python3, ca-certificates, via `docker import`
#
# With no IMAGE, builds all of them. Only what is missing (or whose inputs
# changed: each image carries a `minik.dev/inputs` hash label) is built, so a
# second run costs well under a second. --force rebuilds the selected images.
# Every image is labelled minik.dev/image=true. No `:latest` tags.
#
# Installs gcc/libc6-dev, busybox-static, debootstrap with apt when missing.
# The Debian mirror for debootstrap is the one configured in
# /etc/apt/sources.list* (override: MINIK_DEBIAN_MIRROR=http://host/debian).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
# shellcheck source=scripts/lib.sh
. "$HERE/lib.sh"

# Docker's classic builder: FROM scratch / local images, no buildx needed.
export DOCKER_BUILDKIT=0

PAUSE=minik/pause:1.0
BUSYBOX=minik/busybox:1.35
WEB1=minik/web:v1
WEB2=minik/web:v2
DEBIAN=minik/debian:bookworm
ALL=("$PAUSE" "$BUSYBOX" "$WEB1" "$WEB2" "$DEBIAN")

DEBIAN_SUITE=bookworm
DEBIAN_INCLUDE=nginx-light,redis-server,python3,ca-certificates
DEBIAN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Bump a *_REV to force a rebuild of that image everywhere after changing how
# this script lays it out.
PAUSE_REV=1
BUSYBOX_REV=1
WEB_REV=1
DEBIAN_REV=1

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

FORCE=0
WANT=()
for arg in "$@"; do
    case "$arg" in
        --force|-f) FORCE=1 ;;
        -h|--help) usage; exit 0 ;;
        -*) usage >&2; die images "unknown option: $arg" ;;
        *)
            found=0
            for img in "${ALL[@]}"; do [ "$img" = "$arg" ] && found=1; done
            [ "$found" = 1 ] || die images "unknown image $arg (known: ${ALL[*]})"
            WANT+=("$arg")
            ;;
    esac
done
[ ${#WANT[@]} -gt 0 ] || WANT=("${ALL[@]}")

wanted() {
    local w
    for w in "${WANT[@]}"; do [ "$w" = "$1" ] && return 0; done
    return 1
}

"$HERE/ensure-docker.sh"

TMPROOT=$(mktemp -d /var/tmp/minik-images.XXXXXX)
cleanup() {
    # debootstrap mounts proc/sys in its target; never rm -rf through a mount.
    local m
    if [ -d "$TMPROOT" ]; then
        awk -v p="$TMPROOT/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r \
            | while read -r m; do umount -l "$m" 2>/dev/null || true; done
        rm -rf --one-file-system "$TMPROOT" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sha() { sha256sum | cut -c1-16; }

image_id() { "$DOCKER" image inspect -f '{{.Id}}' "$1" 2>/dev/null; }

# needs_build IMAGE INPUTS_HASH: print the status line; 0 when it must be built.
needs_build() {
    local img=$1 want=$2 have
    if ! have=$("$DOCKER" image inspect -f '{{index .Config.Labels "minik.dev/inputs"}}' \
        "$img" 2>/dev/null); then
        log images "$img ... building"
        return 0
    fi
    if [ "$FORCE" = 1 ]; then
        log images "$img ... rebuilding (--force)"
        return 0
    fi
    if [ "$have" != "$want" ]; then
        log images "$img ... inputs changed, rebuilding"
        return 0
    fi
    log images "$img ... exists"
    return 1
}

# drop_old OLD_ID IMAGE: remove the image a rebuild replaced, if now untagged
# and unused (only that one image id; errors ignored).
drop_old() {
    local old=$1 img=$2
    if [ -n "$old" ] && [ "$old" != "$(image_id "$img")" ]; then
        "$DOCKER" rmi "$old" >/dev/null 2>&1 || true
    fi
}

# docker_build IMAGE INPUTS CONTEXT [docker build args...]
docker_build() {
    local img=$1 inputs=$2 ctx=$3 out
    shift 3
    out=$TMPROOT/build-$(echo "$img" | tr '/:' '__').log
    if ! "$DOCKER" build --rm --force-rm \
        --label minik.dev/image=true --label "minik.dev/inputs=$inputs" \
        -t "$img" "$@" "$ctx" >"$out" 2>&1; then
        sed 's/^/[images]   /' "$out" >&2
        die images "$img ... docker build failed"
    fi
}

done_line() { log images "$1 ... built in $(( SECONDS - $2 ))s ($("$DOCKER" image inspect -f '{{.Size}}' "$1" | awk '{ printf "%.1f MB", $1 / 1e6 }'))"; }

# --------------------------------------------------------------------- pause
build_pause() {
    local src=$ROOT/images/pause cflags="-static -Os -s -Wall -Wextra -Werror"
    local inputs t0 old ctx
    inputs=$( { cat "$src/pause.c" "$src/Dockerfile"; echo "$cflags rev=$PAUSE_REV"; } | sha)
    needs_build "$PAUSE" "$inputs" || return 0
    t0=$SECONDS
    old=$(image_id "$PAUSE" || true)
    if ! command -v gcc >/dev/null 2>&1; then
        apt_install gcc libc6-dev
    elif [ "$(gcc -print-file-name=libc.a)" = libc.a ]; then
        apt_install libc6-dev   # static libc for -static
    fi
    ctx=$TMPROOT/pause
    mkdir -p "$ctx"
    cp "$src/Dockerfile" "$ctx/"
    # shellcheck disable=SC2086
    gcc $cflags -o "$ctx/pause" "$src/pause.c"
    docker_build "$PAUSE" "$inputs" "$ctx"
    drop_old "$old" "$PAUSE"
    done_line "$PAUSE" "$t0"
}

# ------------------------------------------------------------------- busybox
# Prints the path of a static busybox binary, installing busybox-static if
# needed. If Debian's dynamic `busybox` package owns /bin/busybox, the static
# one is unpacked into the temp dir instead of replacing the host's package.
static_busybox() {
    if dpkg -s busybox-static >/dev/null 2>&1 && [ -x /bin/busybox ]; then
        echo /bin/busybox
        return 0
    fi
    if ! dpkg -s busybox >/dev/null 2>&1; then
        apt_install busybox-static
        echo /bin/busybox
        return 0
    fi
    log images "dynamic busybox installed on the host; unpacking busybox-static into a temp dir"
    (
        cd "$TMPROOT"
        apt_update
        apt-get -q -o APT::Sandbox::User=root download busybox-static </dev/null >/dev/null
        dpkg-deb -x busybox-static_*.deb bbdeb
    )
    echo "$TMPROOT/bbdeb/bin/busybox"
}

busybox_inputs() {
    local bb=$1
    { sha256sum <"$bb"; cat "$ROOT/images/busybox/Dockerfile"; echo "rev=$BUSYBOX_REV"; } | sha
}

build_busybox() {
    local bb inputs t0 old ctx rootfs applet
    bb=$(static_busybox)
    [ -x "$bb" ] || die images "no busybox binary at $bb"
    inputs=$(busybox_inputs "$bb")
    needs_build "$BUSYBOX" "$inputs" || return 0
    t0=$SECONDS
    old=$(image_id "$BUSYBOX" || true)
    ctx=$TMPROOT/busybox
    rootfs=$ctx/rootfs
    mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/tmp,var/run,proc,sys,dev}
    chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
    chmod 0700 "$rootfs/root"
    cp "$bb" "$rootfs/bin/busybox"
    chmod 0755 "$rootfs/bin/busybox"
    # One symlink per applet, at the path busybox itself names (bin/sh,
    # usr/bin/wget, sbin/ifconfig, ...).
    while read -r applet; do
        [ -n "$applet" ] && [ "$applet" != bin/busybox ] || continue
        mkdir -p "$rootfs/$(dirname "$applet")"
        [ -e "$rootfs/$applet" ] || ln -s /bin/busybox "$rootfs/$applet"
    done < <("$bb" --list-full)
    cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
    cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
    echo "hosts: files dns" >"$rootfs/etc/nsswitch.conf"
    cp "$ROOT/images/busybox/Dockerfile" "$ctx/"
    docker_build "$BUSYBOX" "$inputs" "$ctx"
    drop_old "$old" "$BUSYBOX"
    done_line "$BUSYBOX" "$t0"
}

# ----------------------------------------------------------------------- web
build_web() {
    local img=$1 version=$2 base_id inputs t0 old
    base_id=$(image_id "$BUSYBOX") || die images "$img needs $BUSYBOX"
    inputs=$( { cat "$ROOT/images/web/Dockerfile"; echo "$version $base_id rev=$WEB_REV"; } | sha)
    needs_build "$img" "$inputs" || return 0
    t0=$SECONDS
    old=$(image_id "$img" || true)
    docker_build "$img" "$inputs" "$ROOT/images/web" \
        --build-arg "BASE=$BUSYBOX" --build-arg "VERSION=$version"
    drop_old "$old" "$img"
    done_line "$img" "$t0"
}

# -------------------------------------------------------------------- debian
# Prints the configured Debian mirror: the first deb URI in
# /etc/apt/sources.list* that serves the plain $DEBIAN_SUITE (or the host's
# own release) suite, from one-line or deb822 (.sources) files.
debian_mirror() {
    if [ -n "${MINIK_DEBIAN_MIRROR:-}" ]; then
        echo "$MINIK_DEBIAN_MIRROR"
        return 0
    fi
    local host_suite pairs
    host_suite=$( . /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}" )
    pairs=$(
        {
            for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
                [ -f "$f" ] || continue
                awk '$1 == "deb" {
                        i = 2
                        if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                        print $i, $(i + 1)
                     }' "$f"
            done
            for f in /etc/apt/sources.list.d/*.sources; do
                [ -f "$f" ] || continue
                awk 'BEGIN { RS = ""; FS = "\n" }
                     {
                        types = ""; uris = ""; suites = ""; enabled = "yes"
                        for (i = 1; i <= NF; i++) {
                            line = $i
                            if (line ~ /^[ \t]*#/) continue
                            key = tolower(line); sub(/:.*/, "", key)
                            val = line; sub(/^[^:]*:[ \t]*/, "", val)
                            if (key == "types") types = val
                            else if (key == "uris") uris = val
                            else if (key == "suites") suites = val
                            else if (key == "enabled") enabled = tolower(val)
                        }
                        if (enabled == "no" || types !~ /(^|[ \t])deb([ \t]|$)/) next
                        nu = split(uris, U, /[ \t]+/); ns = split(suites, S, /[ \t]+/)
                        for (u = 1; u <= nu; u++) for (s = 1; s <= ns; s++)
                            if (U[u] != "" && S[s] != "") print U[u], S[s]
                     }' "$f"
            done
        } 2>/dev/null
    )
    local suite uri
    for suite in "$DEBIAN_SUITE" "$host_suite"; do
        [ -n "$suite" ] || continue
        uri=$(awk -v s="$suite" '$2 == s { print $1; exit }' <<<"$pairs")
        if [ -n "$uri" ]; then
            echo "${uri%/}"
            return 0
        fi
    done
    echo "http://deb.debian.org/debian"
}

build_debian() {
    local inputs t0 old rootfs mirror pid rc next
    inputs=$(echo "$DEBIAN_SUITE minbase $DEBIAN_INCLUDE $DEBIAN_PATH rev=$DEBIAN_REV" | sha)
    needs_build "$DEBIAN" "$inputs" || return 0
    t0=$SECONDS
    old=$(image_id "$DEBIAN" || true)
    if ! command -v debootstrap >/dev/null 2>&1; then
        apt_install debootstrap debian-archive-keyring
    fi
    mirror=$(debian_mirror)
    rootfs=$TMPROOT/debian-rootfs
    log images "$DEBIAN ... debootstrap $DEBIAN_SUITE from $mirror (about a minute)"
    debootstrap --variant=minbase --include="$DEBIAN_INCLUDE" \
        "$DEBIAN_SUITE" "$rootfs" "$mirror" >"$TMPROOT/debootstrap.log" 2>&1 </dev/null &
    pid=$!
    next=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$next" ]; then
            log images "$DEBIAN ... debootstrap running ($((SECONDS - t0))s):" \
                "$(grep -E '^I: ' "$TMPROOT/debootstrap.log" | tail -n 1 | cut -c1-80)"
            next=$((SECONDS + 15))
        fi
        sleep 1
    done
    rc=0
    wait "$pid" || rc=$?
    if [ "$rc" != 0 ]; then
        tail -n 30 "$TMPROOT/debootstrap.log" | sed 's/^/[images]   /' >&2
        [ -f "$rootfs/debootstrap/debootstrap.log" ] \
            && tail -n 20 "$rootfs/debootstrap/debootstrap.log" | sed 's/^/[images]   /' >&2
        die images "$DEBIAN ... debootstrap failed (exit $rc)"
    fi
    # Slim it down: downloaded .debs and package lists are not needed.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/var/log/*.log "$rootfs"/debootstrap
    log images "$DEBIAN ... importing rootfs ($(du -sm "$rootfs" | cut -f1) MB)"
    tar --numeric-owner -C "$rootfs" \
        --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . \
        | "$DOCKER" import \
            --change "ENV PATH=$DEBIAN_PATH" \
            --change 'ENV LANG=C.UTF-8' \
            --change 'CMD ["bash"]' \
            --change 'LABEL minik.dev/image=true' \
            --change "LABEL minik.dev/inputs=$inputs" \
            --message "minik: debootstrap $DEBIAN_SUITE minbase + $DEBIAN_INCLUDE" \
            - "$DEBIAN" >/dev/null
    drop_old "$old" "$DEBIAN"
    done_line "$DEBIAN" "$t0"
}

# ---------------------------------------------------------------------- main
T0=$SECONDS
wanted "$PAUSE" && build_pause
if wanted "$BUSYBOX" || wanted "$WEB1" || wanted "$WEB2"; then
    build_busybox   # the web images are built on it
fi
wanted "$WEB1" && build_web "$WEB1" v1
wanted "$WEB2" && build_web "$WEB2" v2
wanted "$DEBIAN" && build_debian
log images "done in $((SECONDS - T0))s"
