#!/usr/bin/env bash
# Run the product on this machine: install what is missing, then the all-in-one
# `zun-controller up` (embedded etcd, manager and endpoints on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
hack/setup.sh >&2
exec .venv/bin/zun-controller up "$@"
