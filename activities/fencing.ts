/**
 * Storage-level fencing through csi-addons NetworkFence (cluster-scoped, created on the surviving
 * site): the old primary's client networks are cut off from the array, so that a returning old
 * primary cannot write to its volumes whatever its own cluster does.
 */
import { CRD, isNotFound, mergePatch, type SiteApi } from '../common/k8s.ts';
import type { NetworkFenceSettings } from '../config/types.ts';
import type { Witness } from '../witness/witness.ts';
import { pollPause } from './pause.ts';
import { FAILURE, failure } from './failures.ts';
import { guardEpoch } from './guard.ts';
import { switchedOff } from './unsafe.ts';
import type { StepContext } from './types.ts';

interface NetworkFence {
  metadata: { name: string; generation?: number };
  spec: { fenceState?: string; cidrs?: string[] };
  status?: {
    result?: string;
    message?: string;
    conditions?: Array<{ type: string; status: string; observedGeneration?: number }>;
  };
}

/** The result is for the current spec: its condition answers this generation. */
function current(nf: NetworkFence): boolean {
  return (nf.status?.conditions ?? []).some((c) => c.observedGeneration === nf.metadata.generation);
}

/** The NetworkFence Pivot creates against a fenced site. */
export function fenceName(fencedSite: string): string {
  return `pivot-fence-${fencedSite}`;
}

export function createFencingActivities(api: SiteApi, witness: Witness, pollMs = 500) {
  const read = async (name: string): Promise<NetworkFence | undefined> => {
    try {
      return (await api.custom.getClusterCustomObject({ ...CRD.networkFence, name })) as NetworkFence;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };

  const waitResult = async (name: string, state: 'Fenced' | 'Unfenced'): Promise<void> => {
    for (;;) {
      const nf = await read(name);
      const answered = nf !== undefined && nf.spec.fenceState === state && current(nf);
      if (answered && nf.status?.result === 'Succeeded') return;
      if (answered && nf.status?.result === 'Failed') {
        throw failure(
          FAILURE.storageRefused,
          api.site,
          `NetworkFence ${name}`,
          `the storage could not apply it: ${nf.status.message ?? 'no reason given'}`,
          'look at the storage; retry the step once the cause is gone',
        );
      }
      await pollPause(pollMs, { fence: name, result: nf?.status?.result ?? 'pending' });
    }
  };

  return {
    /** Ensures a NetworkFence of the CSI `driver` fences `cidrs`, and the storage confirmed it. */
    async ensureNetworkFence(
      ctx: StepContext,
      fencedSite: string,
      cidrs: string[],
      driver: string,
      settings: NetworkFenceSettings = {},
    ): Promise<void> {
      const name = fenceName(fencedSite);
      await guardEpoch(witness, ctx, api.site, `NetworkFence ${name}`);
      if (switchedOff('no-storage-fence')) return;
      if (cidrs.length === 0) {
        throw failure(
          FAILURE.precondition,
          api.site,
          `NetworkFence ${name}`,
          `no client networks are configured for ${fencedSite}`,
          `add clientCidrs for ${fencedSite} to the Pivot configuration`,
        );
      }
      const existing = await read(name);
      const labels = { 'app.kubernetes.io/managed-by': 'pivot', 'pivot.dev/fenced-site': fencedSite };
      if (!existing) {
        await api.custom.createClusterCustomObject({
          ...CRD.networkFence,
          body: {
            apiVersion: `${CRD.networkFence.group}/${CRD.networkFence.version}`,
            kind: 'NetworkFence',
            metadata: { name, labels },
            spec: {
              fenceState: 'Fenced',
              cidrs,
              ...(settings.className
                ? { networkFenceClassName: settings.className }
                : { driver, ...(settings.secret ? { secret: settings.secret } : {}) }),
            },
          },
        });
      } else if (
        existing.spec.fenceState !== 'Fenced' ||
        JSON.stringify([...(existing.spec.cidrs ?? [])].sort()) !== JSON.stringify([...cidrs].sort())
      ) {
        await api.custom.patchClusterCustomObject(
          { ...CRD.networkFence, name, body: { spec: { fenceState: 'Fenced', cidrs } } },
          mergePatch,
        );
      }
      await waitResult(name, 'Fenced');
    },

    /** Lifts the fence of `fencedSite` (Unfenced, confirmed, then removed). Idempotent. */
    async removeNetworkFence(ctx: StepContext, fencedSite: string): Promise<void> {
      const name = fenceName(fencedSite);
      await guardEpoch(witness, ctx, api.site, `NetworkFence ${name}`);
      const existing = await read(name);
      if (!existing) return;
      if (existing.spec.fenceState !== 'Unfenced') {
        await api.custom.patchClusterCustomObject(
          { ...CRD.networkFence, name, body: { spec: { fenceState: 'Unfenced' } } },
          mergePatch,
        );
      }
      await waitResult(name, 'Unfenced');
      try {
        await api.custom.deleteClusterCustomObject({ ...CRD.networkFence, name });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      while (await read(name)) await pollPause(pollMs, { removing: name });
    },
  };
}
