#!/usr/bin/env bash
# Deletes the kind cluster `tunepipe` made by create-cluster.sh (with Kubeflow Pipelines and every
# run's artifacts in its MinIO). Does nothing if it does not exist.
# Usage: bash k8s/kind/delete-cluster.sh
set -euo pipefail

CLUSTER_NAME=tunepipe

command -v kind >/dev/null || { echo "error: kind is not on PATH" >&2; exit 1; }
clusters=$(kind get clusters 2>/dev/null)
if grep -qx "$CLUSTER_NAME" <<<"$clusters"; then
  kind delete cluster --name "$CLUSTER_NAME"
else
  echo "no kind cluster named $CLUSTER_NAME; nothing to delete"
fi
