#!/usr/bin/env bash
# A test bed image registry on loopback: Debian's docker-registry (distribution 2.8).
#
#   hack/registry.sh start NAME PORT [--tls] [--user USER --password PASS]
#   hack/registry.sh stop NAME
#   hack/registry.sh status NAME
#
# `start` serves on 127.0.0.1:PORT with its data, config, log and pidfile in
# ${ZUN_REGISTRY_ROOT:-/tmp/zun-registry}/NAME and prints `127.0.0.1:PORT`. Plain HTTP works as
# is (dockerd treats 127.0.0.0/8 registries as insecure). `--tls` makes a CA and a server
# certificate for 127.0.0.1 with openssl and makes every engine on this machine trust that CA
# for this host:port only (/etc/docker/certs.d/127.0.0.1:PORT/ca.crt, read by dockerd at each
# pull). `--user/--password` turn on htpasswd basic auth (bcrypt; needs --tls, as Docker sends
# credentials over TLS only to registries it does not treat as insecure). `stop` ends the
# registry and removes its state and its certs.d entry. Idempotent; bounded in time
# (ZUN_REGISTRY_WAIT, default 30 s). See docs/registry-testbed.md.
set -euo pipefail

ROOT=${ZUN_REGISTRY_ROOT:-/tmp/zun-registry}
WAIT=${ZUN_REGISTRY_WAIT:-30}
CERTS_D=${ZUN_DOCKER_CERTS_D:-/etc/docker/certs.d}

die() { echo "registry: $*" >&2; exit 1; }

ensure_packages() {
  local need=()
  command -v docker-registry >/dev/null || need+=(docker-registry)
  command -v htpasswd >/dev/null || need+=(apache2-utils)
  command -v openssl >/dev/null || need+=(openssl)
  command -v curl >/dev/null || need+=(curl)
  ((${#need[@]})) || return 0
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
}

make_certs() {  # dir
  local dir=$1
  [ -f "$dir/server.crt" ] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=zun-testbed-registry-ca" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$dir/ext.cnf"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 30 -extfile "$dir/ext.cnf" -out "$dir/server.crt" 2>/dev/null
}

write_config() {  # dir port tls auth
  local dir=$1 port=$2 tls=$3 auth=$4
  {
    echo "version: 0.1"
    echo "log: {level: info, accesslog: {disabled: false}}"
    echo "storage:"
    echo "  filesystem: {rootdirectory: $dir/data}"
    echo "  delete: {enabled: true}"
    echo "http:"
    echo "  addr: 127.0.0.1:$port"
    echo "  secret: zun-testbed-$port"
    if [ "$tls" = 1 ]; then
      echo "  tls: {certificate: $dir/server.crt, key: $dir/server.key}"
    fi
    if [ "$auth" = 1 ]; then
      echo "auth:"
      echo "  htpasswd: {realm: zun-testbed, path: $dir/htpasswd}"
    fi
  } >"$dir/config.yml"
}

alive() {  # dir
  [ -f "$1/pid" ] && kill -0 "$(cat "$1/pid")" 2>/dev/null
}

wait_ready() {  # dir port tls
  local dir=$1 port=$2 tls=$3 url deadline=$((SECONDS + WAIT))
  if [ "$tls" = 1 ]; then url="https://127.0.0.1:$port/v2/"; else url="http://127.0.0.1:$port/v2/"; fi
  until curl -s -o /dev/null --max-time 2 --cacert "$dir/ca.crt" "$url" 2>/dev/null \
      || curl -s -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    alive "$dir" || die "docker-registry exited: $(tail -5 "$dir/registry.log")"
    ((SECONDS < deadline)) || die "not answering on $url after ${WAIT}s"
    sleep 0.2
  done
}

start() {
  local name=$1 port=$2; shift 2
  local tls=0 user="" password=""
  while (($#)); do
    case $1 in
      --tls) tls=1; shift ;;
      --user) user=$2; shift 2 ;;
      --password) password=$2; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [[ $name =~ ^[a-z0-9][a-z0-9-]{0,30}$ ]] || die "bad name $name"
  [[ $port =~ ^[0-9]+$ ]] || die "bad port $port"
  local auth=0; [ -n "$user" ] && auth=1
  [ "$auth" = 0 ] || [ "$tls" = 1 ] || die "--user needs --tls"
  local dir=$ROOT/$name
  if alive "$dir"; then echo "127.0.0.1:$(cat "$dir/port")"; return 0; fi
  ensure_packages
  mkdir -p "$dir/data"
  echo "$port" >"$dir/port"
  if [ "$tls" = 1 ]; then
    make_certs "$dir"
    mkdir -p "$CERTS_D/127.0.0.1:$port"
    cp "$dir/ca.crt" "$CERTS_D/127.0.0.1:$port/ca.crt"
  fi
  [ "$auth" = 0 ] || htpasswd -Bbn "$user" "$password" >"$dir/htpasswd"
  write_config "$dir" "$port" "$tls" "$auth"
  setsid docker-registry serve "$dir/config.yml" </dev/null >>"$dir/registry.log" 2>&1 &
  echo $! >"$dir/pid"
  wait_ready "$dir" "$port" "$tls"
  echo "127.0.0.1:$port"
}

stop() {
  local name=$1 dir=$ROOT/$1
  [ -d "$dir" ] || return 0
  if alive "$dir"; then
    local pid; pid=$(cat "$dir/pid")
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  [ -f "$dir/port" ] && rm -rf "${CERTS_D:?}/127.0.0.1:$(cat "$dir/port")"
  rm -rf "$dir"
}

case ${1:-} in
  start) (($# >= 3)) || die "usage: start NAME PORT [--tls] [--user U --password P]"; shift; start "$@" ;;
  stop) (($# == 2)) || die "usage: stop NAME"; stop "$2" ;;
  status) alive "$ROOT/${2:?usage: status NAME}" && echo "127.0.0.1:$(cat "$ROOT/$2/port")" ;;
  *) die "usage: $0 start|stop|status NAME ..." ;;
esac
