#!/usr/bin/env bash
# hack/dockerd.sh — start/stop Docker engines for the e2e tests (see docs/docker-testbed.md).
#
#   hack/dockerd.sh start          main engine on /var/run/docker.sock (no-op if one answers)
#   hack/dockerd.sh start NAME     extra engine on /run/zun-dockerd-NAME.sock (a second "host")
#   hack/dockerd.sh stop  NAME     stop that extra engine and remove its state
#   hack/dockerd.sh stop           stop the main engine (keeps /var/lib/docker: images stay)
#   hack/dockerd.sh status [NAME]  print the socket URL, exit 1 if nothing answers there
#   hack/dockerd.sh sweep-veths    delete veth pairs no container uses (done at each extra start)
#
# `start` prints the socket URL (unix:///...) on stdout and nothing else; progress and errors go
# to stderr. Every command is idempotent and bounded in time (ZUN_DOCKERD_WAIT, default 60 s).
#
# What this machine kind needs (found by trying; Debian 12, kernel 6.x, no systemd, root):
# - No init system manages dockerd: it is started by hand, detached with setsid so that it
#   outlives the shell / pytest process that asked for it, stdin/stdout/stderr redirected (a
#   daemon that inherits a caller's pipe makes subprocess.run() wait forever for EOF).
# - cgroups are "hybrid": v1 controllers under /sys/fs/cgroup/* plus cgroup2 at
#   /sys/fs/cgroup/unified. dockerd 20.10 with its default cgroupfs driver and runc work; crun
#   does not (it refuses hybrid mode). The "kernel does not support cgroup blkio weight" warnings
#   are harmless.
# - iptables: Debian's `iptables` is the nft flavour and works here (kernel has nf_tables and
#   nft_compat). If it did not, we put iptables-legacy first on dockerd's PATH only (never switch
#   the system alternative). Do not mix: running `iptables-legacy -L` once creates legacy tables
#   that stay for the kernel's lifetime (harmless, but iptables-nft then warns about them).
# - Storage: overlay2 works on the ext4 root. We probe an overlay mount on the data-root's file
#   system first and fall back to vfs (slow, full copies) where overlay is refused (e.g. the
#   data-root itself sits on overlayfs). ZUN_DOCKERD_STORAGE_DRIVER overrides the probe.
# - modprobe does not exist (no /lib/modules); everything needed is built into the kernel.
#   There is no IPVS, so Swarm's ingress routing mesh cannot work (use host-mode publishing).
# - Extra engines must not share the main engine's iptables chains: dockerd 20.10 *removes and
#   recreates* the DOCKER / DOCKER-ISOLATION chains when it starts, so a second dockerd with
#   iptables on would wipe the first one's rules. Extra engines therefore run with
#   --iptables=false and their own pre-created bridge (docker cannot create a bridge other than
#   docker0 itself, and --bip with the default name would fight over docker0). Published ports
#   still work through docker-proxy (the userland proxy), which is what serves 127.0.0.1 anyway.
# - The main engine enables ip_forward and sets the FORWARD policy to DROP; with
#   bridge-nf-call-iptables=1 (built in here) even traffic *within* one bridge goes through
#   FORWARD, so containers of an extra engine could not talk to each other. We insert one
#   narrow ACCEPT rule per extra engine: bridged packets whose source and destination are both
#   inside that engine's 10.N.0.0/16 (its default bridge and its address pool for user-defined
#   networks). `stop NAME` deletes it again.
# - The embedded DNS server (container names on user-defined networks) works with
#   --iptables=false: its DNAT rules live inside each container's network namespace.
# - A second dockerd starts its own managed containerd under its exec-root; we also give it its
#   own containerd namespaces in case a system containerd (/run/containerd) is shared.
# - gVisor (Debian's runsc 0.0~20221219) works as a dockerd runtime only with runtimeArgs
#   ["--network=host"]: the sandbox then uses the network namespace docker made for the
#   container (bridge networks and published ports work); without it every start fails with
#   "cannot run with network enabled in root network namespace". Each engine this script starts
#   gets a daemon config of its own (--config-file) registering it as runtime `runsc` when
#   /usr/bin/runsc exists. The main engine reads it only when this script starts it (an engine
#   already answering is left as it is), and not at all when /etc/docker/daemon.json exists
#   (that file is the machine's own; register runsc there by hand).
set -euo pipefail

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

WAIT_SECONDS=${ZUN_DOCKERD_WAIT:-60}
DOCKERD=${ZUN_DOCKERD_BIN:-/usr/sbin/dockerd}
MAIN_SOCK=/var/run/docker.sock
MAIN_PIDFILE=/var/run/docker.pid
MAIN_DATA_ROOT=/var/lib/docker
MAIN_LOG=${ZUN_DOCKERD_LOG:-/var/log/zun-dockerd.log}
MAIN_CONFIG=/run/zun-dockerd.json
RUNSC=/usr/bin/runsc
LOCK_DIR=/run/lock

log() { printf 'dockerd.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Debian's client (20.10) matches the engine; the newer /usr/local/bin/docker works too (API
# version negotiation), but only the Debian one is sure to be there on a fresh machine.
DOCKER_BIN=/usr/bin/docker
[[ -x $DOCKER_BIN ]] || DOCKER_BIN=docker

answers() {  # answers SOCKET_PATH -> 0 if an engine replies to `docker info` there
    [[ -S $1 ]] || return 1
    timeout 10 "$DOCKER_BIN" -H "unix://$1" info >/dev/null 2>&1
}

pid_alive() {  # pid_alive PIDFILE -> 0 if it names a running dockerd
    local pid
    [[ -s $1 ]] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/comm ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]]
}

ensure_packages() {
    # Idempotent install for a fresh machine; only calls apt-get when something is missing
    # (apt-get takes the dpkg lock, which other jobs on the machine may hold).
    local missing=() pkg
    for pkg in docker.io busybox-static haproxy iproute2 iptables util-linux; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >&2
    fi
    # gVisor is optional: an engine starts without the runsc runtime where it cannot be had.
    if [[ ! -x $RUNSC ]] && apt-cache show runsc >/dev/null 2>&1; then
        log "installing runsc"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends runsc >&2 \
            || log "warning: runsc not installed; engines start without the runsc runtime"
    fi
}

write_config() {  # write_config PATH -> the daemon config of an engine this script starts
    # Only runtimes live here: every other setting is a flag, and dockerd refuses a setting
    # given both ways.
    local runtimes='{}'
    [[ -x $RUNSC ]] \
        && runtimes="{\"runsc\": {\"path\": \"$RUNSC\", \"runtimeArgs\": [\"--network=host\"]}}"
    printf '{"runtimes": %s}\n' "$runtimes" >"$1.tmp"
    mv "$1.tmp" "$1"
}

main_config_args() {  # the --config-file flag of the main engine ("" if the machine has its own)
    if [[ -e /etc/docker/daemon.json ]]; then
        log "/etc/docker/daemon.json exists: the main engine uses it (runsc not registered by us)"
        return
    fi
    write_config "$MAIN_CONFIG"
    echo "--config-file=$MAIN_CONFIG"
}

iptables_path_prefix() {
    # Prints a directory to put first on dockerd's PATH ("" if the default iptables works).
    if iptables -w 5 -t nat -S >/dev/null 2>&1 && iptables -w 5 -t filter -S >/dev/null 2>&1
    then
        echo ""
        return
    fi
    if command -v iptables-legacy >/dev/null && iptables-legacy -w 5 -t nat -S >/dev/null 2>&1
    then
        local d=/run/zun-dockerd-legacy-bin t
        mkdir -p "$d"
        for t in iptables iptables-save iptables-restore ip6tables ip6tables-save \
            ip6tables-restore; do
            ln -sf "/usr/sbin/${t/iptables/iptables-legacy}" "$d/$t"
        done
        log "iptables (nft) unusable here; dockerd gets iptables-legacy"
        echo "$d"
        return
    fi
    echo "NONE"
}

probe_storage_driver() {  # probe_storage_driver DATA_ROOT -> overlay2 | vfs
    if [[ -n ${ZUN_DOCKERD_STORAGE_DRIVER:-} ]]; then
        echo "$ZUN_DOCKERD_STORAGE_DRIVER"
        return
    fi
    # The choice is remembered: switching drivers later would hide the images already stored.
    if [[ -s $1/.zun-storage-driver ]]; then
        cat "$1/.zun-storage-driver"
        return
    fi
    mkdir -p "$1"
    local p
    p=$(mktemp -d "$1/.overlay-probe.XXXXXX")
    mkdir -p "$p/l" "$p/u" "$p/w" "$p/m"
    if mount -t overlay overlay -o "lowerdir=$p/l,upperdir=$p/u,workdir=$p/w" "$p/m" \
        2>/dev/null; then
        umount "$p/m"
        echo overlay2
    else
        log "overlay mount refused on $(df --output=fstype "$1" | tail -1); using vfs"
        echo vfs
    fi
    rm -rf "$p"
}

wait_for() {  # wait_for SOCKET PID LOG -> 0 when the engine answers; 1 if it died or timed out
    local sock=$1 pid=$2 logf=$3 deadline=$((SECONDS + WAIT_SECONDS))
    while ((SECONDS < deadline)); do
        answers "$sock" && return 0
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            log "dockerd (pid $pid) exited; last lines of $logf:"
            tail -n 15 "$logf" >&2 || true
            return 1
        fi
        sleep 0.2
    done
    log "no answer on $sock after ${WAIT_SECONDS}s; last lines of $logf:"
    tail -n 15 "$logf" >&2 || true
    return 1
}

launch() {  # launch LOG PATH_PREFIX ARGS... -> echoes the daemon's pid
    local logf=$1 prefix=$2
    shift 2
    local path=$PATH
    [[ -n $prefix ]] && path="$prefix:$PATH"
    printf '\n==== %s dockerd %s\n' "$(date -Is)" "$*" >>"$logf"
    # setsid: own session, so the daemon survives the caller's process group being killed.
    # The lock's fd must not leak into the daemon, or it would hold the lock for its lifetime.
    PATH=$path setsid "$DOCKERD" "$@" </dev/null >>"$logf" 2>&1 {LOCK_FD}>&- &
    echo $!
}

take_lock() {  # take_lock NAME -> serialise dockerd.sh runs for one engine (pytest-xdist etc.)
    exec {LOCK_FD}>"$LOCK_DIR/$1.lock"
    flock -w "$((WAIT_SECONDS + 30))" "$LOCK_FD" || die "another dockerd.sh holds $1.lock"
}

# ---------------------------------------------------------------------------------------- main

start_main() {
    take_lock zun-dockerd
    if answers "$MAIN_SOCK" && ! ip link show docker0 >/dev/null 2>&1; then
        # docker0 gone under the running engine (an extra engine's restart deletes it, see
        # restore_docker0): make it again from the engine's own idea of its default bridge.
        local gw subnet
        gw=$(docker -H "unix://$MAIN_SOCK" network inspect bridge \
            --format '{{(index .IPAM.Config 0).Gateway}}' 2>/dev/null || true)
        subnet=$(docker -H "unix://$MAIN_SOCK" network inspect bridge \
            --format '{{(index .IPAM.Config 0).Subnet}}' 2>/dev/null || true)
        NAME=main
        if [[ -n $gw && -n $subnet ]]; then
            restore_docker0 "$gw/${subnet#*/}"
        else
            log "docker0 is missing and the engine does not say its address; restarting it"
            stop_pidfile "$MAIN_PIDFILE"
        fi
    fi
    if answers "$MAIN_SOCK"; then
        echo "unix://$MAIN_SOCK"
        return
    fi
    ensure_packages
    if pid_alive "$MAIN_PIDFILE"; then
        # Started but not answering yet (or hung): wait for it rather than start a second one.
        log "dockerd pid $(cat "$MAIN_PIDFILE") is running; waiting for $MAIN_SOCK"
        wait_for "$MAIN_SOCK" "$(cat "$MAIN_PIDFILE")" "$MAIN_LOG" || die "engine not answering"
        echo "unix://$MAIN_SOCK"
        return
    fi
    local prefix driver extra=() pid
    prefix=$(iptables_path_prefix)
    if [[ $prefix == NONE ]]; then
        log "no working iptables; starting dockerd with --iptables=false"
        prefix=""
        extra+=(--iptables=false)
    fi
    driver=$(probe_storage_driver "$MAIN_DATA_ROOT")
    mkdir -p "$(dirname "$MAIN_LOG")"
    local config
    config=$(main_config_args)
    [[ -n $config ]] && extra+=("$config")
    pid=$(launch "$MAIN_LOG" "$prefix" --host "unix://$MAIN_SOCK" --pidfile "$MAIN_PIDFILE" \
        --data-root "$MAIN_DATA_ROOT" --storage-driver "$driver" "${extra[@]}")
    if ! wait_for "$MAIN_SOCK" "$pid" "$MAIN_LOG"; then
        if [[ $driver == overlay2 && -z ${ZUN_DOCKERD_STORAGE_DRIVER:-} ]] \
            && ! kill -0 "$pid" 2>/dev/null; then
            log "retrying with the vfs storage driver"
            driver=vfs
            pid=$(launch "$MAIN_LOG" "$prefix" --host "unix://$MAIN_SOCK" \
                --pidfile "$MAIN_PIDFILE" --data-root "$MAIN_DATA_ROOT" \
                --storage-driver vfs "${extra[@]}")
            wait_for "$MAIN_SOCK" "$pid" "$MAIN_LOG" || die "dockerd did not start"
        else
            die "dockerd did not start"
        fi
    fi
    echo "$driver" >"$MAIN_DATA_ROOT/.zun-storage-driver"
    log "dockerd pid $pid answers on $MAIN_SOCK (storage $driver, log $MAIN_LOG)"
    echo "unix://$MAIN_SOCK"
}

stop_pidfile() {  # stop_pidfile PIDFILE -> TERM, wait (dockerd stops its containers), KILL
    local pid deadline
    pid_alive "$1" || return 0
    pid=$(cat "$1")
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 40))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "dockerd $pid still running after 40 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
}

stop_main() {
    take_lock zun-dockerd
    stop_pidfile "$MAIN_PIDFILE"
    log "main engine stopped (data kept in $MAIN_DATA_ROOT)"
}

# --------------------------------------------------------------------------------------- extra

check_name() {
    # The bridge is called zbr-NAME and Linux interface names are at most 15 characters.
    [[ $1 =~ ^[a-z0-9][a-z0-9-]{0,10}$ ]] \
        || die "engine name must match [a-z0-9][a-z0-9-]{0,10} (got '$1')"
}

extra_paths() {
    NAME=$1
    SOCK=/run/zun-dockerd-$NAME.sock
    PIDFILE=/run/zun-dockerd-$NAME.pid
    EXEC_ROOT=/run/zun-dockerd-$NAME
    DATA_ROOT=/var/lib/zun-dockerd-$NAME
    LOGF=/var/log/zun-dockerd-$NAME.log
    CONFIG=/run/zun-dockerd-$NAME.json
    BRIDGE=zbr-$NAME
    RULE_COMMENT=zun-dockerd-$NAME
}

pick_octet() {
    # Second octet N of 10.N.0.0/16 for this engine: reuse the bridge's if it exists, else the
    # first free one from a hash of the name (not used by any route or address on the machine).
    local cur n i
    cur=$({ ip -4 -o addr show dev "$BRIDGE" 2>/dev/null || true; } | awk '{print $4}' | head -1)
    if [[ $cur =~ ^10\.([0-9]+)\.0\.1/24$ ]]; then
        echo "${BASH_REMATCH[1]}"
        return
    fi
    n=$((200 + $(printf '%s' "$NAME" | cksum | cut -d' ' -f1) % 50))
    for ((i = 0; i < 50; i++)); do
        if ! ip -4 -o route show table all | grep -q " 10\.$n\.\|^10\.$n\." \
            && ! ip -4 -o addr show | grep -q " 10\.$n\."; then
            echo "$n"
            return
        fi
        n=$((200 + (n - 200 + 1) % 50))
    done
    die "no free 10.200-249.0.0/16 range for $NAME"
}

forward_rule() {  # forward_rule -C|-I|-D OCTET
    iptables -w 5 "$1" FORWARD -s "10.$2.0.0/16" -d "10.$2.0.0/16" \
        -m physdev --physdev-is-bridged -m comment --comment "$RULE_COMMENT" -j ACCEPT \
        2>/dev/null
}

ensure_forward_rule() {  # ensure_forward_rule OCTET (also re-added if someone flushed it)
    [[ $(iptables_path_prefix) == NONE ]] && return 0
    forward_rule -C "$1" || forward_rule -I "$1" \
        || log "warning: no FORWARD rule; containers of $NAME may not reach each other"
}

restore_docker0() {  # restore_docker0 "ADDR/LEN ..." -> make docker0 again if it went
    # Restarting an extra engine (a second start on its data-root) deletes the MAIN engine's
    # docker0 on this kernel (reproduced: start, SIGTERM, start). The main engine finds its
    # default bridge by name, so the same bridge with the same addresses repairs it in place.
    local addrs=$1 a
    [[ -n $addrs ]] || return 0
    ip link show docker0 >/dev/null 2>&1 && return 0
    log "docker0 was deleted while $NAME started; making it again ($addrs)"
    ip link add docker0 type bridge
    for a in $addrs; do ip addr add "$a" dev docker0; done
    ip link set docker0 up
}

orphan_veths() {  # veth ends whose peer is on the host too, plugged into a bridge
    ip -o link show type veth 2>/dev/null \
        | awk -F': ' '$2 ~ /@/ && $2 !~ /@if[0-9]+$/ && / master / { split($2, a, "@"); print a[1] }' \
        | sort
}

sweep_orphan_veths() {
    # A container's veth has one end in its network namespace; pairs with both ends on the
    # host belong to no container. dockerd leaks them when restarted with hundreds of
    # containers, and once a bridge holds 1024 ports every start fails ("exchange full").
    # A pair being made right now has both ends here for a moment, so only the ones still
    # there 2 s later go.
    local first n=0 v
    first=$(orphan_veths)
    [[ -n $first ]] || return 0
    sleep 2
    for v in $(comm -12 <(echo "$first") <(orphan_veths)); do
        ip link delete "$v" 2>/dev/null && n=$((n + 1))
    done
    ((n == 0)) || log "deleted $n veth pairs that no container uses"
}

start_extra() {
    check_name "$1"
    extra_paths "$1"
    take_lock "zun-dockerd-$NAME"
    if answers "$SOCK"; then
        ensure_forward_rule "$(pick_octet)"
        echo "unix://$SOCK"
        return
    fi
    ensure_packages
    if pid_alive "$PIDFILE"; then
        log "extra dockerd $NAME is running; waiting for $SOCK"
        wait_for "$SOCK" "$(cat "$PIDFILE")" "$LOGF" || die "engine $NAME not answering"
        echo "unix://$SOCK"
        return
    fi
    local n driver pid docker0_addrs
    sweep_orphan_veths
    docker0_addrs=$({ ip -4 -o addr show dev docker0 2>/dev/null || true; } | awk '{print $4}')
    n=$(pick_octet)
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
        ip addr add "10.$n.0.1/24" dev "$BRIDGE"
    fi
    ip link set "$BRIDGE" up
    ensure_forward_rule "$n"
    driver=$(probe_storage_driver "$DATA_ROOT")
    mkdir -p "$EXEC_ROOT" "$DATA_ROOT" "$(dirname "$LOGF")"
    : >"$LOGF"
    write_config "$CONFIG"
    pid=$(launch "$LOGF" "" --host "unix://$SOCK" --pidfile "$PIDFILE" --config-file "$CONFIG" \
        --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" --storage-driver "$driver" \
        --bridge "$BRIDGE" --iptables=false --ip-forward=false --ip-masq=false \
        --default-address-pool "base=10.$n.128.0/17,size=21" \
        --containerd-namespace "zun-$NAME" --containerd-plugins-namespace "zun-$NAME-plugins" \
        --cgroup-parent "zun-dockerd-$NAME")
    wait_for "$SOCK" "$pid" "$LOGF" || die "extra dockerd $NAME did not start"
    sleep 1  # the deletion happens while the new engine restores its networks
    restore_docker0 "$docker0_addrs"
    echo "$driver" >"$DATA_ROOT/.zun-storage-driver"
    log "extra dockerd $NAME pid $pid answers on $SOCK (bridge $BRIDGE 10.$n.0.1/24, storage $driver)"
    echo "unix://$SOCK"
}

kill_leftovers() {
    # If dockerd had to be SIGKILLed, its containerd, shims and containers survive it. Ours are
    # the processes in this engine's cgroup parent and those whose command line names its
    # exec-root (managed containerd, shims); nothing else is touched.
    local f p pid
    # (cgroup v1: the same process is listed once per hierarchy, hence sort -u)
    for pid in $(cat /sys/fs/cgroup/*/"zun-dockerd-$NAME"/*/cgroup.procs 2>/dev/null \
        | sort -un); do
        log "killing leftover container process $pid"
        kill -KILL "$pid" 2>/dev/null || true
    done
    # "[/]": the pattern must not match grep's own command line.
    for p in $(grep -l -a -E -- "$EXEC_ROOT[/]" /proc/[0-9]*/cmdline 2>/dev/null || true); do
        p=${p#/proc/}
        p=${p%/cmdline}
        [[ $p == "$$" ]] && continue
        log "killing leftover process $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
        kill -KILL "$p" 2>/dev/null || true
    done
    sleep 0.2
    for f in /sys/fs/cgroup/*/"zun-dockerd-$NAME"; do
        [[ -d $f ]] && find "$f" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
}

stop_extra() {
    check_name "$1"
    extra_paths "$1"
    take_lock "zun-dockerd-$NAME"
    stop_pidfile "$PIDFILE"
    kill_leftovers
    # Unmount whatever is left below its roots (overlay layers, netns files, shm), deepest first.
    local m n dev
    { findmnt -rn -o TARGET | grep -E "^($EXEC_ROOT|$DATA_ROOT)(/|$)" || true; } | sort -r \
        | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$EXEC_ROOT" "$DATA_ROOT" "$PIDFILE" "$SOCK" "$CONFIG"
    # Its bridge, the bridges of its user-defined networks (addresses in 10.N.128.0/17), and
    # its FORWARD rule.
    n=$({ ip -4 -o addr show dev "$BRIDGE" 2>/dev/null || true; } | awk '{print $4}' \
        | sed -n 's/^10\.\([0-9]*\)\.0\.1\/24$/\1/p' | head -1)
    if [[ -n $n ]]; then
        ip -4 -o addr show | awk -v pfx="10.$n." '$3 == "inet" && index($4, pfx) == 1 {print $2}' \
            | sort -u | while read -r dev; do
            [[ $dev == "$BRIDGE" || $dev == br-* ]] && ip link del "$dev" 2>/dev/null || true
        done
        while forward_rule -D "$n"; do :; done
    fi
    ip link del "$BRIDGE" 2>/dev/null || true
    log "extra engine $NAME stopped and its state removed (log kept: $LOGF)"
}

status() {
    local sock=$MAIN_SOCK
    if [[ -n ${1:-} ]]; then
        check_name "$1"
        extra_paths "$1"
        sock=$SOCK
    fi
    if answers "$sock"; then
        echo "unix://$sock"
    else
        log "nothing answers on $sock"
        return 1
    fi
}

[[ $(id -u) == 0 ]] || die "must run as root (dockerd, bridges, iptables)"
case "${1:-}" in
start) if [[ -n ${2:-} ]]; then start_extra "$2"; else start_main; fi ;;
stop) if [[ -n ${2:-} ]]; then stop_extra "$2"; else stop_main; fi ;;
status) status "${2:-}" ;;
sweep-veths) sweep_orphan_veths ;;
*)
    echo "usage: $0 start|stop|status [NAME] | sweep-veths" >&2
    exit 2
    ;;
esac
