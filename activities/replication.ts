/**
 * Replication steps through csi-addons VolumeReplication objects (the first provider behind the
 * runbook's `replication.provider`): set the desired state and wait until the storage confirms it
 * for the current generation; wait for the final sync. A forced promotion (unplanned failover
 * only) is asked for with the force annotation the lab's array honours.
 */
import { CRD, mergePatch, type SiteApi } from '../common/k8s.ts';
import { FORCE_PROMOTION_ANNOTATION } from '../lab/storage-sim/constants.ts';
import type { Witness } from '../witness/witness.ts';
import { pollPause } from './pause.ts';
import { FAILURE, failure } from './failures.ts';
import { guardEpoch } from './guard.ts';
import type { ClaimRef, StepContext } from './types.ts';

interface Vr {
  metadata: { name?: string; namespace?: string; generation?: number; annotations?: Record<string, string> };
  spec: { replicationState: string };
  status?: {
    state?: string;
    observedGeneration?: number;
    lastSyncTime?: string;
    message?: string;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
  };
}

/** The status a desired state ends in: a resync ends as a secondary that caught up. */
const STATE_OF = { primary: 'Primary', secondary: 'Secondary', resync: 'Secondary' } as const;

export function createReplicationActivities(api: SiteApi, witness: Witness, pollMs = 500) {
  const read = async (c: ClaimRef): Promise<Vr> =>
    (await api.custom.getNamespacedCustomObject({
      ...CRD.volumeReplication,
      namespace: c.namespace,
      name: c.name,
    })) as Vr;

  return {
    /**
     * Ensures every VolumeReplication is in `state` and the storage confirmed it. Refusals by the
     * storage are retried here for `refusalGraceMs`, then raised (retryable) with the storage's words.
     */
    async ensureReplicationState(
      ctx: StepContext,
      claims: ClaimRef[],
      state: 'primary' | 'secondary' | 'resync',
      options: { force?: boolean; refusalGraceMs?: number } = {},
    ): Promise<void> {
      await guardEpoch(witness, ctx, api.site, 'VolumeReplications');
      for (const c of claims) {
        const vr = await read(c);
        const forced = vr.metadata.annotations?.[FORCE_PROMOTION_ANNOTATION] === 'true';
        if (vr.spec.replicationState !== state || forced !== !!options.force) {
          await guardEpoch(witness, ctx, api.site, `VolumeReplication ${c.namespace}/${c.name}`);
          await api.custom.patchNamespacedCustomObject(
            {
              ...CRD.volumeReplication,
              namespace: c.namespace,
              name: c.name,
              body: {
                metadata: { annotations: { [FORCE_PROMOTION_ANNOTATION]: options.force ? 'true' : null } },
                spec: { replicationState: state },
              },
            },
            mergePatch,
          );
        }
      }
      const started = Date.now();
      for (;;) {
        const pending: string[] = [];
        for (const c of claims) {
          const vr = await read(c);
          const current = vr.status?.observedGeneration === vr.metadata.generation;
          const completed = vr.status?.conditions?.find((x) => x.type === 'Completed');
          if (current && vr.status?.state === STATE_OF[state] && completed?.status === 'True') continue;
          if (
            current &&
            completed?.reason === 'FailedToPromote' &&
            Date.now() - started > (options.refusalGraceMs ?? 10_000)
          ) {
            throw failure(
              FAILURE.storageRefused,
              api.site,
              `VolumeReplication ${c.namespace}/${c.name}`,
              `the storage refused: ${completed.message ?? vr.status?.message ?? 'no reason given'}`,
              'look at the storage; retry the step once the cause is gone',
            );
          }
          pending.push(
            `${c.name}: ${vr.status?.state ?? 'Unknown'}${completed?.reason ? ` (${completed.reason})` : ''}`,
          );
        }
        if (pending.length === 0) return;
        await pollPause(pollMs, { pending });
      }
    },

    /**
     * Every VolumeReplication on this site that reports Primary, as "namespace/name", whatever
     * application it belongs to: what a storage fence on this site's networks holds back.
     */
    async primaryReplications(): Promise<string[]> {
      const list = (await api.custom.listCustomObjectForAllNamespaces({ ...CRD.volumeReplication })) as {
        items: Vr[];
      };
      return list.items
        .filter((vr) => vr.status?.state === 'Primary')
        .map((vr) => `${vr.metadata.namespace ?? ''}/${vr.metadata.name ?? ''}`)
        .sort();
    },

    /** The oldest last sync of the replicas here (what an unplanned promotion would keep), if every one reports one. */
    async oldestReplicaSync(claims: ClaimRef[]): Promise<string | undefined> {
      let oldest: number | undefined;
      for (const c of claims) {
        const t = Date.parse((await read(c)).status?.lastSyncTime ?? '');
        if (Number.isNaN(t)) return undefined;
        oldest = oldest === undefined ? t : Math.min(oldest, t);
      }
      return oldest === undefined ? undefined : new Date(oldest).toISOString();
    },

    /** Waits until every replica here received a sync taken at or after `sinceIso` (the final sync). */
    async waitForSyncSince(ctx: StepContext, claims: ClaimRef[], sinceIso: string): Promise<string> {
      const since = Date.parse(sinceIso);
      for (;;) {
        const times: number[] = [];
        const pending: string[] = [];
        for (const c of claims) {
          const vr = await read(c);
          if (vr.spec.replicationState !== 'secondary' || vr.status?.state === 'Primary') {
            throw failure(
              FAILURE.precondition,
              api.site,
              `VolumeReplication ${c.namespace}/${c.name}`,
              `the replica is ${vr.status?.state ?? '?'} (desired ${vr.spec.replicationState}) before the final sync: promoting it now could lose writes`,
              'find who changed it; set it back to secondary, then run the operation again',
            );
          }
          const t = vr.status?.lastSyncTime ? Date.parse(vr.status.lastSyncTime) : NaN;
          if (t >= since) times.push(t);
          else pending.push(`${c.name}: last sync ${vr.status?.lastSyncTime ?? 'never'}`);
        }
        if (pending.length === 0) return new Date(Math.min(...times)).toISOString();
        await pollPause(pollMs, { app: ctx.app, pending });
      }
    },
  };
}
