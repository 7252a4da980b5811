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
import { switchedOff } from './unsafe.ts';

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

/**
 * How far the storage's clock may be ahead of Pivot's (ms). The array stamps the syncs it reports
 * (lastSyncTime) with its own clock: the final sync counts only a sync stamped this much after the
 * source was quiesced, and a sync stamped further in the future than this proves the clock is off:
 * Pivot then refuses to prove anything from it (docs/safety.md, the final sync).
 */
export const CLOCK_SKEW_ALLOWANCE_MS = 1000;

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

    /**
     * The oldest last sync of the replicas here (what an unplanned promotion would keep), if every
     * one reports one the clocks allow to trust: a sync stamped in the future (the array's clock is
     * ahead) bounds nothing, so the loss is then unknown.
     */
    async oldestReplicaSync(claims: ClaimRef[]): Promise<string | undefined> {
      let oldest: number | undefined;
      for (const c of claims) {
        const t = Date.parse((await read(c)).status?.lastSyncTime ?? '');
        if (Number.isNaN(t) || t > Date.now() + CLOCK_SKEW_ALLOWANCE_MS) return undefined;
        oldest = oldest === undefined ? t : Math.min(oldest, t);
      }
      return oldest === undefined ? undefined : new Date(oldest).toISOString();
    },

    /**
     * Waits until every replica here received a sync taken after `sinceIso` (the final sync): the
     * proof that a planned move loses nothing. The storage stamps its syncs with its own clock, so a
     * sync counts only when stamped CLOCK_SKEW_ALLOWANCE_MS after `sinceIso`, and one stamped
     * further ahead of this worker's clock than that ends the step: with the clocks that far apart,
     * no stamp proves the sync came after the quiesce. A replica that diverged ends it too: no
     * sync reaches it. (The workflow watches the source meanwhile: workflows/switchover.ts.)
     */
    async waitForSyncSince(ctx: StepContext, claims: ClaimRef[], sinceIso: string): Promise<string> {
      if (switchedOff('no-final-sync-proof')) return sinceIso;
      const since = Date.parse(sinceIso) + CLOCK_SKEW_ALLOWANCE_MS;
      for (;;) {
        const times: number[] = [];
        const pending: string[] = [];
        for (const c of claims) {
          const vr = await read(c);
          const degraded = vr.status?.conditions?.find((x) => x.type === 'Degraded');
          if (degraded?.status === 'True' && degraded.reason === 'ResyncRequired') {
            // No sync comes to a replica that diverged: waiting would last until the step's timeout.
            throw failure(
              FAILURE.precondition,
              api.site,
              `VolumeReplication ${c.namespace}/${c.name}`,
              `the replica diverged from the primary (ResyncRequired): no sync reaches it, and a planned move onto it would lose the writes it lacks`,
              `reprotect ${api.site} (it resyncs the replica), then run the operation again`,
            );
          }
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
          const ahead = t - Date.now();
          if (ahead > CLOCK_SKEW_ALLOWANCE_MS) {
            throw failure(
              FAILURE.clockSkew,
              api.site,
              `VolumeReplication ${c.namespace}/${c.name}`,
              `the storage reports a sync at ${vr.status?.lastSyncTime}, ${Math.round(ahead / 1000)} s in the future: its clock is ahead, and no sync it stamps can prove the final sync came after the quiesce`,
              "fix the array's clock (NTP), then run the operation again",
            );
          }
          if (t >= since) times.push(t);
          else pending.push(`${c.name}: last sync ${vr.status?.lastSyncTime ?? 'never'}`);
        }
        if (pending.length === 0) return new Date(Math.min(...times)).toISOString();
        await pollPause(pollMs, { app: ctx.app, pending });
      }
    },
  };
}
