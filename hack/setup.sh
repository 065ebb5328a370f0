#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks for running and testing Zun, idempotently:
# Debian packages (etcd, Docker, busybox for test images, haproxy for the load balancer image,
# prometheus for the observability e2e, git, docker-registry and apache2-utils for the
# registry test bed, runsc (gVisor) for the sandboxed runtime) and a virtualenv at .venv with
# the project and its test extras. With ZUN_VENV=DIR (hack/up.sh) that virtualenv is used as it is: nothing is
# created or installed into it, it only has to hold zun-controller.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in etcd-server etcd-client docker.io busybox-static haproxy iproute2 git openssl iptables prometheus docker-registry apache2-utils curl runsc; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ -n "${ZUN_VENV:-}" ]; then
  [ -x "$ZUN_VENV/bin/zun-controller" ] || { echo "setup: no $ZUN_VENV/bin/zun-controller" >&2; exit 1; }
  echo "setup: ready (the virtualenv $ZUN_VENV as it is)"
  exit 0
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.zun-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing the project and its test extras into .venv"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi
echo "setup: ready"
