/**
 * Drill steps on the standby site (docs/adr/0004-drills.md): an isolated namespace with a
 * NetworkPolicy, clones of the replica volumes made through snapshots (never a promotion), copies
 * of the workloads at 0, and the cleanup of all of it. Production objects are only read. Every
 * object the drill creates carries the label `pivot.dev/drill=<drill id>`; the cleanup removes by
 * that label, so it is idempotent and also finds what a crashed attempt left.
 */
import * as k8s from '@kubernetes/client-node';
import { CRD, isConflict, isNotFound, mergePatch, type CustomObject, type SiteApi } from '../common/k8s.ts';
import type { Witness } from '../witness/witness.ts';
import { pollPause } from './pause.ts';
import { FAILURE, failure } from './failures.ts';
import { guardEpoch } from './guard.ts';
import type { StepContext, VolumeSpec, WorkloadRef } from './types.ts';

export const DRILL_LABEL = 'pivot.dev/drill';
export const DRILL_APP_LABEL = 'pivot.dev/app';
export const DRILL_POLICY = 'pivot-drill-isolate';

/** Where a drill runs and what it calls itself. */
export interface DrillPlace {
  /** The drill id: its evidence is stored under it, and its objects are labelled with it. */
  id: string;
  app: string;
  /** The production namespace (read only) and the drill's own namespace on the standby site. */
  namespace: string;
  drillNamespace: string;
}

/** A clone the drill made: from which replica, when the snapshot was cut, how fresh it was. */
export interface DrillClone {
  claim: string;
  volumeHandle: string;
  snapshotAt: string;
  /** The replica's last sync before the snapshot (undefined when the replica does not say). */
  lastSyncTime?: string;
}

const contentName = (place: DrillPlace, claim: string): string =>
  `pivot-drill-${place.drillNamespace}-${claim}`.slice(0, 253);

type Snapshot = CustomObject<
  Record<string, unknown>,
  { readyToUse?: boolean; creationTime?: string; error?: { message?: string } }
>;

export function createDrillActivities(api: SiteApi, witness: Witness, pollMs = 500) {
  const networking = api.client(k8s.NetworkingV1Api);
  const labels = (place: DrillPlace) => ({ [DRILL_LABEL]: place.id, [DRILL_APP_LABEL]: place.app });

  async function namespaceGone(name: string): Promise<boolean> {
    try {
      await api.core.readNamespace({ name });
      return false;
    } catch (err) {
      if (isNotFound(err)) return true;
      throw err;
    }
  }

  async function drillContents(place: Pick<DrillPlace, 'app' | 'drillNamespace'>): Promise<string[]> {
    const list = (await api.custom.listClusterCustomObject({
      ...CRD.volumeSnapshotContent,
      labelSelector: `${DRILL_APP_LABEL}=${place.app}`,
    })) as { items: Snapshot[] };
    return list.items
      .map((c) => c.metadata.name!)
      .filter((n) => n.startsWith(`pivot-drill-${place.drillNamespace}-`));
  }

  /**
   * The drill's clone volumes: PVs whose claim is in the drill namespace. They are made to be
   * deleted with their claims (reclaim policy Delete), whatever their class says, so that removing
   * the namespace frees the array's space too.
   */
  async function releaseClones(drillNamespace: string): Promise<string[]> {
    const left: string[] = [];
    for (const pv of (await api.core.listPersistentVolume()).items) {
      if (pv.spec?.claimRef?.namespace !== drillNamespace) continue;
      left.push(`PersistentVolume ${pv.metadata!.name!}`);
      if (pv.spec.persistentVolumeReclaimPolicy !== 'Delete') {
        await api.core.patchPersistentVolume(
          { name: pv.metadata!.name!, body: { spec: { persistentVolumeReclaimPolicy: 'Delete' } } },
          mergePatch,
        );
      }
    }
    return left;
  }

  const activities = {
    /**
     * Removes everything a drill of this application made on this site (its namespace and its
     * snapshot contents), and waits until it is gone. Safe at any time: it touches only objects
     * labelled as this application's drill objects. Not epoch-guarded on purpose.
     */
    async cleanupDrill(place: Pick<DrillPlace, 'app' | 'drillNamespace'>): Promise<{ removed: string[] }> {
      const removed: string[] = [];
      try {
        const ns = await api.core.readNamespace({ name: place.drillNamespace });
        if (ns.metadata?.labels?.[DRILL_APP_LABEL] !== place.app) {
          throw failure(
            FAILURE.precondition,
            api.site,
            `Namespace ${place.drillNamespace}`,
            `the namespace exists but is not a drill namespace of ${place.app} (no ${DRILL_APP_LABEL}=${place.app} label)`,
            'rename or remove that namespace, or run the drill after it is gone',
          );
        }
        if (!ns.metadata?.deletionTimestamp) {
          await api.core.deleteNamespace({ name: place.drillNamespace, propagationPolicy: 'Background' });
        }
        removed.push(`Namespace ${place.drillNamespace}`);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      removed.push(...(await releaseClones(place.drillNamespace)));
      for (const name of await drillContents(place)) {
        try {
          await api.custom.deleteClusterCustomObject({ ...CRD.volumeSnapshotContent, name });
          removed.push(`VolumeSnapshotContent ${name}`);
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
      for (;;) {
        const left = [
          ...((await namespaceGone(place.drillNamespace)) ? [] : [`Namespace ${place.drillNamespace}`]),
          ...(await drillContents(place)).map((n) => `VolumeSnapshotContent ${n}`),
          ...(await releaseClones(place.drillNamespace)),
        ];
        if (left.length === 0) return { removed };
        await pollPause(pollMs, { waitingFor: left });
      }
    },

    /**
     * Creates the drill namespace and its NetworkPolicy: ingress and egress only within the
     * namespace, plus DNS. A leftover drill namespace of this application is removed first; a
     * namespace of that name that is not a drill's stops the step.
     */
    async isolateDrill(ctx: StepContext, place: DrillPlace): Promise<void> {
      await guardEpoch(witness, ctx, api.site, `Namespace ${place.drillNamespace}`);
      try {
        const ns = await api.core.readNamespace({ name: place.drillNamespace });
        if (ns.metadata?.labels?.[DRILL_LABEL] !== place.id) await activities.cleanupDrill(place);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      try {
        await api.core.createNamespace({
          body: { metadata: { name: place.drillNamespace, labels: labels(place) } },
        });
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
      const sameNamespace = [{ podSelector: {} }];
      try {
        await networking.createNamespacedNetworkPolicy({
          namespace: place.drillNamespace,
          body: {
            metadata: { name: DRILL_POLICY, labels: labels(place) },
            spec: {
              podSelector: {},
              policyTypes: ['Ingress', 'Egress'],
              ingress: [{ _from: sameNamespace }],
              egress: [
                { to: sameNamespace },
                {
                  to: [{ namespaceSelector: {} }],
                  ports: [
                    { protocol: 'UDP', port: 53 },
                    { protocol: 'TCP', port: 53 },
                  ],
                },
              ],
            },
          },
        });
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    },

    /**
     * Clones each replica into the drill namespace: a snapshot of the replica volume (a
     * pre-provisioned VolumeSnapshotContent bound to a VolumeSnapshot in the drill namespace),
     * then a claim of the same name restored from it. Returns when every clone is Bound.
     */
    async cloneReplicas(
      ctx: StepContext,
      place: DrillPlace,
      volumes: VolumeSpec[],
      /** The replicas' oldest last sync as the active site reported it, when this site's says nothing. */
      activeLastSync?: string,
    ): Promise<DrillClone[]> {
      await guardEpoch(witness, ctx, api.site, 'snapshots');
      const lastSync: Record<string, string | undefined> = {};
      for (const v of volumes) {
        const vr = (await api.custom
          .getNamespacedCustomObject({ ...CRD.volumeReplication, namespace: v.namespace, name: v.claim })
          .catch((err: unknown) => {
            if (isNotFound(err)) return undefined;
            throw err;
          })) as { status?: { lastSyncTime?: string } } | undefined;
        lastSync[v.claim] = vr?.status?.lastSyncTime ?? activeLastSync;
        const content = contentName(place, v.claim);
        await createIgnoringConflict(() =>
          api.custom.createClusterCustomObject({
            ...CRD.volumeSnapshotContent,
            body: {
              apiVersion: 'snapshot.storage.k8s.io/v1',
              kind: 'VolumeSnapshotContent',
              metadata: { name: content, labels: labels(place) },
              spec: {
                driver: v.driver,
                deletionPolicy: 'Delete',
                source: { volumeHandle: v.volumeHandle },
                volumeSnapshotRef: {
                  apiVersion: 'snapshot.storage.k8s.io/v1',
                  kind: 'VolumeSnapshot',
                  namespace: place.drillNamespace,
                  name: v.claim,
                },
              },
            },
          }),
        );
        await createIgnoringConflict(() =>
          api.custom.createNamespacedCustomObject({
            ...CRD.volumeSnapshot,
            namespace: place.drillNamespace,
            body: {
              apiVersion: 'snapshot.storage.k8s.io/v1',
              kind: 'VolumeSnapshot',
              metadata: { name: v.claim, labels: labels(place) },
              spec: { source: { volumeSnapshotContentName: content } },
            },
          }),
        );
      }
      const snapshotAt: Record<string, string> = {};
      for (;;) {
        const pending: string[] = [];
        for (const v of volumes) {
          const vs = (await api.custom.getNamespacedCustomObject({
            ...CRD.volumeSnapshot,
            namespace: place.drillNamespace,
            name: v.claim,
          })) as Snapshot;
          if (vs.status?.readyToUse) snapshotAt[v.claim] = vs.status.creationTime ?? new Date().toISOString();
          else
            pending.push(
              `snapshot ${v.claim}${vs.status?.error?.message ? `: ${vs.status.error.message}` : ''}`,
            );
        }
        if (pending.length === 0) break;
        await pollPause(pollMs, { pending });
      }
      for (const v of volumes) {
        await createIgnoringConflict(() =>
          api.core.createNamespacedPersistentVolumeClaim({
            namespace: place.drillNamespace,
            body: {
              metadata: { name: v.claim, labels: { ...v.labels, ...labels(place) } },
              spec: {
                accessModes: v.accessModes,
                storageClassName: v.storageClassName,
                volumeMode: v.volumeMode,
                resources: { requests: { storage: v.storage } },
                dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: v.claim },
              },
            },
          }),
        );
      }
      for (;;) {
        const pending: string[] = [];
        for (const v of volumes) {
          const pvc = await api.core.readNamespacedPersistentVolumeClaim({
            namespace: place.drillNamespace,
            name: v.claim,
          });
          if (pvc.status?.phase !== 'Bound') pending.push(`${v.claim} ${pvc.status?.phase ?? 'Pending'}`);
        }
        if (pending.length === 0) break;
        await pollPause(pollMs, { pending });
      }
      await releaseClones(place.drillNamespace);
      return volumes.map((v) => ({
        claim: v.claim,
        volumeHandle: v.volumeHandle,
        snapshotAt: snapshotAt[v.claim]!,
        ...(lastSync[v.claim] ? { lastSyncTime: lastSync[v.claim] } : {}),
      }));
    },

    /**
     * Copies the runbook's workloads from the production namespace (read only) into the drill
     * namespace, at 0 replicas, without their status and identity. Returns the copies' refs.
     */
    async copyWorkloads(
      ctx: StepContext,
      place: DrillPlace,
      workloads: WorkloadRef[],
    ): Promise<WorkloadRef[]> {
      await guardEpoch(witness, ctx, api.site, 'workloads');
      const copies: WorkloadRef[] = [];
      for (const w of workloads) {
        const source =
          w.kind === 'StatefulSet'
            ? await api.apps.readNamespacedStatefulSet({ namespace: w.namespace, name: w.name })
            : await api.apps.readNamespacedDeployment({ namespace: w.namespace, name: w.name });
        const metadata = {
          name: w.name,
          namespace: place.drillNamespace,
          labels: { ...(source.metadata?.labels ?? {}), ...labels(place) },
        };
        const spec = { ...source.spec!, replicas: 0 };
        await createIgnoringConflict(() =>
          w.kind === 'StatefulSet'
            ? api.apps.createNamespacedStatefulSet({
                namespace: place.drillNamespace,
                body: { metadata, spec: spec },
              })
            : api.apps.createNamespacedDeployment({
                namespace: place.drillNamespace,
                body: { metadata, spec: spec },
              }),
        );
        copies.push({ ...w, namespace: place.drillNamespace });
      }
      return copies;
    },
  };
  return activities;
}

async function createIgnoringConflict(create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (err) {
    if (!isConflict(err)) throw err;
  }
}
