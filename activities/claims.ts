/**
 * Claim steps: describe the application's replicated volumes on the source, and bind the replicas
 * to their claims on the target through PVs that point at the replica's volume handle, with
 * reclaim policy Retain and what the source's PV carries (access modes, volume mode, capacity, mount
 * options, and its CSI source's volumeAttributes, fsType and secret references), pre-bound both
 * ways (claimRef and volumeName). Stale or conflicting objects are detected: a claim already bound to another volume
 * stops the step; a Released PV of the same volume gets its old claim reference cleared.
 */
import { heartbeat } from '@temporalio/activity';
import type * as k8s from '@kubernetes/client-node';
import { isNotFound, mergePatch, type SiteApi } from '../common/k8s.ts';
import { sleep } from '../common/wait.ts';
import { observeClaimedVolumes, type SiteSnapshot } from '../planner/live-state.ts';
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

const SECRET_REFS = [
  'controllerPublishSecretRef',
  'nodeStageSecretRef',
  'nodePublishSecretRef',
  'controllerExpandSecretRef',
  'nodeExpandSecretRef',
] as const;

/**
 * The runbook's replicated volumes in a snapshot of `site`, as a target needs them to bind replicas.
 * `pvs` are the site's PersistentVolumes as read from its API: what the snapshot does not keep of
 * them (volume mode, capacity, the CSI source's volumeAttributes, fsType and secret references,
 * mount options) comes from there. Without them the spec has only what the snapshot knows, and a
 * target binds with the defaults (Filesystem, the claim's request as capacity).
 */
export function volumeSpecs(
  runbook: Runbook,
  snapshot: SiteSnapshot,
  site: string,
  pvs: readonly k8s.V1PersistentVolume[] = [],
): VolumeSpec[] {
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
    const handle = v.pv.volumeHandle;
    const pv = pvs.find((p) => p.metadata?.name === v.pv!.name && p.spec?.csi?.volumeHandle === handle);
    const capacity = pv?.spec?.capacity?.['storage'];
    return {
      namespace: v.namespace,
      claim: v.claim,
      labels: claim?.labels ?? {},
      volumeHandle: handle,
      driver: v.pv.driver,
      accessModes: v.accessModes,
      storage: v.requestedStorage ?? capacity ?? '1Gi',
      storageClassName: v.storageClassName ?? '',
      volumeMode: pv?.spec?.volumeMode ?? 'Filesystem',
      ...(pv ? pvDetails(pv) : {}),
    };
  });
}

/** What a PV carries besides its handle that its replica's PV must carry too (plain data, for JSON). */
function pvDetails(pv: k8s.V1PersistentVolume): Partial<VolumeSpec> {
  const spec = pv.spec!;
  const csi = spec.csi!;
  const out: Partial<VolumeSpec> = {};
  if (spec.capacity?.['storage']) out.capacity = spec.capacity['storage'];
  if (csi.fsType) out.fsType = csi.fsType;
  if (csi.readOnly !== undefined) out.readOnly = csi.readOnly;
  if (csi.volumeAttributes && Object.keys(csi.volumeAttributes).length > 0)
    out.volumeAttributes = { ...csi.volumeAttributes };
  for (const key of SECRET_REFS) {
    const ref = csi[key];
    if (ref?.name) out[key] = { name: ref.name, namespace: ref.namespace ?? '' };
  }
  if (spec.mountOptions && spec.mountOptions.length > 0) out.mountOptions = [...spec.mountOptions];
  return out;
}

export function createClaimActivities(api: SiteApi, witness: Witness, pollMs = 500) {
  return {
    /** The runbook's replicated volumes as they stand on this (the source) site. */
    async describeVolumes(runbook: Runbook): Promise<VolumeSpec[]> {
      const { snapshot, pvs } = await observeClaimedVolumes(api, runbook.spec.namespaces);
      if (!snapshot.reachable) {
        throw failure(
          FAILURE.unreachable,
          api.site,
          'Kubernetes API',
          snapshot.error ?? 'no answer',
          'check the site',
        );
      }
      return volumeSpecs(runbook, snapshot, api.site, pvs);
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
            await guardEpoch(witness, ctx, api.site, object);
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
        if (pvc && (pvc.spec?.volumeMode ?? 'Filesystem') !== v.volumeMode) {
          throw failure(
            FAILURE.precondition,
            api.site,
            object,
            `an unbound claim with volume mode ${pvc.spec?.volumeMode ?? 'Filesystem'} exists, the replica is ${v.volumeMode}`,
            'delete it and retry',
          );
        }
        await guardEpoch(witness, ctx, api.site, object);
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
                resources: { requests: { storage: claimRequest(v) } },
              },
            },
          });
        }
        // The claim is not bound yet: a new one, or one a retry finds pending.
        await nudgeBinder(api, v);
      }
      for (let round = 1; ; round++) {
        const pending: string[] = [];
        for (const v of volumes) {
          const pvc = await api.core.readNamespacedPersistentVolumeClaim({
            name: v.claim,
            namespace: v.namespace,
          });
          if (pvc.status?.phase === 'Bound') continue;
          pending.push(`${v.claim}: ${pvc.status?.phase ?? 'no phase'}`);
          // The binder may have handled the claim before it saw the PV: ask again now and then.
          if (round % 2 === 0) await nudgeBinder(api, v);
        }
        if (pending.length === 0) return;
        heartbeat({ pending });
        await sleep(pollMs);
      }
    },
  };
}

/**
 * Wakes Kubernetes' volume binder for a claim that names its PV. When the binder handles the new
 * claim before its cache holds the PV (created a moment earlier), it leaves the claim Pending until
 * its periodic resync (15 s by default); an event of the PV does not help, as a PV pre-bound by
 * name leaves the binding to the claim's sync. A change to the claim makes the binder sync it again,
 * and it binds in about 0.1 s (docs/performance.md).
 */
async function nudgeBinder(api: SiteApi, v: VolumeSpec): Promise<void> {
  await api.core.patchNamespacedPersistentVolumeClaim(
    {
      name: v.claim,
      namespace: v.namespace,
      body: { metadata: { annotations: { 'pivot.dev/bind-requested': new Date().toISOString() } } },
    },
    mergePatch,
  );
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
        capacity: { storage: v.capacity ?? v.storage },
        accessModes: v.accessModes,
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: className,
        volumeMode: v.volumeMode,
        ...(v.mountOptions ? { mountOptions: v.mountOptions } : {}),
        csi: replicaCsiSource(v),
        claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: v.namespace, name: v.claim },
      },
    },
  });
}

/** The replica's CSI source: the source PV's, on the replica's handle (identical on both sites). */
export function replicaCsiSource(v: VolumeSpec): k8s.V1CSIPersistentVolumeSource {
  const csi: k8s.V1CSIPersistentVolumeSource = { driver: v.driver, volumeHandle: v.volumeHandle };
  if (v.fsType) csi.fsType = v.fsType;
  if (v.readOnly !== undefined) csi.readOnly = v.readOnly;
  if (v.volumeAttributes) csi.volumeAttributes = v.volumeAttributes;
  for (const key of SECRET_REFS) {
    const ref = v[key];
    if (ref) csi[key] = ref;
  }
  return csi;
}

/**
 * What the replica's claim requests: the source claim's request, unless it exceeds the volume's
 * capacity (an expansion the source never completed), which the claim could then not bind to.
 */
export function claimRequest(v: VolumeSpec): string {
  if (!v.capacity) return v.storage;
  const requested = quantityBytes(v.storage);
  const capacity = quantityBytes(v.capacity);
  return requested !== undefined && capacity !== undefined && requested > capacity ? v.capacity : v.storage;
}

const QUANTITY_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A Kubernetes storage quantity in bytes (undefined when it is not one this understands). */
function quantityBytes(q: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(?:e(\d+))?([A-Za-z]*)$/.exec(q.trim());
  const unit = m ? QUANTITY_UNITS[m[3] ?? ''] : undefined;
  if (!m || unit === undefined) return undefined;
  return Number(m[1]) * 10 ** Number(m[2] ?? 0) * unit;
}
