/**
 * Claim steps: describe the application's replicated volumes on the source, and bind the replicas
 * to their claims on the target through PVs that point at the replica's volume handle, with
 * reclaim policy Retain and the source's access modes, pre-bound both ways (claimRef and
 * volumeName). Stale or conflicting objects are detected: a claim already bound to another volume
 * stops the step; a Released PV of the same volume gets its old claim reference cleared.
 */
import { heartbeat } from '@temporalio/activity';
import type * as k8s from '@kubernetes/client-node';
import { isNotFound, mergePatch, type SiteApi } from '../common/k8s.ts';
import { sleep } from '../common/wait.ts';
import { observeSite, type SiteSnapshot } from '../planner/live-state.ts';
import { resolveVolumes } from '../planner/resolve.ts';
import type { Runbook } from '../runbook/types.ts';
import type { Witness } from '../witness/witness.ts';
import { FAILURE, failure } from './failures.ts';
import { guardEpoch } from './guard.ts';
import type { StepContext, VolumeSpec } from './types.ts';

/** The PV Pivot creates on a target for a claim's replica. */
export function replicaPvName(v: { namespace: string; claim: string }): string {
  return `pivot-${v.namespace}-${v.claim}`.slice(0, 253);
}

/** The runbook's replicated volumes in a snapshot of `site`, as a target needs them to bind replicas. */
export function volumeSpecs(runbook: Runbook, snapshot: SiteSnapshot, site: string): VolumeSpec[] {
  const volumes = resolveVolumes(runbook, { takenAt: Date.now(), sites: { [site]: snapshot } }, site);
  return volumes.map((v) => {
    if (!v.pv?.volumeHandle || !v.pv.driver) {
      throw failure(
        FAILURE.precondition,
        site,
        `PersistentVolumeClaim ${v.namespace}/${v.claim}`,
        'the claim is not bound to a CSI volume',
        'bind the claim, or remove it from the runbook',
      );
    }
    const claim = snapshot.claims.find((c) => c.namespace === v.namespace && c.name === v.claim);
    return {
      namespace: v.namespace,
      claim: v.claim,
      labels: claim?.labels ?? {},
      volumeHandle: v.pv.volumeHandle,
      driver: v.pv.driver,
      accessModes: v.accessModes,
      storage: v.requestedStorage ?? '1Gi',
      storageClassName: v.storageClassName ?? '',
      volumeMode: 'Filesystem',
    };
  });
}

export function createClaimActivities(api: SiteApi, witness: Witness, pollMs = 500) {
  return {
    /** The runbook's replicated volumes as they stand on this (the source) site. */
    async describeVolumes(runbook: Runbook): Promise<VolumeSpec[]> {
      const snapshot = await observeSite(api, runbook.spec.namespaces);
      if (!snapshot.reachable) {
        throw failure(
          FAILURE.unreachable,
          api.site,
          'Kubernetes API',
          snapshot.error ?? 'no answer',
          'check the site',
        );
      }
      return volumeSpecs(runbook, snapshot, api.site);
    },

    /** Ensures each replica is bound to its claim on this (the target) site. */
    async rebindClaims(
      ctx: StepContext,
      volumes: VolumeSpec[],
      storageClassOnTarget: Record<string, string>,
    ): Promise<void> {
      await guardEpoch(witness, ctx, api.site, 'claims');
      for (const v of volumes) {
        const object = `PersistentVolumeClaim ${v.namespace}/${v.claim}`;
        const className = storageClassOnTarget[v.storageClassName] ?? v.storageClassName;
        let pvc: k8s.V1PersistentVolumeClaim | undefined;
        try {
          pvc = await api.core.readNamespacedPersistentVolumeClaim({ name: v.claim, namespace: v.namespace });
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
        if (pvc?.spec?.volumeName) {
          const bound = await api.core.readPersistentVolume({ name: pvc.spec.volumeName });
          if (bound.spec?.csi?.volumeHandle === v.volumeHandle) {
            await ensureRetain(api, bound);
            continue; // already bound to the replica (e.g. a switch back to its old site)
          }
          throw failure(
            FAILURE.precondition,
            api.site,
            object,
            `the claim is bound to ${pvc.spec.volumeName} (volume ${bound.spec?.csi?.volumeHandle ?? '?'}), not to the replica ${v.volumeHandle}`,
            'a stale claim stands in the way: check its data, then delete it and retry the step',
          );
        }
        if (pvc && pvc.spec?.accessModes?.join(',') !== v.accessModes.join(',')) {
          throw failure(
            FAILURE.precondition,
            api.site,
            object,
            `an unbound claim with access modes ${pvc.spec?.accessModes?.join(',')} exists`,
            'delete it and retry',
          );
        }
        await ensureReplicaPv(api, v, className);
        if (!pvc) {
          await api.core.createNamespacedPersistentVolumeClaim({
            namespace: v.namespace,
            body: {
              metadata: { name: v.claim, namespace: v.namespace, labels: v.labels },
              spec: {
                accessModes: v.accessModes,
                storageClassName: className,
                volumeMode: v.volumeMode,
                volumeName: replicaPvName(v),
                resources: { requests: { storage: v.storage } },
              },
            },
          });
        }
      }
      for (;;) {
        const pending: string[] = [];
        for (const v of volumes) {
          const pvc = await api.core.readNamespacedPersistentVolumeClaim({
            name: v.claim,
            namespace: v.namespace,
          });
          if (pvc.status?.phase !== 'Bound') pending.push(`${v.claim}: ${pvc.status?.phase ?? 'no phase'}`);
        }
        if (pending.length === 0) return;
        heartbeat({ pending });
        await sleep(pollMs);
      }
    },
  };
}

async function ensureRetain(api: SiteApi, pv: k8s.V1PersistentVolume): Promise<void> {
  if (pv.spec?.persistentVolumeReclaimPolicy === 'Retain') return;
  await api.core.patchPersistentVolume(
    { name: pv.metadata!.name!, body: { spec: { persistentVolumeReclaimPolicy: 'Retain' } } },
    mergePatch,
  );
}

async function ensureReplicaPv(api: SiteApi, v: VolumeSpec, className: string): Promise<void> {
  const name = replicaPvName(v);
  let pv: k8s.V1PersistentVolume | undefined;
  try {
    pv = await api.core.readPersistentVolume({ name });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  if (pv) {
    if (pv.spec?.csi?.volumeHandle !== v.volumeHandle) {
      throw failure(
        FAILURE.precondition,
        api.site,
        `PersistentVolume ${name}`,
        `it points at volume ${pv.spec?.csi?.volumeHandle ?? '?'}, not ${v.volumeHandle}`,
        'delete the stale PV and retry',
      );
    }
    await ensureRetain(api, pv);
    const ref = pv.spec.claimRef;
    if (pv.status?.phase === 'Released' && ref?.uid) {
      // A Retain PV whose claim was deleted binds again only once the old claim's uid is cleared.
      await api.core.patchPersistentVolume(
        { name, body: { spec: { claimRef: { uid: null, resourceVersion: null } } } },
        mergePatch,
      );
    }
    return;
  }
  await api.core.createPersistentVolume({
    body: {
      metadata: { name, labels: { 'pivot.dev/replica-of': `${v.namespace}.${v.claim}`.slice(0, 63) } },
      spec: {
        capacity: { storage: v.storage },
        accessModes: v.accessModes,
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: className,
        volumeMode: v.volumeMode,
        csi: { driver: v.driver, volumeHandle: v.volumeHandle },
        claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: v.namespace, name: v.claim },
      },
    },
  });
}
