#!/usr/bin/env bash
# Smoke check of the test control plane (scripts/test-cluster): starts one in a temporary
# directory (or DIR), runs the checks below against it, stops it, and prints
# "N passed, N failed". Exit 0 only if every check passed and no process was left behind.
#
#   tests/cluster/smoke.sh [DIR]
#
# Checks: kubectl get ns; the repo's CRD becomes Established; a ServiceAccount token is issued
# and RBAC denies that ServiceAccount secrets; helm lint --strict and helm install of
# charts/pchat-operator; kstatus on a created object and on a missing one; garbage collection of
# an owned object; namespace deletion completes; /version reports the pinned Kubernetes version;
# the audit log has entries; stop leaves no process.

set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TC="$ROOT/scripts/test-cluster"
DIR="${1:-$(mktemp -d /tmp/test-cluster-smoke.XXXXXX)}"
PASSED=0
FAILED=0

check() {
  local name="$1"
  shift
  local out
  if out="$("$@" 2>&1)"; then
    PASSED=$((PASSED + 1))
    printf 'ok   %s\n' "$name"
  else
    FAILED=$((FAILED + 1))
    printf 'FAIL %s\n%s\n' "$name" "$(printf '%s\n' "$out" | tail -n 20 | sed 's/^/     /')"
  fi
}

t0=$SECONDS
if ! "$TC" start "$DIR"; then
  echo "0 passed, 1 failed"
  exit 1
fi
echo "start took $((SECONDS - t0))s (build check included)"
trap '"$TC" stop "$DIR" >/dev/null 2>&1 || true' EXIT

export KUBECONFIG="$DIR/admin.kubeconfig"
K="$DIR/bin/kubectl"
H="$DIR/bin/helm"
S="$DIR/bin/kstatus"
KVER="$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$ROOT/tests/cluster/kube/go.mod")"

get_ns() { "$K" get ns default kube-system; }
crd_established() {
  "$K" apply -f "$ROOT/crds/persistentchatpool.yaml" &&
    "$K" wait --for=condition=Established --timeout=30s crd/persistentchatpools.persistentchat.io
}
sa_token() {
  "$K" create ns smoke-t1 && "$K" -n smoke-t1 create sa x &&
    [[ "$("$K" -n smoke-t1 create token x)" == *.*.* ]]
}
rbac_denies() {
  local answer
  answer="$("$K" auth can-i --as=system:serviceaccount:smoke-t1:x list secrets -n smoke-t1)"
  [[ "$answer" == no ]]
}
helm_lint() { "$H" lint --strict "$ROOT/charts/pchat-operator"; }
helm_install() {
  local st
  "$H" install smoke "$ROOT/charts/pchat-operator" -n smoke-t1 &&
    st="$("$H" status smoke -n smoke-t1)" && [[ "$st" == *"STATUS: deployed"* ]]
}
kstatus_current() {
  [[ "$("$S" crd/persistentchatpools.persistentchat.io | tail -n 1)" == Current ]] &&
    [[ "$("$S" -n smoke-t1 serviceaccounts/x | tail -n 1)" == Current ]]
}
kstatus_inprogress() {
  # No deployment controller runs: the chart's Deployment never reports ready replicas.
  [[ "$("$S" -n smoke-t1 deployment/smoke-pchat-operator | tail -n 1)" == InProgress ]]
}
kstatus_notfound() { [[ "$("$S" -n smoke-t1 configmap/nope | tail -n 1)" == NotFound ]]; }
garbage_collected() {
  local uid i
  "$K" -n smoke-t1 create configmap owner &&
    uid="$("$K" -n smoke-t1 get configmap owner -o jsonpath='{.metadata.uid}')" &&
    "$K" -n smoke-t1 apply -f - <<EOF &&
apiVersion: v1
kind: ConfigMap
metadata:
  name: dependent
  ownerReferences:
  - {apiVersion: v1, kind: ConfigMap, name: owner, uid: "$uid"}
EOF
    "$K" -n smoke-t1 delete configmap owner || return 1
  for ((i = 0; i < 120; i++)); do
    "$K" -n smoke-t1 get configmap dependent >/dev/null 2>&1 || return 0
    sleep 0.25
  done
  echo "configmap dependent still there 30s after its owner was deleted"
  return 1
}
ns_deleted() { "$K" delete ns smoke-t1 --timeout=60s && ! "$K" get ns smoke-t1; }
version_ok() {
  local server
  server="$(awk -F= '$1 == "TEST_CLUSTER_SERVER" { print $2 }' "$DIR/cluster.env")"
  local v
  v="$(curl -sf --cacert "$DIR/pki/ca.crt" "$server/version")" && [[ "$v" == *"\"gitVersion\": \"$KVER\""* ]]
}
audit_logged() { grep -q '"level":"Metadata"' "$DIR/audit.log"; }

check "kubectl get ns" get_ns
check "CRD crds/persistentchatpool.yaml is Established" crd_established
check "kubectl create token for a new ServiceAccount" sa_token
check "RBAC: that ServiceAccount may not list secrets" rbac_denies
check "helm lint --strict charts/pchat-operator" helm_lint
check "helm install charts/pchat-operator" helm_install
check "kstatus: Current" kstatus_current
check "kstatus: InProgress (Deployment, no controller)" kstatus_inprogress
check "kstatus: NotFound" kstatus_notfound
check "garbage collector deletes a dependent" garbage_collected
check "namespace deletion completes" ns_deleted
check "/version reports $KVER" version_ok
check "audit log has Metadata entries" audit_logged

trap - EXIT
pids="$(cat "$DIR"/*.pid 2>/dev/null | tr '\n' ' ')"
no_process_left() {
  "$TC" stop "$DIR" || return 1
  local pid
  for pid in $pids; do
    if kill -0 "$pid" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]; then
      echo "pid $pid still running"
      return 1
    fi
  done
}
check "stop leaves no process" no_process_left

echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
