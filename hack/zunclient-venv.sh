#!/usr/bin/env bash
# Makes .venv-zunclient: OpenStack's own clients (python-zunclient, python-openstackclient) from
# PyPI in a virtualenv of their own, so their many dependencies stay out of .venv. The e2e test
# of the Zun v1 API (tests/e2e/test_zunv1_e2e.py) drives the server with them. Idempotent;
# prints the venv's bin directory.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${ZUNCLIENT_VENV:-.venv-zunclient}
PY=${PYTHON:-python3}
stamp="$VENV/.zunclient-installed"
if [ ! -f "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q --upgrade pip >&2
  "$VENV/bin/pip" install -q python-zunclient python-openstackclient >&2
  touch "$stamp"
fi
echo "$(cd "$VENV/bin" && pwd)"
