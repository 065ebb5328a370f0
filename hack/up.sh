#!/usr/bin/env bash
# Run the product on this machine: install what is missing, start the main Docker engine when
# none answers, build the local images the README's examples use, then the all-in-one
# `zun-controller up` (embedded etcd, manager and endpoints on 127.0.0.1). Arguments go to `up`.
#
#   ZUN_VENV=DIR   run that virtualenv's zun-controller as it is (default .venv, which
#                  hack/setup.sh makes and keeps installed)
#
# Docker: when `up` is to use the default engine (neither DOCKER_HOST nor --docker names
# another) and none answers there, hack/dockerd.sh starts it; there may be no init system to do
# it (docs/docker-testbed.md). Another engine is the caller's to run. hack/images.sh then builds
# zun-test/httpd:v1 (the README's Container) and zun-test/haproxy:2.6 (the default balancer of
# docker Clusters) into the engine `up` uses; when they are up to date it only compares hashes.
# Progress goes to stderr; stdout is `up`'s own (the `export ZUN_URL=... ZUN_TOKEN=...` line).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${ZUN_VENV:-.venv}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

engine=${DOCKER_HOST:-unix:///var/run/docker.sock}
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --docker=*) engine=${args[i]#--docker=} ;;
    --docker) engine=${args[i + 1]:-$engine} ;;
  esac
done

hack/setup.sh >&2
case $engine in
  unix:///var/run/docker.sock | unix:///run/docker.sock)
    $SUDO hack/dockerd.sh start >/dev/null
    ;;
esac
$SUDO env DOCKER_HOST="$engine" hack/images.sh
exec "$VENV/bin/zun-controller" up "$@"
