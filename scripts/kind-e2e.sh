#!/usr/bin/env bash
# End-to-end smoke check of pchat-operator on a throw-away kind cluster, without SQL Server.
#
# NOT RUN where it was written: that machine has no Docker. It is for users who have Docker,
# kind (or k3d: set E2E_CLUSTER_TOOL=k3d), kubectl and helm on their PATH.
#
# What it does:
#   1. creates a cluster (kind or k3d) named $CLUSTER;
#   2. builds the image from the root Dockerfile and loads it into the cluster;
#   3. helm-installs charts/pchat-operator (which installs the CRD) into $NAMESPACE, with
#      PodSecurity `restricted` enforced on that namespace;
#   4. checks the CRD is served, the operator Deployment is Available and one replica holds the
#      Lease;
#   5. applies a pool whose SQL instances do not exist (and its Secret) and waits until the
#      operator reports a status for it: observedGeneration set, a Ready condition, every
#      instance unreachable;
#   6. applies a pool without its Secret and waits for Stalled with reason SecretNotFound.
# It proves the image starts, the chart's RBAC and pod security are accepted, and the operator
# reads, reports and writes status on a real API server. It proves nothing about SQL Server.
#
# Usage: scripts/kind-e2e.sh            (KEEP_CLUSTER=1 keeps the cluster afterwards)

set -euo pipefail

CLUSTER="${CLUSTER:-pchat-e2e}"
NAMESPACE="${NAMESPACE:-pchat-system}"
POOL_NAMESPACE="${POOL_NAMESPACE:-chat}"
IMAGE="${IMAGE:-pchat-operator:e2e}"
TOOL="${E2E_CLUSTER_TOOL:-kind}"
TIMEOUT="${TIMEOUT:-300}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is not on PATH"
}

cleanup() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    log "operator logs (last 100 lines):"
    kubectl -n "$NAMESPACE" logs -l app.kubernetes.io/name=pchat-operator --tail=100 --prefix 2>/dev/null || true
    kubectl get pcpool -A -o yaml 2>/dev/null || true
  fi
  if [[ "${KEEP_CLUSTER:-0}" != "1" ]]; then
    log "deleting cluster $CLUSTER"
    if [[ "$TOOL" == "k3d" ]]; then
      k3d cluster delete "$CLUSTER" >/dev/null 2>&1 || true
    else
      kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    fi
  fi
  exit "$rc"
}

# wait_for DESCRIPTION COMMAND...: run COMMAND every 2 s until it succeeds or TIMEOUT passes.
wait_for() {
  local what=$1
  shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      die "timed out after ${TIMEOUT}s waiting for: $what"
    fi
    sleep 2
  done
  log "ok: $what"
}

jsonpath() {
  # jsonpath KIND NAME NAMESPACE EXPR
  kubectl -n "$3" get "$1" "$2" -o "jsonpath=$4"
}

status_reported() {
  local gen observed
  gen=$(jsonpath pcpool "$1" "$POOL_NAMESPACE" '{.metadata.generation}')
  observed=$(jsonpath pcpool "$1" "$POOL_NAMESPACE" '{.status.observedGeneration}')
  [[ -n "$observed" && "$observed" == "$gen" ]] || return 1
  [[ -n "$(jsonpath pcpool "$1" "$POOL_NAMESPACE" '{.status.conditions[?(@.type=="Ready")].status}')" ]]
}

all_instances_unreachable() {
  local reachable
  reachable=$(jsonpath pcpool "$1" "$POOL_NAMESPACE" '{.status.instances[*].reachable}')
  [[ -n "$reachable" && "$reachable" != *true* ]]
}

stalled_with() {
  # stalled_with POOL REASON
  [[ "$(jsonpath pcpool "$1" "$POOL_NAMESPACE" '{.status.conditions[?(@.type=="Stalled")].status}')" == "True" ]] &&
    [[ "$(jsonpath pcpool "$1" "$POOL_NAMESPACE" '{.status.conditions[?(@.type=="Stalled")].reason}')" == "$2" ]]
}

one_leader() {
  [[ -n "$(jsonpath lease pchat-operator "$NAMESPACE" '{.spec.holderIdentity}')" ]]
}

# A pool whose instances resolve nowhere (.invalid never resolves, RFC 6761): every instance
# is unreachable, so the operator observes, plans nothing it could send, and reports.
pool_manifest() {
  # pool_manifest NAME SECRET
  sed -e "s/^  name: atl-cs-001$/  name: $1/" \
      -e "s/litwareinc\.com/e2e.invalid/g" \
      -e "s/sqlCredentialsSecret: pchat-sql/sqlCredentialsSecret: $2/" \
      "$ROOT/examples/pool.yaml"
}

main() {
  need docker
  need kubectl
  need helm
  need "$TOOL"
  trap cleanup EXIT

  log "creating $TOOL cluster $CLUSTER"
  if [[ "$TOOL" == "k3d" ]]; then
    k3d cluster create "$CLUSTER" --wait
  else
    kind create cluster --name "$CLUSTER" --wait 120s
  fi

  log "building $IMAGE"
  docker build -t "$IMAGE" "$ROOT"
  if [[ "$TOOL" == "k3d" ]]; then
    k3d image import "$IMAGE" --cluster "$CLUSTER"
  else
    kind load docker-image "$IMAGE" --name "$CLUSTER"
  fi

  kubectl create namespace "$NAMESPACE"
  kubectl label namespace "$NAMESPACE" pod-security.kubernetes.io/enforce=restricted
  kubectl create namespace "$POOL_NAMESPACE"

  log "installing the chart"
  helm install pchat-operator "$ROOT/charts/pchat-operator" \
    --namespace "$NAMESPACE" \
    --set image.repository="${IMAGE%:*}" \
    --set image.tag="${IMAGE##*:}" \
    --set image.pullPolicy=Never \
    --set logFormat=plain \
    --wait --timeout "${TIMEOUT}s"

  wait_for "CRD persistentchatpools.persistentchat.io established" \
    kubectl wait --for=condition=Established crd/persistentchatpools.persistentchat.io --timeout=5s
  wait_for "kubectl serves pcpool" kubectl get pcpool -A
  wait_for "operator Deployment Available" \
    kubectl -n "$NAMESPACE" wait --for=condition=Available deployment -l app.kubernetes.io/name=pchat-operator --timeout=5s
  wait_for "a replica holds the Lease" one_leader

  log "pool with unreachable instances"
  kubectl -n "$POOL_NAMESPACE" create secret generic e2e-sql \
    --from-literal=username=e2e --from-literal=password=not-used-no-sql-here
  pool_manifest e2e-unreachable e2e-sql | kubectl -n "$POOL_NAMESPACE" apply -f -
  wait_for "status of e2e-unreachable reported for its generation" status_reported e2e-unreachable
  wait_for "every instance of e2e-unreachable reported unreachable" all_instances_unreachable e2e-unreachable
  kubectl -n "$POOL_NAMESPACE" get pcpool e2e-unreachable

  log "pool without its Secret"
  pool_manifest e2e-no-secret e2e-missing | kubectl -n "$POOL_NAMESPACE" apply -f -
  wait_for "e2e-no-secret Stalled with SecretNotFound" stalled_with e2e-no-secret SecretNotFound

  log "all checks passed"
}

main "$@"
