#!/usr/bin/env bash
# tunepipe's local Kubernetes: a real control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler) on 127.0.0.1, built from the Go module proxy at pinned versions, with kwok playing
# the nodes. `make cluster-up` / `make cluster-down` call this script; k8s/README.md ("Local
# Kubernetes cluster") says what is real and what is simulated.
#
#   cluster.sh up       build what the cache lacks, start everything, wait until ready, print the kubeconfig
#   cluster.sh down     stop every process `up` started and delete the etcd data (certificates and logs stay)
#   cluster.sh status   which processes run
#   cluster.sh build    only build (or find in the cache) the binaries; prints their paths
#   cluster.sh crds     install the pinned upstream CRDs (Kubeflow Trainer, KServe, Argo Workflows, KFP)
#                       into the cluster KUBECONFIG names, leaving CRDs that already exist alone
#
# Settings (environment):
#   TUNEPIPE_CLUSTER_CACHE  binaries by version (default ${XDG_CACHE_HOME:-$HOME/.cache}/tunepipe/cluster)
#   TUNEPIPE_CLUSTER_STATE  certificates, kubeconfigs, etcd data, logs, pids (default <repo>/runs/cluster)
#   TUNEPIPE_CLUSTER_API_PORT (16443), _ETCD_PORT (12379), _KCM_PORT (10257), _SCHEDULER_PORT (10259),
#   _KWOK_PORT (10247): ports on 127.0.0.1
#   GO                      the go command (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

# ---- pinned versions (k8s/README.md says why each) ----
K8S_VERSION=v1.35.8        # k8s.io/kubernetes; its staging modules are k8s.io/* v0.35.8 (kube/go.mod)
ETCD_VERSION=v3.6.16       # go.etcd.io/etcd/server/v3 (etcd/go.mod)
KWOK_VERSION=v0.8.0        # sigs.k8s.io/kwok (kwok/go.mod)
# Upstream manifests the `crds` command installs: module@version, then the files inside the module.
TRAINER_MODULE=github.com/kubeflow/trainer/v2@v2.3.0
KSERVE_MODULE=github.com/kserve/kserve@v0.20.0
ARGO_MODULE=github.com/argoproj/argo-workflows/v3@v3.6.7          # the Argo release KFP 2.14.3 installs
KFP_MODULE=github.com/kubeflow/pipelines@v0.0.0-20250902140602-fc3214d4b4d3  # git tag 2.14.3

CACHE=${TUNEPIPE_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tunepipe/cluster}
STATE=${TUNEPIPE_CLUSTER_STATE:-$REPO/runs/cluster}
API_PORT=${TUNEPIPE_CLUSTER_API_PORT:-16443}
ETCD_PORT=${TUNEPIPE_CLUSTER_ETCD_PORT:-12379}
ETCD_PEER_PORT=$((ETCD_PORT + 1))
KCM_PORT=${TUNEPIPE_CLUSTER_KCM_PORT:-10257}
SCHEDULER_PORT=${TUNEPIPE_CLUSTER_SCHEDULER_PORT:-10259}
KWOK_PORT=${TUNEPIPE_CLUSTER_KWOK_PORT:-10247}
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1       # the `kubernetes` Service: first address of SERVICE_CIDR
KWOK_NODE=kwok-node-0
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)  # start order
READY_TIMEOUT_S=${TUNEPIPE_CLUSTER_READY_TIMEOUT_S:-120}

PKI=$STATE/pki
LOGS=$STATE/logs
PIDS=$STATE/pids
KUBECONFIG_ADMIN=$STATE/admin.kubeconfig

say() { echo "cluster: $*" >&2; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
seconds_since() { local ms=$(( $(now_ms) - $1 )); printf '%d.%d' $(( ms / 1000 )) $(( ms % 1000 / 100 )); }
die() { say "$*"; exit 1; }

go_cmd() {
    if [[ -n ${GO:-} ]]; then echo "$GO"
    elif command -v go >/dev/null; then command -v go
    elif [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go
    else die "no Go toolchain (go on PATH, /usr/local/go/bin/go or GO=...): needed to build the cluster's binaries"
    fi
}

# ---- building, cached by version ----

# The cache key of a recipe: the pinned version plus a hash of the recipe's files, the Go release
# and the build flags, so an edited recipe or another toolchain builds anew instead of reusing.
cache_dir() {  # name version recipe-dir flags...
    local name=$1 version=$2 recipe=$3; shift 3
    local hash
    hash=$( { cat "$recipe"/go.mod "$recipe"/go.sum "$recipe"/*.go 2>/dev/null; "$(go_cmd)" version; echo "$*"; } \
        | sha256sum | cut -c1-10)
    echo "$CACHE/$name-$version-$hash"
}

# Builds package `pkg` of the recipe module into <cache dir>/<out> unless it is there already.
build_one() {  # name version recipe-dir pkg out ldflags
    local name=$1 version=$2 recipe=$3 pkg=$4 out=$5 ldflags=$6
    local dir
    dir=$(cache_dir "$name" "$version" "$recipe" "$pkg" "$ldflags")
    if [[ -x $dir/$out ]]; then
        echo "$dir/$out"
        return
    fi
    say "building $name $version (not in $CACHE yet; see k8s/README.md for how long a cold build takes)"
    local go started tmp
    go=$(go_cmd)
    started=$(date +%s)
    tmp=$(mktemp -d "$CACHE/.build-$name.XXXXXX")
    # -mod=readonly: the recipe's go.sum pins every module; nothing is resolved anew.
    if ! (cd "$recipe" && CGO_ENABLED=0 GOFLAGS=-mod=readonly nice -n "${TUNEPIPE_CLUSTER_NICE:-10}" \
            "$go" build -trimpath -ldflags "$ldflags" -o "$tmp/$out" "$pkg") >"$tmp/build.log" 2>&1; then
        tail -n 40 "$tmp/build.log" >&2
        die "building $name failed (log above; full log $tmp/build.log)"
    fi
    rm -rf "$dir"
    mv "$tmp" "$dir"
    say "built $name $version in $(( $(date +%s) - started )) s: $dir/$out"
    echo "$dir/$out"
}

# Where the go command keeps a module's source (downloaded from the proxy and checked against go.sum's
# checksum database when not yet there).
module_dir() {  # module@version
    local json
    json=$(cd "$CACHE" && GOFLAGS=-mod=mod "$(go_cmd)" mod download -json "$1") \
        || die "go mod download $1 failed: $json"
    sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' <<<"$json"
}

kube_ldflags() {
    local flags="-s -w" pkg minor=${K8S_VERSION#v1.}
    minor=${minor%%.*}
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=archive"
    done
    echo "$flags"
}

build_all() {
    mkdir -p "$CACHE"
    grep -q "k8s.io/kubernetes $K8S_VERSION\$" "$HERE/kube/go.mod" \
        || die "K8S_VERSION $K8S_VERSION differs from kube/go.mod; update both together"
    KUBE_BIN=$(build_one kube "$K8S_VERSION" "$HERE/kube" . kube "$(kube_ldflags)")
    ETCD_BIN=$(build_one etcd "$ETCD_VERSION" "$HERE/etcd" go.etcd.io/etcd/server/v3 etcd "-s -w")
    KWOK_BIN=$(build_one kwok "$KWOK_VERSION" "$HERE/kwok" sigs.k8s.io/kwok/cmd/kwok kwok "-s -w")
    # kwok's own Stages (what a simulated node and pod go through), from the pinned module: nodes
    # become Ready and renew their lease; pods become Running and go when deleted. kwok's
    # pod-complete Stage is left out on purpose: a simulated container never exits, so a Job's pods
    # stay Running as a stuck pod would (the job controller's activeDeadlineSeconds then acts on them).
    KWOK_STAGES=$(dirname "$KWOK_BIN")/stages.yaml
    if [[ ! -s $KWOK_STAGES ]]; then
        local src
        src=$(module_dir "sigs.k8s.io/kwok@$KWOK_VERSION")/kustomize/stage
        { for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
                   pod/fast/pod-ready.yaml pod/fast/pod-delete.yaml; do
              echo "---"; cat "$src/$f"; done; } >"$KWOK_STAGES.tmp"
        mv "$KWOK_STAGES.tmp" "$KWOK_STAGES"
    fi
}

# ---- certificates and kubeconfigs (openssl; one CA for everything, all on 127.0.0.1) ----

cert() {  # name subject [extensions]
    local name=$1 subject=$2 ext=${3:-}
    [[ -s $PKI/$name.crt ]] && return
    openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
    openssl req -new -key "$PKI/$name.key" -subj "$subject" -out "$PKI/$name.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" "$ext" >"$PKI/$name.ext"
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
        -days 365 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
    rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

kubeconfig() {  # file user-cert
    local file=$1 user=$2
    [[ -s $file ]] && return
    local ca crt key
    ca=$(base64 -w0 <"$PKI/ca.crt"); crt=$(base64 -w0 <"$PKI/$user.crt"); key=$(base64 -w0 <"$PKI/$user.key")
    cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: tunepipe-local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $ca
users:
- name: $user
  user:
    client-certificate-data: $crt
    client-key-data: $key
contexts:
- name: tunepipe-local
  context:
    cluster: tunepipe-local
    user: $user
current-context: tunepipe-local
EOF
    chmod 600 "$file.tmp"
    mv "$file.tmp" "$file"
}

make_pki() {
    mkdir -p "$PKI"
    chmod 700 "$PKI"
    if [[ ! -s $PKI/ca.crt ]]; then
        openssl genrsa -out "$PKI/ca.key" 2048 2>/dev/null
        openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=tunepipe-local-ca" -days 365 -sha256 \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
            -out "$PKI/ca.crt" 2>/dev/null
    fi
    local server="extendedKeyUsage=serverAuth" client="extendedKeyUsage=clientAuth"
    cert etcd-server "/CN=etcd" "$server,clientAuth
subjectAltName=IP:127.0.0.1,DNS:localhost"
    cert apiserver "/CN=kube-apiserver" "$server
subjectAltName=IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    cert apiserver-etcd-client "/CN=kube-apiserver-etcd-client" "$client"
    # the API server's client identity towards kubelets (a later stage adds a real one); a kubelet with
    # webhook authorization asks the API server about it, so it needs a group RBAC knows here
    cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
    cert admin "/O=system:masters/CN=tunepipe-admin" "$client"
    # the front proxy (request-header authentication, what aggregated API servers trust): its own CA
    if [[ ! -s $PKI/front-proxy-ca.crt ]]; then
        openssl genrsa -out "$PKI/front-proxy-ca.key" 2048 2>/dev/null
        openssl req -x509 -new -key "$PKI/front-proxy-ca.key" -subj "/CN=tunepipe-local-front-proxy-ca" -days 365 \
            -sha256 -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -out "$PKI/front-proxy-ca.crt" 2>/dev/null
    fi
    if [[ ! -s $PKI/front-proxy-client.crt ]]; then
        openssl genrsa -out "$PKI/front-proxy-client.key" 2048 2>/dev/null
        openssl req -new -key "$PKI/front-proxy-client.key" -subj "/CN=front-proxy-client" 2>/dev/null \
            | openssl x509 -req -CA "$PKI/front-proxy-ca.crt" -CAkey "$PKI/front-proxy-ca.key" -CAcreateserial \
                -days 365 -sha256 -extfile <(echo "extendedKeyUsage=clientAuth") -out "$PKI/front-proxy-client.crt" 2>/dev/null
    fi
    cert controller-manager "/CN=system:kube-controller-manager" "$client"
    cert scheduler "/CN=system:kube-scheduler" "$client"
    cert kwok "/O=system:masters/CN=kwok-controller" "$client"
    # service-account tokens: the API server signs with sa.key, verifies with sa.pub
    [[ -s $PKI/sa.key ]] || { openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null; openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null; }
    kubeconfig "$KUBECONFIG_ADMIN" admin
    kubeconfig "$STATE/controller-manager.kubeconfig" controller-manager
    kubeconfig "$STATE/scheduler.kubeconfig" scheduler
    kubeconfig "$STATE/kwok.kubeconfig" kwok
}

# ---- processes ----

pid_of() {  # component -> its pid while that process still runs the binary it was started with
    local file=$PIDS/$1.pid pid binary
    [[ -s $file ]] || return 0
    read -r pid binary <"$file"
    if [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$binary" ]]; then
        echo "$pid"
    fi
}

command_of() {  # component -> the array CMD
    local c=$1
    case $c in
    etcd)
        CMD=("$ETCD_BIN" --name=tunepipe --data-dir="$STATE/etcd" \
            --listen-client-urls="https://127.0.0.1:$ETCD_PORT" --advertise-client-urls="https://127.0.0.1:$ETCD_PORT" \
            --listen-peer-urls="https://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="https://127.0.0.1:$ETCD_PEER_PORT" \
            --initial-cluster="tunepipe=https://127.0.0.1:$ETCD_PEER_PORT" \
            --cert-file="$PKI/etcd-server.crt" --key-file="$PKI/etcd-server.key" \
            --client-cert-auth --trusted-ca-file="$PKI/ca.crt" \
            --peer-cert-file="$PKI/etcd-server.crt" --peer-key-file="$PKI/etcd-server.key" \
            --peer-client-cert-auth --peer-trusted-ca-file="$PKI/ca.crt" \
            --listen-metrics-urls="http://127.0.0.1:$((ETCD_PORT + 2))" \
            --quota-backend-bytes=2147483648 --log-level=warn)
        ;;
    kube-apiserver)
        # --endpoint-reconciler-type=none: the `kubernetes` Service would point at 127.0.0.1, which the
        # API refuses as an endpoint (loopback); nothing here reaches the API through that Service yet.
        # shellcheck disable=SC2054  # the commas belong to --authorization-mode=Node,RBAC etc.
        CMD=("$KUBE_BIN" kube-apiserver
            --advertise-address=127.0.0.1 --bind-address=127.0.0.1 --secure-port="$API_PORT" \
            --etcd-servers="https://127.0.0.1:$ETCD_PORT" --etcd-cafile="$PKI/ca.crt" \
            --etcd-certfile="$PKI/apiserver-etcd-client.crt" --etcd-keyfile="$PKI/apiserver-etcd-client.key" \
            --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
            --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
            --authorization-mode=Node,RBAC \
            --enable-admission-plugins=NodeRestriction,PodSecurity \
            --service-account-issuer=https://kubernetes.default.svc.cluster.local \
            --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
            --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
            --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
            --requestheader-extra-headers-prefix=X-Remote-Extra- \
            --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
            --service-cluster-ip-range="$SERVICE_CIDR" --allow-privileged=true --profiling=false \
            --endpoint-reconciler-type=none)
        ;;
    kube-controller-manager)
        CMD=("$KUBE_BIN" kube-controller-manager
            --kubeconfig="$STATE/controller-manager.kubeconfig" \
            --authentication-kubeconfig="$STATE/controller-manager.kubeconfig" \
            --authorization-kubeconfig="$STATE/controller-manager.kubeconfig" \
            --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
            --use-service-account-credentials=true --controllers='*' \
            --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
            --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
            --flex-volume-plugin-dir="$STATE/flexvolume" --profiling=false)
        ;;
    kube-scheduler)
        CMD=("$KUBE_BIN" kube-scheduler
            --kubeconfig="$STATE/scheduler.kubeconfig" \
            --authentication-kubeconfig="$STATE/scheduler.kubeconfig" \
            --authorization-kubeconfig="$STATE/scheduler.kubeconfig" \
            --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --leader-elect=false --profiling=false)
        ;;
    kwok)
        CMD=("$KWOK_BIN" --config="$KWOK_STAGES" --kubeconfig="$STATE/kwok.kubeconfig" \
            --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
            --node-lease-duration-seconds=40 --cidr=10.244.0.0/16 --node-ip=127.0.0.1 \
            --server-address="127.0.0.1:$KWOK_PORT")
        ;;
    esac
}

start() {  # component
    local c=$1 CMD=()
    command_of "$c"
    echo "${CMD[*]}" >"$LOGS/$c.log"
    setsid nohup "${CMD[@]}" >>"$LOGS/$c.log" 2>&1 </dev/null &
    echo "$! $(readlink -f "${CMD[0]}")" >"$PIDS/$c.pid"
}

fail_with_log() {  # component message
    say "$2"
    say "last lines of $LOGS/$1.log:"
    tail -n 30 "$LOGS/$1.log" >&2 || true
    stop_all >/dev/null 2>&1 || true
    exit 1
}

wait_for() {  # component check-command...
    local c=$1; shift
    local deadline=$(( $(date +%s) + READY_TIMEOUT_S ))
    until "$@" >/dev/null 2>&1; do
        [[ -n $(pid_of "$c") ]] || fail_with_log "$c" "$c exited while starting"
        (( $(date +%s) < deadline )) || fail_with_log "$c" "$c not ready after ${READY_TIMEOUT_S} s"
        sleep 0.5
    done
}

kubectl_admin() { kubectl --kubeconfig="$KUBECONFIG_ADMIN" "$@"; }

https_ok() {  # url [curl args]
    local url=$1; shift
    curl -fsS --max-time 5 "$@" "$url"
}

kwok_node() {
    kubectl_admin apply --server-side --field-manager=tunepipe-cluster -f - <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $KWOK_NODE
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: $KWOK_NODE
    kubernetes.io/os: linux
    type: kwok
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110", nvidia.com/gpu: "4"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110", nvidia.com/gpu: "4"}
EOF
}

node_ready() {
    [[ $(kubectl_admin get node "$KWOK_NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}') == True ]]
}

service_accounts_ready() {  # the token and service-account controllers have done their first pass
    kubectl_admin get serviceaccount default -n default && kubectl_admin get configmap kube-root-ca.crt -n default
}

up() {
    local running=() stopped=() c
    for c in "${COMPONENTS[@]}"; do
        if [[ -n $(pid_of "$c") ]]; then running+=("$c"); else stopped+=("$c"); fi
    done
    if (( ${#running[@]} == ${#COMPONENTS[@]} )); then
        say "already running (nothing done); kubeconfig: $KUBECONFIG_ADMIN"
        echo "$KUBECONFIG_ADMIN"
        return
    fi
    if (( ${#running[@]} )); then
        die "partly running (${running[*]} up, ${stopped[*]} down): run \`make cluster-down\` first"
    fi
    command -v kubectl >/dev/null || die "kubectl not found on PATH"
    local started built
    started=$(now_ms)
    build_all
    built=$(now_ms)
    mkdir -p "$LOGS" "$PIDS"
    make_pki
    rm -rf "$STATE/etcd"
    local curl_client=(--cacert "$PKI/ca.crt" --cert "$PKI/apiserver-etcd-client.crt" --key "$PKI/apiserver-etcd-client.key")
    start etcd
    wait_for etcd https_ok "https://127.0.0.1:$ETCD_PORT/health" "${curl_client[@]}"
    start kube-apiserver
    wait_for kube-apiserver https_ok "https://127.0.0.1:$API_PORT/readyz" --cacert "$PKI/ca.crt"
    start kube-controller-manager
    start kube-scheduler
    start kwok
    # the components serve /healthz with self-signed certificates of their own: -k for the local check
    wait_for kube-controller-manager https_ok "https://127.0.0.1:$KCM_PORT/healthz" -k
    wait_for kube-scheduler https_ok "https://127.0.0.1:$SCHEDULER_PORT/healthz" -k
    wait_for kwok https_ok "http://127.0.0.1:$KWOK_PORT/healthz"
    wait_for kube-apiserver kwok_node
    wait_for kwok node_ready
    wait_for kube-controller-manager service_accounts_ready
    say "ready: Kubernetes $K8S_VERSION (etcd $ETCD_VERSION, kwok $KWOK_VERSION, node $KWOK_NODE simulated by kwok)" \
        "in $(seconds_since "$built") s, after $(( (built - started) / 1000 )) s finding or building the binaries"
    say "logs in $LOGS; stop with \`make cluster-down\`"
    say "run the kube tier: TUNEPIPE_KUBECONFIG=$KUBECONFIG_ADMIN .venv/bin/python -m pytest -m kube"
    say "kubeconfig: $KUBECONFIG_ADMIN"
    echo "$KUBECONFIG_ADMIN"
}

stop_all() {
    local c pid i left=()
    for (( i=${#COMPONENTS[@]}-1; i>=0; i-- )); do
        c=${COMPONENTS[i]}
        pid=$(pid_of "$c")
        if [[ -n $pid ]]; then kill -TERM "$pid" 2>/dev/null || true; fi
        # wait for it to go before stopping what it depends on (the API server before etcd)
        for _ in $(seq 1 100); do
            [[ -n $(pid_of "$c") ]] || break
            sleep 0.1
        done
        pid=$(pid_of "$c")
        if [[ -n $pid ]]; then
            say "$c (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
        [[ -n $(pid_of "$c") ]] && left+=("$c")
        rm -f "$PIDS/$c.pid"
    done
    (( ${#left[@]} == 0 )) || die "still running: ${left[*]}"
}

down() {
    local any=0 c
    for c in "${COMPONENTS[@]}"; do [[ -n $(pid_of "$c") ]] && any=1; done
    stop_all
    rm -rf "$STATE/etcd"
    if (( any )); then say "stopped; etcd data deleted (certificates, kubeconfigs and logs stay in $STATE)"
    else say "nothing was running"; fi
}

status() {
    local c pid rc=0
    for c in "${COMPONENTS[@]}"; do
        pid=$(pid_of "$c")
        if [[ -n $pid ]]; then echo "$c running (pid $pid)"; else echo "$c stopped"; rc=3; fi
    done
    [[ -s $KUBECONFIG_ADMIN ]] && echo "kubeconfig: $KUBECONFIG_ADMIN"
    return $rc
}

# ---- upstream CRDs ----

crds() {
    command -v kubectl >/dev/null || die "kubectl not found on PATH"
    mkdir -p "$CACHE"
    local trainer kserve argo kfp
    trainer=$(module_dir "$TRAINER_MODULE"); kserve=$(module_dir "$KSERVE_MODULE")
    argo=$(module_dir "$ARGO_MODULE"); kfp=$(module_dir "$KFP_MODULE")
    local files=(
        "$trainer/manifests/base/crds/trainer.kubeflow.org_trainjobs.yaml"
        "$trainer/manifests/base/crds/trainer.kubeflow.org_trainingruntimes.yaml"
        "$trainer/manifests/base/crds/trainer.kubeflow.org_clustertrainingruntimes.yaml"
        "$kserve/config/crd/full/serving.kserve.io_inferenceservices.yaml"
        "$kserve/config/crd/full/serving.kserve.io_servingruntimes.yaml"
        "$kserve/config/crd/full/serving.kserve.io_clusterservingruntimes.yaml"
        "$kfp/manifests/kustomize/base/crds/pipelines.kubeflow.org_pipelines.yaml"
        "$kfp/manifests/kustomize/base/crds/pipelines.kubeflow.org_pipelineversions.yaml"
        "$kfp/manifests/kustomize/base/pipeline/cluster-scoped/scheduled-workflow-crd.yaml"
        "$kfp/manifests/kustomize/base/pipeline/cluster-scoped/viewer-crd.yaml"
    )
    local f
    for f in "$argo"/manifests/base/crds/minimal/argoproj.io_*.yaml; do files+=("$f"); done
    local name installed=() kept=()
    for f in "${files[@]}"; do
        [[ -s $f ]] || die "no $f in the pinned module: has its layout changed?"
        name=$(kubectl create --dry-run=client -f "$f" -o jsonpath='{.metadata.name}')
        if kubectl get crd "$name" >/dev/null 2>&1; then kept+=("$name"); continue; fi
        kubectl apply --server-side --field-manager=tunepipe-cluster -f "$f" >/dev/null
        installed+=("$name")
    done
    if (( ${#installed[@]} )); then
        kubectl wait --for=condition=Established --timeout=60s "${installed[@]/#/crd/}" >/dev/null
    fi
    # Trainer's built-in JAX runtime, which tunepipe's TrainJobs name
    if ! kubectl get clustertrainingruntime jax-distributed >/dev/null 2>&1; then
        kubectl apply --server-side --field-manager=tunepipe-cluster \
            -f "$trainer/manifests/base/runtimes/jax_distributed.yaml" >/dev/null
        installed+=("clustertrainingruntime/jax-distributed")
    fi
    say "installed ${#installed[@]}: ${installed[*]:-none}"
    say "already there, left alone: ${kept[*]:-none}"
    say "from $TRAINER_MODULE $KSERVE_MODULE $ARGO_MODULE $KFP_MODULE"
}

case ${1:-} in
up) up ;;
down) down ;;
status) status ;;
build) build_all; printf '%s\n' "$KUBE_BIN" "$ETCD_BIN" "$KWOK_BIN" "$KWOK_STAGES" ;;
crds) crds ;;
*) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
