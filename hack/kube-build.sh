#!/usr/bin/env bash
# Build (once) the binaries of a real Kubernetes control plane for the e2e test bed.
#
# Produces, outside the repository,
#   ${ZUN_CACHE:-$HOME/.cache/zun}/kube/<k8s-version>/bin/
#     kube-apiserver kube-controller-manager kube-scheduler kubectl kwok
#   ${ZUN_CACHE:-$HOME/.cache/zun}/kube/<k8s-version>/kwok-stages/*.yaml   (kwok's default Stages)
# built from the Go module proxy with the machine's Go toolchain (no binary downloads).
#
# k8s.io/kubernetes cannot be `go install`ed directly: its go.mod requires the staging modules
# (k8s.io/api, k8s.io/apiserver, ...) at v0.0.0 and replaces them with ./staging/... . We write a
# throwaway module that requires k8s.io/kubernetes vX.Y.Z and replaces each of those staging
# modules with its published v0.Y.Z (the list is read from k8s.io/kubernetes's own go.mod).
#
# Alternatives: when every needed binary is found in $KUBEBUILDER_ASSETS or on $PATH, nothing is
# built; symlinks to them go into ${ZUN_CACHE}/kube/external/bin instead.
#
# Idempotent: a stamp file makes a second run a fast no-op. Progress goes to stderr; the last
# (only) line on stdout is the bin directory, so callers can do `bin=$(hack/kube-build.sh)`.
#
# Environment:
#   ZUN_CACHE          cache root (default $HOME/.cache/zun)
#   ZUN_K8S_VERSION    k8s.io/kubernetes version (default below)
#   ZUN_KWOK_VERSION   sigs.k8s.io/kwok version (default below)
#   GO                 go command (default: go on PATH, else /usr/local/go/bin/go)
#   ZUN_KUBE_FORCE_BUILD=1  ignore binaries on PATH / KUBEBUILDER_ASSETS
#   ZUN_KUBE_GOCACHE   temp (default: a throwaway build cache) | default (Go's own) | a directory
set -euo pipefail

# v1.37.2: newest k8s.io/kubernetes on the proxy; its go.mod says `go 1.26.0` (Go 1.26 meets it).
# kube-apiserver 1.37 runs on Debian's etcd 3.4.23: for etcd < 3.4.31 it only switches off what
# needs RequestWatchProgress; hack/kube-up.sh then turns the WatchList gate off (see
# docs/kubernetes-testbed.md).
K8S_VERSION="${ZUN_K8S_VERSION:-v1.37.2}"
# v0.8.0: newest kwok release; its go.mod says `go 1.26.0`.
KWOK_VERSION="${ZUN_KWOK_VERSION:-v0.8.0}"

CACHE="${ZUN_CACHE:-$HOME/.cache/zun}"
KUBE_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
ALL_BINS=("${KUBE_BINS[@]}" kwok)

log() { printf '[kube-build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# kwok has no built-in behaviour: its Stage documents (node initialize, lease heartbeat, pod ready,
# complete, delete) are the ones kwokctl embeds, read here from the kwok module in the Go module
# cache (downloaded from the proxy) and kept next to the binaries.
KWOK_STAGE_FILES=(
  node/fast/node-initialize.yaml
  node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
  pod/fast/pod-ready.yaml
  pod/fast/pod-complete.yaml
  pod/fast/pod-delete.yaml
)

find_go() {
  if [[ -n "${GO:-}" ]]; then :
  elif command -v go >/dev/null 2>&1; then GO="$(command -v go)"
  elif [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go
  else die "no Go toolchain found (set GO=/path/to/go)"
  fi
}

fetch_kwok_stages() { # dest-dir
  local dest="$1" dir f
  find_go
  dir="$(cd "${TMPDIR:-/tmp}" && GOTOOLCHAIN=local GOFLAGS=-mod=mod "$GO" mod download -json \
    "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -d "$dir/kustomize/stage" ]] || die "no kustomize/stage in sigs.k8s.io/kwok@$KWOK_VERSION"
  mkdir -p "$dest"
  for f in "${KWOK_STAGE_FILES[@]}"; do
    cp "$dir/kustomize/stage/$f" "$dest/$(basename "$f")"
    chmod 644 "$dest/$(basename "$f")"
  done
}

stages_ok() { # dir
  local f
  for f in "${KWOK_STAGE_FILES[@]}"; do [[ -s "$1/$(basename "$f")" ]] || return 1; done
}

# --- 1. binaries already provided? -----------------------------------------------------------
find_external() { # name -> path or nothing
  local name="$1"
  if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "${KUBEBUILDER_ASSETS}/${name}" ]]; then
    printf '%s\n' "${KUBEBUILDER_ASSETS}/${name}"
    return 0
  fi
  command -v "$name" 2>/dev/null || true
}

if [[ "${ZUN_KUBE_FORCE_BUILD:-0}" != 1 ]]; then
  found=()
  for b in "${ALL_BINS[@]}"; do
    p="$(find_external "$b")"
    [[ -n "$p" ]] || break
    found+=("$b=$p")
  done
  if [[ ${#found[@]} -eq ${#ALL_BINS[@]} ]]; then
    ext="$CACHE/kube/external/bin"
    mkdir -p "$ext"
    for kv in "${found[@]}"; do
      ln -sfn "$(readlink -f "${kv#*=}")" "$ext/${kv%%=*}"
    done
    stages_ok "$CACHE/kube/external/kwok-stages" || fetch_kwok_stages "$CACHE/kube/external/kwok-stages"
    log "using binaries found in KUBEBUILDER_ASSETS/PATH (linked into $ext); nothing to build"
    printf '%s\n' "$ext"
    exit 0
  fi
fi

# --- 2. cached build? -------------------------------------------------------------------------
ROOT="$CACHE/kube/$K8S_VERSION"
BIN="$ROOT/bin"
STAMP="$ROOT/.stamp"

find_go
GO_VERSION="$(GOTOOLCHAIN=local "$GO" env GOVERSION)"
WANT_STAMP="k8s=$K8S_VERSION kwok=$KWOK_VERSION go=$GO_VERSION"

stamp_ok() {
  [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT_STAMP" ]] || return 1
  local b
  for b in "${ALL_BINS[@]}"; do [[ -x "$BIN/$b" ]] || return 1; done
  stages_ok "$ROOT/kwok-stages"
}

if stamp_ok; then
  log "up to date: $BIN ($WANT_STAMP)"
  printf '%s\n' "$BIN"
  exit 0
fi

mkdir -p "$ROOT"
exec 9>"$ROOT/.lock"
log "taking the build lock $ROOT/.lock"
flock 9
if stamp_ok; then # someone else built it while we waited
  log "up to date: $BIN ($WANT_STAMP)"
  printf '%s\n' "$BIN"
  exit 0
fi

# Never let the go command download another toolchain: the machine's Go must meet the go lines.
export GOTOOLCHAIN=local
export CGO_ENABLED=0
NICE=(nice -n 10)
START=$SECONDS
log "building k8s $K8S_VERSION and kwok $KWOK_VERSION with $GO_VERSION into $BIN (about 6 minutes on 2 vCPUs)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/zun-kube-build.XXXXXX")"
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
# Compiling k8s fills ~4.4 GB of Go build cache that nothing reuses once the binaries exist: by
# default it goes to a temporary GOCACHE removed after the build. ZUN_KUBE_GOCACHE=default keeps
# Go's own cache (a rebuild then takes ~20 s instead of minutes); any other value is a directory.
case "${ZUN_KUBE_GOCACHE:-temp}" in
  temp) export GOCACHE="$WORK/gocache" ;;
  default) ;;
  *) export GOCACHE="$ZUN_KUBE_GOCACHE" ;;
esac
log "GOCACHE=$(GOTOOLCHAIN=local "$GO" env GOCACHE), GOMODCACHE=$(GOTOOLCHAIN=local "$GO" env GOMODCACHE)"
STAGE="$WORK/bin"
mkdir -p "$STAGE"

# --- 3. the throwaway module for k8s.io/kubernetes --------------------------------------------
MOD="$WORK/mod"
mkdir -p "$MOD"
log "reading k8s.io/kubernetes@$K8S_VERSION go.mod from the module proxy"
KMOD_FILE="$(cd "$MOD" && "$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
  | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
[[ -f "$KMOD_FILE" ]] || die "could not fetch go.mod of k8s.io/kubernetes@$K8S_VERSION"

KGO="$(awk '$1=="go"{print $2; exit}' "$KMOD_FILE")"
log "k8s.io/kubernetes@$K8S_VERSION wants go $KGO; we have $GO_VERSION"
# sort -V: the machine's version must be >= the go line.
if [[ "$(printf '%s\n%s\n' "$KGO" "${GO_VERSION#go}" | sort -V | head -1)" != "$KGO" ]]; then
  die "k8s.io/kubernetes@$K8S_VERSION needs go $KGO; pick an older ZUN_K8S_VERSION"
fi

# Staging modules = replace targets starting with ./staging that the module requires at v0.0.0.
mapfile -t STAGING < <(awk '
  $1 == "replace" && $2 == "(" { block = "replace"; next }
  $1 == "require" && $2 == "(" { block = "require"; next }
  $1 == ")" { block = ""; next }
  block == "replace" && $2 == "=>" && $3 ~ /^\.\/staging\// { rep[$1] = 1 }
  $1 == "replace" && $3 == "=>" && $4 ~ /^\.\/staging\// { rep[$2] = 1 }
  block == "require" && $2 == "v0.0.0" { req[$1] = 1 }
  $1 == "require" && $3 == "v0.0.0" { req[$2] = 1 }
  END { for (m in rep) if (m in req) print m }
' "$KMOD_FILE" | sort)
[[ ${#STAGING[@]} -gt 0 ]] || die "found no staging modules in $KMOD_FILE"
STAGING_VERSION="v0${K8S_VERSION#v1}" # v1.37.2 -> v0.37.2
log "replacing ${#STAGING[@]} staging modules with their published $STAGING_VERSION"

{
  printf 'module zun.local/kubebuild\n\ngo %s\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' \
    "$KGO" "$K8S_VERSION"
  for m in "${STAGING[@]}"; do printf '\t%s => %s %s\n' "$m" "$m" "$STAGING_VERSION"; done
  printf ')\n'
} >"$MOD/go.mod"

MAJOR="${K8S_VERSION#v}"; MAJOR="${MAJOR%%.*}"
MINOR="${K8S_VERSION#v*.}"; MINOR="${MINOR%%.*}"
BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$MAJOR -X $pkg.gitMinor=$MINOR"
  LDFLAGS+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$BUILD_DATE"
done

T0=$SECONDS
log "go build ${KUBE_BINS[*]} (this is the long part)"
PKGS=()
for b in "${KUBE_BINS[@]}"; do PKGS+=("k8s.io/kubernetes/cmd/$b"); done
(cd "$MOD" && "${NICE[@]}" "$GO" build -mod=mod -trimpath -ldflags "$LDFLAGS" -o "$STAGE/" "${PKGS[@]}") \
  || die "go build of k8s.io/kubernetes@$K8S_VERSION failed"
log "k8s binaries built in $((SECONDS - T0)) s"

# --- 4. kwok (its go.mod has no replace lines: go install works) ------------------------------
T0=$SECONDS
log "go install sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
(cd "$WORK" && GOBIN="$STAGE" "${NICE[@]}" "$GO" install -trimpath \
  -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
  "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION") || die "go install kwok@$KWOK_VERSION failed"
log "kwok built in $((SECONDS - T0)) s"
fetch_kwok_stages "$WORK/kwok-stages"

# --- 5. publish and stamp ---------------------------------------------------------------------
mkdir -p "$BIN"
for b in "${ALL_BINS[@]}"; do
  [[ -x "$STAGE/$b" ]] || die "missing $STAGE/$b after build"
  mv -f "$STAGE/$b" "$BIN/$b"
done
rm -rf "$ROOT/kwok-stages"
mv "$WORK/kwok-stages" "$ROOT/kwok-stages"
"$BIN/kubectl" version --client >&2 || true
printf '%s\n' "$WANT_STAMP" >"$STAMP"
log "done in $((SECONDS - START)) s; cache $(du -sh "$ROOT" | cut -f1) in $ROOT"
printf '%s\n' "$BIN"
