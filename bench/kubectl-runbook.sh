#!/usr/bin/env bash
# The benchmark's baseline: the runbook a careful SRE writes with kubectl, following the
# csi-addons VolumeReplication procedure, moving applications one after the other from one site to
# the other. No sleeps but the short pause of a loop that waits for a condition kubectl wait
# cannot express (a sync stamped after the demotion).
#
#   KUBECTL=... FROM_KUBECONFIG=... TO_KUBECONFIG=... MODE=switchover|failover \
#     bench/kubectl-runbook.sh NAMESPACE...
#
# Each namespace holds StatefulSets whose claims have a VolumeReplication of the same name on both
# sites (primary on the source, secondary on the target, naming the source's volume handle).
# Prints one line per application: "<namespace> <milliseconds>".
set -euo pipefail

: "${KUBECTL:?set KUBECTL to the kubectl binary}"
: "${FROM_KUBECONFIG:?set FROM_KUBECONFIG}"
: "${TO_KUBECONFIG:?set TO_KUBECONFIG}"
MODE="${MODE:-switchover}"
TIMEOUT="${TIMEOUT:-300s}"
FORCE_ANNOTATION='replication.pivot.dev/force-promotion'

src() { "$KUBECTL" --kubeconfig "$FROM_KUBECONFIG" "$@"; }
dst() { "$KUBECTL" --kubeconfig "$TO_KUBECONFIG" "$@"; }

now_ms() { date +%s%3N; }

move() {
  local ns=$1 started claims sts since
  started=$(now_ms)
  claims=$(src -n "$ns" get volumereplications -o jsonpath='{.items[*].metadata.name}')
  # What runs on the source, to start the same on the target: "name=replicas ...".
  sts=$(src -n "$ns" get statefulsets -o jsonpath='{range .items[*]}{.metadata.name}={.spec.replicas} {end}')

  # 1. Stop the writers and wait until their pods are gone.
  src -n "$ns" scale statefulset --all --replicas=0 >/dev/null
  src -n "$ns" wait --for=delete pod --all --timeout="$TIMEOUT" >/dev/null

  # 2. Demote the source's volumes (best effort in a failover), and wait until the array has.
  since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for c in $claims; do
    src -n "$ns" patch volumereplication "$c" --type merge \
      -p '{"spec":{"replicationState":"secondary"}}' >/dev/null
  done
  if [[ $MODE == switchover ]]; then
    for c in $claims; do
      src -n "$ns" wait --for=jsonpath='{.status.state}'=Secondary "volumereplication/$c" \
        --timeout="$TIMEOUT" >/dev/null
    done
    # 3. The final sync: every replica has a sync stamped after the demotion (whole seconds).
    for c in $claims; do
      until [[ "$(dst -n "$ns" get volumereplication "$c" -o jsonpath='{.status.lastSyncTime}')" > "$since" ]]; do
        sleep 0.2
      done
    done
  fi

  # 4. Promote the target's volumes (forced in a failover) and wait until they are primary.
  for c in $claims; do
    if [[ $MODE == failover ]]; then
      dst -n "$ns" annotate --overwrite volumereplication "$c" "$FORCE_ANNOTATION=true" >/dev/null
    fi
    dst -n "$ns" patch volumereplication "$c" --type merge \
      -p '{"spec":{"replicationState":"primary"}}' >/dev/null
  done
  for c in $claims; do
    dst -n "$ns" wait --for=jsonpath='{.status.state}'=Primary "volumereplication/$c" \
      --timeout="$TIMEOUT" >/dev/null
  done

  # 5. Bind each claim on the target to the replica: a Retain PV on the source's volume handle,
  #    pre-bound to the claim, unless the claim is bound to it already (a move back).
  for c in $claims; do
    local pv handle bound
    pv=$(src -n "$ns" get pvc "$c" -o jsonpath='{.spec.volumeName}')
    handle=$(src get pv "$pv" -o jsonpath='{.spec.csi.volumeHandle}')
    bound=$(dst -n "$ns" get pvc "$c" -o jsonpath='{.spec.volumeName}' 2>/dev/null || true)
    if [[ -n $bound ]] && [[ "$(dst get pv "$bound" -o jsonpath='{.spec.csi.volumeHandle}')" == "$handle" ]]; then
      continue
    fi
    dst apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolume
metadata: { name: "sre-$ns-$c" }
spec:
  capacity: { storage: 1Gi }
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: sim-replicated
  csi: { driver: sim.csi.pivot.dev, volumeHandle: "$handle" }
  claimRef: { apiVersion: v1, kind: PersistentVolumeClaim, namespace: "$ns", name: "$c" }
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: { name: "$c", namespace: "$ns", labels: { app.kubernetes.io/part-of: "$ns" } }
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: sim-replicated
  volumeName: "sre-$ns-$c"
  resources: { requests: { storage: 1Gi } }
EOF
  done
  for c in $claims; do
    dst -n "$ns" wait --for=jsonpath='{.status.phase}'=Bound "pvc/$c" --timeout="$TIMEOUT" >/dev/null
  done

  # 6. Start the workloads on the target and wait until they are ready.
  for s in $sts; do
    dst -n "$ns" scale statefulset "${s%%=*}" --replicas="${s#*=}" >/dev/null
  done
  for s in $sts; do
    dst -n "$ns" rollout status statefulset "${s%%=*}" --timeout="$TIMEOUT" >/dev/null
  done
  echo "$ns $(( ($(now_ms) - started) ))"
}

for ns in "$@"; do move "$ns"; done
