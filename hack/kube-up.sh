#!/usr/bin/env bash
# Start / stop a real Kubernetes control plane on loopback for the e2e tests.
#
#   hack/kube-up.sh start DIR   # etcd + kube-apiserver + kube-controller-manager + kube-scheduler
#                               # + kwok (fake nodes, pods become Running/Ready without a kubelet);
#                               # writes DIR/kubeconfig; returns once /readyz is ok and nodes are Ready
#   hack/kube-up.sh stop DIR    # stops everything started in DIR (pids in DIR/pids/)
#   hack/kube-up.sh status DIR  # exit 0 when every component runs
#
# Everything listens on 127.0.0.1 only, on free ports. Logs: DIR/*.log. The binaries come from the
# cache filled by hack/kube-build.sh (or $KUBE_BIN_DIR); etcd is Debian's /usr/bin/etcd (or $ETCD),
# run with its own data dir DIR/etcd-data: it is not the Zun store's etcd.
#
# Environment:
#   KUBE_BIN_DIR        directory with kube-apiserver, kube-controller-manager, kube-scheduler,
#                       kubectl, kwok (default: whatever hack/kube-build.sh prints)
#   ZUN_KWOK_STAGES     directory of kwok Stage YAML files (default: $KUBE_BIN_DIR/../kwok-stages)
#   ETCD                etcd binary (default: etcd on PATH, else /usr/bin/etcd)
#   ZUN_KUBE_NODES      number of fake nodes (default 2)
#   ZUN_KUBE_NODE_CPU / ZUN_KUBE_NODE_MEMORY / ZUN_KUBE_NODE_PODS  capacity of each (32 / 256Gi / 110)
#   ZUN_KUBE_TIMEOUT    seconds to wait for readiness (default 120)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

log() { printf '[kube-up %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }

[[ $# -eq 2 ]] || usage
CMD="$1"
mkdir -p "$2"
DIR="$(cd "$2" && pwd)"
PIDS="$DIR/pids"

# ---------------------------------------------------------------------------------------------
# process bookkeeping

pid_alive() { # name -> 0 if the recorded process still runs (and is still ours)
  local f="$PIDS/$1.pid" pid exe running
  [[ -f "$f" ]] || return 1
  read -r pid exe <"$f" || return 1
  [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
  # guard against pid reuse: the process must still run the binary we started (which a rebuild
  # may have replaced on disk meanwhile: then the link reads "<path> (deleted)")
  running="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
  [[ "$running" == "$exe" || "$running" == "$exe (deleted)" ]]
}

stop_one() { # name
  local name="$1" f="$PIDS/$1.pid" pid exe i
  [[ -f "$f" ]] || return 0
  if pid_alive "$name"; then
    read -r pid exe <"$f"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do # up to 10 s
      pid_alive "$name" || break
      sleep 0.1
    done
    if pid_alive "$name"; then
      log "$name ($pid) did not stop on SIGTERM; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do pid_alive "$name" || break; sleep 0.1; done
    fi
    log "stopped $name ($pid)"
  fi
  rm -f "$f"
}

stop_all() {
  local i
  # reverse start order: kwok, scheduler, controller-manager, apiserver, etcd
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do stop_one "${COMPONENTS[$i]}"; done
}

launch() { # name binary args... ; stdin/stdout/stderr never tie up the caller's pipes
  local name="$1" bin="$2"
  shift 2
  "$bin" "$@" </dev/null >"$DIR/$name.log" 2>&1 &
  local pid=$!
  printf '%s %s\n' "$pid" "$(readlink -f "$bin")" >"$PIDS/$name.pid"
  log "started $name (pid $pid, log $DIR/$name.log)"
}

free_ports() { # n -> n distinct free TCP ports on 127.0.0.1
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

wait_for() { # description timeout-seconds command...
  local what="$1" timeout="$2" deadline
  shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    check_alive || return 1
    sleep 0.5
  done
  log "$what: ok ($((SECONDS - T_START)) s since start)"
}

check_alive() { # every started component must still run
  local name
  for name in "${COMPONENTS[@]}"; do
    if [[ -f "$PIDS/$name.pid" ]] && ! pid_alive "$name"; then
      log "$name exited; last lines of $DIR/$name.log:"
      tail -n 25 "$DIR/$name.log" >&2 || true
      return 1
    fi
  done
}

# ---------------------------------------------------------------------------------------------
# certificates (openssl): one CA; apiserver serving cert; admin client cert; SA signing key

gen_certs() {
  local pki="$DIR/pki"
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj "/CN=zun-testbed-ca" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null

    cat >apiserver.ext <<EOF
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:${SERVICE_IP},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
      -subj "/CN=kube-apiserver" 2>/dev/null
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out apiserver.crt -days 3650 -extfile apiserver.ext 2>/dev/null

    cat >client.ext <<EOF
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF
    # O=system:masters: bound to cluster-admin by the default RBAC policy
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr \
      -subj "/O=system:masters/CN=kubernetes-admin" 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out admin.crt -days 3650 -extfile client.ext 2>/dev/null

    # front proxy (aggregation layer / requestheader authentication), as kubeadm sets it up
    openssl req -x509 -newkey rsa:2048 -nodes -keyout front-proxy-ca.key -out front-proxy-ca.crt \
      -days 3650 -subj "/CN=zun-testbed-front-proxy-ca" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout front-proxy-client.key -out front-proxy-client.csr \
      -subj "/CN=front-proxy-client" 2>/dev/null
    openssl x509 -req -in front-proxy-client.csr -CA front-proxy-ca.crt -CAkey front-proxy-ca.key \
      -CAcreateserial -out front-proxy-client.crt -days 3650 -extfile client.ext 2>/dev/null

    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    chmod 600 ./*.key
  )
}

write_kubeconfig() { # path
  local b64ca b64crt b64key
  b64ca="$(base64 -w0 <"$DIR/pki/ca.crt")"
  b64crt="$(base64 -w0 <"$DIR/pki/admin.crt")"
  b64key="$(base64 -w0 <"$DIR/pki/admin.key")"
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: zun-testbed
  cluster:
    server: https://127.0.0.1:${API_PORT}
    certificate-authority-data: ${b64ca}
users:
- name: admin
  user:
    client-certificate-data: ${b64crt}
    client-key-data: ${b64key}
contexts:
- name: zun-testbed
  context:
    cluster: zun-testbed
    user: admin
current-context: zun-testbed
EOF
  chmod 600 "$1"
}

node_manifests() {
  local i
  for ((i = 0; i < NODES; i++)); do
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    type: kwok
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    node-role.kubernetes.io/agent: ""
status:
  allocatable: {cpu: "$NODE_CPU", memory: "$NODE_MEMORY", pods: "$NODE_PODS"}
  capacity: {cpu: "$NODE_CPU", memory: "$NODE_MEMORY", pods: "$NODE_PODS"}
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
    kubeletVersion: fake
    kubeProxyVersion: fake
EOF
  done
}

# ---------------------------------------------------------------------------------------------

start() {
  T_START=$SECONDS
  mkdir -p "$PIDS"
  local name
  for name in "${COMPONENTS[@]}"; do
    pid_alive "$name" && die "$name already runs from $DIR; run '$0 stop $DIR' first"
  done
  rm -f "$PIDS"/*.pid

  local bin="${KUBE_BIN_DIR:-}"
  [[ -n "$bin" ]] || bin="$("$HERE/kube-build.sh" | tail -n 1)"
  local b
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl kwok; do
    [[ -x "$bin/$b" ]] || die "$bin/$b missing: run hack/kube-build.sh"
  done
  compgen -G "${ZUN_KWOK_STAGES:-$bin/../kwok-stages}/*.yaml" >/dev/null ||
    die "no kwok Stage files in ${ZUN_KWOK_STAGES:-$bin/../kwok-stages}: run hack/kube-build.sh"
  local etcd="${ETCD:-$(command -v etcd || echo /usr/bin/etcd)}"
  [[ -x "$etcd" ]] || die "no etcd binary (install etcd-server or set ETCD)"
  KUBECTL="$bin/kubectl"

  NODES="${ZUN_KUBE_NODES:-2}"
  NODE_CPU="${ZUN_KUBE_NODE_CPU:-32}"
  NODE_MEMORY="${ZUN_KUBE_NODE_MEMORY:-256Gi}"
  NODE_PODS="${ZUN_KUBE_NODE_PODS:-110}"
  local timeout="${ZUN_KUBE_TIMEOUT:-120}"
  # Fake address ranges: nothing routes them and no test may connect to them (kwok invents pod
  # IPs; there is no kube-proxy). Only 127.0.0.1 ever receives traffic.
  local service_cidr=10.96.0.0/16 pod_cidr=10.244.0.0/16
  SERVICE_IP=10.96.0.1

  read -r ETCD_PORT ETCD_PEER_PORT API_PORT KCM_PORT SCHED_PORT KWOK_PORT <<<"$(free_ports 6)"

  # cleanup on any failure from here on
  trap 'rc=$?; if ((rc != 0)); then log "start failed; stopping what was started"; stop_all; fi' EXIT

  gen_certs
  local kubeconfig="$DIR/kubeconfig"
  write_kubeconfig "$kubeconfig"
  local pki="$DIR/pki"

  rm -rf "$DIR/etcd-data"
  launch etcd "$etcd" \
    --name zun-kube-testbed \
    --data-dir "$DIR/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "zun-kube-testbed=http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster-state new \
    --logger zap --log-level warn
  wait_for "etcd http://127.0.0.1:$ETCD_PORT/health" 30 \
    curl -sf "http://127.0.0.1:$ETCD_PORT/health"

  mkdir -p "$DIR/apiserver"
  # WatchList=false: etcd 3.4.23 lacks RequestWatchProgress (needs >= 3.4.31), so the apiserver
  # cannot serve streaming lists; with the gate on it still accepts them and then ends every such
  # watch with an error, and older client-go (kwok's v0.36) retries with backoff instead of
  # falling back to LIST+WATCH: kwok then saw changes only every ~30 s. With the gate off the
  # request is refused up front and every client falls back at once.
  launch kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 \
    --advertise-address 127.0.0.1 \
    --secure-port "$API_PORT" \
    --cert-dir "$DIR/apiserver" \
    --tls-cert-file "$pki/apiserver.crt" \
    --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --requestheader-client-ca-file "$pki/front-proxy-ca.crt" \
    --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User \
    --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$pki/front-proxy-client.crt" \
    --proxy-client-key-file "$pki/front-proxy-client.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range "$service_cidr" \
    --authorization-mode RBAC \
    --allow-privileged=true \
    --feature-gates WatchList=false \
    --endpoint-reconciler-type none \
    --kubelet-preferred-address-types InternalIP \
    --profiling=false \
    --v 1
  local curl_auth=(--cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key")
  wait_for "kube-apiserver https://127.0.0.1:$API_PORT/readyz" "$timeout" \
    curl -sf "${curl_auth[@]}" "https://127.0.0.1:$API_PORT/readyz"

  mkdir -p "$DIR/controller-manager" "$DIR/scheduler"
  launch kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$kubeconfig" \
    --authentication-kubeconfig "$kubeconfig" \
    --authorization-kubeconfig "$kubeconfig" \
    --bind-address 127.0.0.1 \
    --secure-port "$KCM_PORT" \
    --cert-dir "$DIR/controller-manager" \
    --leader-elect=false \
    --service-account-private-key-file "$pki/sa.key" \
    --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" \
    --cluster-signing-key-file "$pki/ca.key" \
    --service-cluster-ip-range "$service_cidr" \
    --cluster-cidr "$pod_cidr" \
    --allocate-node-cidrs=false \
    --profiling=false \
    --v 1
  launch kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig "$kubeconfig" \
    --authentication-kubeconfig "$kubeconfig" \
    --authorization-kubeconfig "$kubeconfig" \
    --bind-address 127.0.0.1 \
    --secure-port "$SCHED_PORT" \
    --cert-dir "$DIR/scheduler" \
    --leader-elect=false \
    --profiling=false \
    --v 1
  # Our own config file (so a ~/.kwok/kwok.yaml of the user does not leak in) holding the Stages
  # kwokctl would use: node initialize + lease heartbeat, pod ready / complete / delete.
  local stages="${ZUN_KWOK_STAGES:-$bin/../kwok-stages}" f
  for f in "$stages"/*.yaml; do printf -- '---\n'; cat "$f"; done >"$DIR/kwok.yaml"
  launch kwok "$bin/kwok" \
    --config "$DIR/kwok.yaml" \
    --kubeconfig "$kubeconfig" \
    --manage-all-nodes=true \
    --node-ip 127.0.0.1 \
    --cidr "$pod_cidr" \
    --server-address "127.0.0.1:$KWOK_PORT" \
    --node-lease-duration-seconds 40 \
    -v INFO

  node_manifests | "$KUBECTL" --kubeconfig "$kubeconfig" apply -f - >&2
  wait_for "kube-controller-manager /healthz" "$timeout" \
    curl -skf "https://127.0.0.1:$KCM_PORT/healthz"
  wait_for "kube-scheduler /healthz" "$timeout" \
    curl -skf "https://127.0.0.1:$SCHED_PORT/healthz"
  wait_for "$NODES node(s) Ready" "$timeout" nodes_ready "$kubeconfig"
  # the ServiceAccount admission plugin rejects pods until the namespace's default SA exists
  wait_for "serviceaccount default/default" "$timeout" \
    "$KUBECTL" --kubeconfig "$kubeconfig" -n default get serviceaccount default

  cat >"$DIR/env" <<EOF
KUBECONFIG=$kubeconfig
KUBECTL=$KUBECTL
KUBE_APISERVER=https://127.0.0.1:$API_PORT
ETCD_ENDPOINT=http://127.0.0.1:$ETCD_PORT
EOF
  trap - EXIT
  log "control plane up in $((SECONDS - T_START)) s: KUBECONFIG=$kubeconfig"
}

nodes_ready() { # kubeconfig -> 0 when NODES nodes report Ready=True
  local n
  n="$("$KUBECTL" --kubeconfig "$1" get nodes -o \
    jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    grep -c '^True$')" || return 1
  ((n >= NODES))
}

status() {
  local name rc=0
  for name in "${COMPONENTS[@]}"; do
    if pid_alive "$name"; then echo "$name: running ($(cut -d' ' -f1 "$PIDS/$name.pid"))"
    else echo "$name: not running"; rc=1
    fi
  done
  return $rc
}

case "$CMD" in
  start) start ;;
  stop) stop_all ;;
  status) status ;;
  *) usage ;;
esac
