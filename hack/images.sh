#!/usr/bin/env bash
# hack/images.sh — build the e2e test images locally (no registry is reachable here).
#
#   hack/images.sh            build into the engine named by DOCKER_HOST (default: the main one)
#   hack/images.sh --force    rebuild even when the images are up to date
#
# Images (see docs/docker-testbed.md):
#   zun-test/httpd:v1, zun-test/httpd:v2  busybox httpd on :8080 ($PORT), page names the version
#                                          and the container's hostname; /healthz answers 200
#   zun-test/httpd:broken                  exits 3 at once (rollback tests)
#   zun-test/haproxy:2.6                   Debian's haproxy + the libraries ldd lists, master-worker
#                                          mode (-W: SIGUSR2 reloads), config at
#                                          /usr/local/etc/haproxy/haproxy.cfg
#
# Each image is a `docker import` of a rootfs tarball: no builder (BuildKit or classic), no base
# image, one layer. An image is rebuilt only when it is missing or its label
# org.zun-test.inputs differs from the hash of its inputs (this script, the busybox binary, the
# haproxy binary and its libraries).
set -euo pipefail

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf 'images.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

FORCE=0
[[ ${1:-} == --force ]] && FORCE=1

DOCKER_BIN=/usr/bin/docker  # Debian's client: same API version as the engine
[[ -x $DOCKER_BIN ]] || DOCKER_BIN=docker
dk() { "$DOCKER_BIN" "$@"; }

BUSYBOX=/bin/busybox
HAPROXY=/usr/sbin/haproxy

ensure_packages() {
    local missing=() pkg
    for pkg in busybox-static haproxy; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >&2
    fi
    # busybox (dynamic) and busybox-static both install /bin/busybox; only the static one works
    # in a FROM-scratch image.
    if ldd "$BUSYBOX" >/dev/null 2>&1; then
        die "$BUSYBOX is dynamically linked: install busybox-static"
    fi
}

SCRIPT_SHA=$(sha256sum "$0" | cut -d' ' -f1)

# ------------------------------------------------------------------------------ rootfs pieces

busybox_rootfs() {  # busybox_rootfs DIR -> static busybox with every applet linked in place
    local d=$1
    mkdir -p "$d"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,var/www,proc,sys,dev}
    chmod 1777 "$d/tmp"
    cp "$BUSYBOX" "$d/bin/busybox"
    # --list-full prints paths such as usr/sbin/httpd; sh, wget, nc, sleep, cat are among them.
    "$BUSYBOX" --list-full | sed -n 's|/[^/]*$||p' | sort -u | (cd "$d" && xargs mkdir -p)
    "$BUSYBOX" --list-full | grep -vx -e bin/busybox -e linuxrc | (cd "$d" && xargs -n1 ln -sf /bin/busybox)
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        >"$d/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/etc/group"
    # glibc (haproxy) reads this for getaddrinfo(); busybox ignores it.
    printf 'hosts: files dns\n' >"$d/etc/nsswitch.conf"
}

httpd_start_script() {  # httpd_start_script VERSION -> /bin/zun-httpd
    local version=$1
    if [[ $version == broken ]]; then
        cat <<'EOF'
#!/bin/sh
# zun-test/httpd:broken — fails at once, like a bad release, so rollbacks can be tested.
echo "zun-test httpd broken: refusing to start (exit 3)" >&2
exit 3
EOF
        return
    fi
    cat <<EOF
#!/bin/sh
# zun-test/httpd:$version — busybox httpd on \$PORT (default 8080).
# PID 1 in a container ignores every signal it has no handler for, and busybox httpd installs
# none for SIGTERM; so this shell stays PID 1, traps TERM/INT and passes them on: docker stop
# returns in milliseconds instead of waiting for the SIGKILL after the grace period.
VERSION=$version
EOF
    cat <<'EOF'
PORT="${PORT:-8080}"
DOC=/var/www
HOST="$(hostname)"
mkdir -p "$DOC/cgi-bin"
printf 'zun-test httpd %s host=%s\n' "$VERSION" "$HOST" >"$DOC/index.html"
printf 'ok\n' >"$DOC/healthz"
printf '%s\n' "$VERSION" >"$DOC/version"
# /cgi-bin/env: the request as the server saw it (client address, headers), for LB tests.
cat >"$DOC/cgi-bin/env" <<CGI
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
echo "version=$VERSION host=$HOST"
env | sort
CGI
chmod 755 "$DOC/cgi-bin/env"
child=""
trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait "$child"; exit 0' TERM INT
echo "zun-test httpd $VERSION listening on :$PORT (host $HOST)"
httpd -f -v -p "$PORT" -h "$DOC" &
child=$!
wait "$child"
status=$?
echo "httpd exited with status $status" >&2
exit "$status"
EOF
}

haproxy_default_cfg() {
    cat <<'EOF'
# zun-test/haproxy default config: replace it (bind-mount the directory, write the new file
# atomically with a rename, then send SIGUSR2 to PID 1 to reload without dropping connections).
global
    maxconn 1024              # otherwise derived from the container's huge nofile limit
    log stdout format raw local0 info

defaults
    mode http
    log global
    option httplog
    option redispatch
    retries 2
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend main
    bind :8080
    http-request return status 200 content-type text/plain string "ok\n" if { path /healthz }
    default_backend app

backend app
    balance roundrobin
    # no servers yet: every request gets 503
EOF
}

haproxy_libs() {  # the shared objects haproxy loads, loader included
    ldd "$HAPROXY" | awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}' | sort -u
}

# ---------------------------------------------------------------------------------- building

inputs_hash() {  # inputs_hash NAME FILES... -> sha256 over this script and the given files
    { echo "$1 $SCRIPT_SHA"; sha256sum "${@:2}"; } | sha256sum | cut -d' ' -f1
}

up_to_date() {  # up_to_date IMAGE HASH
    local have
    ((FORCE)) && return 1
    have=$(dk image inspect -f '{{index .Config.Labels "org.zun-test.inputs"}}' "$1" \
        2>/dev/null) || return 1
    [[ $have == "$2" ]]
}

import_rootfs() {  # import_rootfs DIR IMAGE HASH CHANGES... -> docker import, one layer
    local dir=$1 image=$2 hash=$3
    shift 3
    local args=() c
    for c in "$@" "LABEL org.zun-test.inputs=$hash" \
        "LABEL org.zun-test.built-by=hack/images.sh" \
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"; do
        args+=(--change "$c")
    done
    local old
    old=$(dk image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
    tar --numeric-owner --owner=0 --group=0 -C "$dir" -cf - . \
        | dk import "${args[@]}" - "$image" >/dev/null
    # The previous build is now untagged; drop it unless a container still uses it.
    if [[ -n $old && $old != "$(dk image inspect -f '{{.Id}}' "$image")" ]]; then
        dk image rm "$old" >/dev/null 2>&1 || true
    fi
}

build_httpd() {  # build_httpd VERSION
    local version=$1 image="zun-test/httpd:$1" hash d
    hash=$(inputs_hash "httpd-$version" "$BUSYBOX")
    if up_to_date "$image" "$hash"; then
        log "$image is up to date"
        return
    fi
    d="$WORK/httpd-$version"
    busybox_rootfs "$d"
    httpd_start_script "$version" >"$d/bin/zun-httpd"
    chmod 755 "$d/bin/zun-httpd"
    import_rootfs "$d" "$image" "$hash" \
        'CMD ["/bin/zun-httpd"]' 'EXPOSE 8080/tcp' 'WORKDIR /' 'ENV PORT=8080' \
        "LABEL org.zun-test.version=$version"
    log "built $image"
}

build_haproxy() {
    local image=zun-test/haproxy:2.6 hash d lib libs
    mapfile -t libs < <(haproxy_libs)
    hash=$(inputs_hash haproxy "$BUSYBOX" "$HAPROXY" "${libs[@]}")
    if up_to_date "$image" "$hash"; then
        log "$image is up to date"
        return
    fi
    d="$WORK/haproxy"
    # busybox too (2 MB): sh, cat, wget, kill, so tests can exec into the balancer.
    busybox_rootfs "$d"
    mkdir -p "$d/usr/sbin" "$d/usr/local/etc/haproxy" "$d/var/lib/haproxy" "$d/run"
    rm -f "$d/usr/sbin/haproxy"
    cp "$HAPROXY" "$d/usr/sbin/haproxy"
    for lib in "${libs[@]}"; do
        mkdir -p "$d$(dirname "$lib")"
        cp -L "$lib" "$d$lib"  # follow symlinks: libfoo.so.1 -> libfoo.so.1.2.3
    done
    # Debian's loader lives in /lib/x86_64-linux-gnu and /lib64/ld-linux-x86-64.so.2 is a
    # symlink to it; with -L above the copy at the path ldd printed is a regular file.
    haproxy_default_cfg >"$d/usr/local/etc/haproxy/haproxy.cfg"
    # Fail now, not in a test, if a library is missing: check the config inside the rootfs.
    chroot "$d" /usr/sbin/haproxy -c -q -f /usr/local/etc/haproxy/haproxy.cfg \
        || die "haproxy does not run inside its rootfs"
    # -W master-worker: the master (PID 1) handles SIGTERM (stop), SIGUSR1 (soft stop) and
    # SIGUSR2 (reload: re-reads the config, starts new workers, old ones finish their
    # connections). -db: stay in the foreground.
    import_rootfs "$d" "$image" "$hash" \
        'ENTRYPOINT ["/usr/sbin/haproxy"]' \
        'CMD ["-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]' \
        'EXPOSE 8080/tcp' 'WORKDIR /' 'LABEL org.zun-test.version=2.6'
    log "built $image ($("$HAPROXY" -v | head -1 | cut -d' ' -f3))"
}

main() {
    ensure_packages
    timeout 10 "$DOCKER_BIN" info >/dev/null 2>&1 \
        || die "no Docker engine answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}" \
        "(run hack/dockerd.sh start)"
    # One build at a time per engine (parallel test sessions call this too).
    local key lock
    key=$(printf '%s' "${DOCKER_HOST:-default}" | cksum | cut -d' ' -f1)
    exec {lock}>"/run/lock/zun-images-$key.lock"
    flock -w 300 "$lock" || die "another images.sh holds the lock"
    WORK=$(mktemp -d /tmp/zun-images.XXXXXX)
    trap 'rm -rf "$WORK"' EXIT
    build_httpd v1
    build_httpd v2
    build_httpd broken
    build_haproxy
}

main "$@"
