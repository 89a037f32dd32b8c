#!/usr/bin/env bash
# Creates the local kind cluster `tunepipe` with Kubeflow Pipelines standalone and tunepipe's
# manifests (k8s/overlays/kind), ready for the kind test tier. Safe to re-run: an existing cluster
# is reused and the manifests are re-applied.
#
# Usage:  bash k8s/kind/create-cluster.sh        (from any folder)
# Needs:  docker, kind and kubectl on PATH; network access to GitHub (KFP's manifests) and to the
#         image registries KFP pulls from; the project image built locally as tunepipe:<VERSION>.
# Env:    PIPELINE_VERSION  Kubeflow Pipelines release to install (default 2.14.3)
#         VERSION           tag of the local tunepipe image (default: tunepipe.__version__)
#         PYTHON            interpreter that has tunepipe installed (default: .venv/bin/python)
set -euo pipefail

CLUSTER_NAME=tunepipe
PIPELINE_VERSION=${PIPELINE_VERSION:-2.14.3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not on PATH" >&2; exit 1; }
done

if [[ -z "${VERSION:-}" ]]; then
  PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
  [[ -x "$PYTHON" ]] || PYTHON=python3
  VERSION=$("$PYTHON" -c 'import tunepipe; print(tunepipe.__version__)')
fi
IMAGE="tunepipe:$VERSION"
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "error: image $IMAGE is not in the local Docker engine; build the project image first" >&2
  exit 1
fi

# 1. The cluster (kind points the current kubectl context at it; every command below names it anyway).
clusters=$(kind get clusters 2>/dev/null)
if grep -qx "$CLUSTER_NAME" <<<"$clusters"; then
  echo "kind cluster $CLUSTER_NAME exists; reusing it"
else
  kind create cluster --name "$CLUSTER_NAME" --config k8s/kind/kind-config.yaml
fi
KUBECTL=(kubectl --context "kind-$CLUSTER_NAME")

# 2. Kubeflow Pipelines standalone, pinned (https://www.kubeflow.org/docs/components/pipelines/operator-guides/installation/).
echo "installing Kubeflow Pipelines $PIPELINE_VERSION"
"${KUBECTL[@]}" apply -k "github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=$PIPELINE_VERSION"
"${KUBECTL[@]}" wait --for condition=established --timeout=60s crd/applications.app.k8s.io
"${KUBECTL[@]}" apply -k "github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=$PIPELINE_VERSION"
echo "waiting for Kubeflow Pipelines to come up (first time: image pulls, up to 15 minutes)"
"${KUBECTL[@]}" wait --for=condition=available --timeout=15m deployment --all -n kubeflow

# 3. The project image: kind nodes cannot see the local Docker engine's images until loaded.
kind load docker-image "$IMAGE" --name "$CLUSTER_NAME"

# 4. tunepipe's manifests. Jobs are immutable, so the smoke check is replaced, then awaited.
"${KUBECTL[@]}" delete job tunepipe-smoke-check -n kubeflow --ignore-not-found
"${KUBECTL[@]}" apply -k k8s/overlays/kind
if ! "${KUBECTL[@]}" wait --for=condition=complete --timeout=5m job/tunepipe-smoke-check -n kubeflow; then
  echo "error: the smoke check did not complete; its log:" >&2
  "${KUBECTL[@]}" logs -n kubeflow job/tunepipe-smoke-check >&2 || true
  exit 1
fi
"${KUBECTL[@]}" logs -n kubeflow job/tunepipe-smoke-check

cat <<MSG

Kubeflow Pipelines $PIPELINE_VERSION is running on kind cluster $CLUSTER_NAME with image $IMAGE loaded.
Reach the UI and API (keep this running in another terminal):
  kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80
Then open http://localhost:8080, or run the kind tests:
  TUNEPIPE_KFP_HOST=http://localhost:8080 .venv/bin/python -m pytest -m kind
Remove everything with: bash k8s/kind/delete-cluster.sh
MSG
