#!/usr/bin/env bash
# Builds the controller image with no registry: a local Python base (hack/python-base.sh,
# made once), the dependencies' wheels fetched on this machine by pip into a wheelhouse, and
# `docker build` of the Dockerfile with BASE set to that base.
#   hack/build-image.sh [image]        (default zun-controller:dev; BASE=... to choose a base)
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${1:-zun-controller:dev}
BASE=${BASE:-zun-local/python:3.11}
PIP=${PIP:-.venv/bin/pip}
docker image inspect "$BASE" >/dev/null 2>&1 || hack/python-base.sh "$BASE" >/dev/null

CTX=$(mktemp -d)
trap 'rm -rf "$CTX"' EXIT
cp -a pyproject.toml README.md zun_controller Dockerfile .dockerignore "$CTX/"
"$PIP" wheel -q --wheel-dir "$CTX/wheelhouse" "$CTX" "setuptools>=69" wheel
rm -f "$CTX"/wheelhouse/zun_controller-*.whl  # the image builds its own
docker build -q --build-arg "BASE=$BASE" -t "$IMAGE" "$CTX" >/dev/null
echo "$IMAGE"
