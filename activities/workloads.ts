/**
 * Workload steps on one site: scale down recording the replica counts (in an annotation, so a
 * re-run after a crash finds them), wait until the pods are gone, scale up in start order and wait
 * until Ready. Each is an "ensure": it reads first and acts only where the state is not yet right.
 */
import type { SiteApi } from '../common/k8s.ts';
import { mergePatch } from '../common/k8s.ts';
import type { Witness } from '../witness/witness.ts';
import { FAILURE, failure } from './failures.ts';
import { guardEpoch } from './guard.ts';
import { pollPause } from './pause.ts';
import { workloadKey, type StepContext, type WorkloadRef } from './types.ts';

/** Where the replica count a workload had before Pivot scaled it down is kept. */
export const REPLICAS_ANNOTATION = 'pivot.dev/replicas-before-failover';

async function read(api: SiteApi, w: WorkloadRef) {
  return w.kind === 'StatefulSet'
    ? api.apps.readNamespacedStatefulSet({ name: w.name, namespace: w.namespace })
    : api.apps.readNamespacedDeployment({ name: w.name, namespace: w.namespace });
}

async function patch(api: SiteApi, w: WorkloadRef, body: object): Promise<void> {
  if (w.kind === 'StatefulSet') {
    await api.apps.patchNamespacedStatefulSet({ name: w.name, namespace: w.namespace, body }, mergePatch);
  } else {
    await api.apps.patchNamespacedDeployment({ name: w.name, namespace: w.namespace, body }, mergePatch);
  }
}

export function createWorkloadActivities(api: SiteApi, witness: Witness, pollMs = 500) {
  return {
    /** The replica counts the workloads have (or had before Pivot scaled them down). Read only. */
    async currentReplicas(workloads: WorkloadRef[]): Promise<Record<string, number>> {
      const counts: Record<string, number> = {};
      for (const w of workloads) {
        const obj = await read(api, w);
        const current = obj.spec?.replicas ?? 0;
        const before = Number(obj.metadata?.annotations?.[REPLICAS_ANNOTATION] ?? NaN);
        counts[workloadKey(w)] = current === 0 && Number.isInteger(before) ? before : current;
      }
      return counts;
    },

    /** Scales the workloads to 0 in reverse start order; returns the replica counts they had. */
    async scaleDownWorkloads(ctx: StepContext, workloads: WorkloadRef[]): Promise<Record<string, number>> {
      await guardEpoch(witness, ctx, api.site, 'workloads');
      const recorded: Record<string, number> = {};
      const order = [...workloads].sort((a, b) => b.startOrder - a.startOrder);
      for (const w of order) {
        const obj = await read(api, w);
        const current = obj.spec?.replicas ?? 0;
        const before = Number(obj.metadata?.annotations?.[REPLICAS_ANNOTATION] ?? NaN);
        // Already scaled down by an earlier attempt: the annotation has the count to restore.
        recorded[workloadKey(w)] = current === 0 && Number.isInteger(before) ? before : current;
        if (current !== 0) {
          await guardEpoch(witness, ctx, api.site, `${w.kind} ${w.namespace}/${w.name}`);
          await patch(api, w, {
            metadata: { annotations: { [REPLICAS_ANNOTATION]: String(current) } },
            spec: { replicas: 0 },
          });
        }
      }
      return recorded;
    },

    /**
     * A health check, read only: every workload wants its replica count and has that many Ready,
     * within `timeoutMs`. It changes nothing: a workload someone scaled down fails it.
     */
    async checkWorkloadsReady(
      ctx: StepContext,
      workloads: WorkloadRef[],
      replicas: Record<string, number>,
      timeoutMs: number,
    ): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const pending: string[] = [];
        for (const w of workloads) {
          const obj = await read(api, w);
          const want = replicas[workloadKey(w)] ?? 0;
          const [spec, ready] = [obj.spec?.replicas ?? 0, obj.status?.readyReplicas ?? 0];
          if (spec !== want || ready < want) pending.push(`${w.name} ${ready}/${want} Ready (wants ${spec})`);
        }
        if (pending.length === 0) return;
        if (Date.now() >= deadline) {
          throw failure(
            FAILURE.precondition,
            api.site,
            `workloads of ${ctx.app}`,
            `not Ready within ${Math.round(timeoutMs / 1000)} s: ${pending.join(', ')}`,
            'look at the pods; retry the step once they are Ready',
          );
        }
        await pollPause(pollMs, { pending });
      }
    },

    /** Waits until no pod of these workloads exists on the site (so no volume is in use). */
    async waitWorkloadsStopped(ctx: StepContext, workloads: WorkloadRef[]): Promise<void> {
      for (;;) {
        let remaining = 0;
        for (const w of workloads) {
          const obj = await read(api, w);
          const labels = obj.spec?.selector?.matchLabels ?? {};
          const selector = Object.entries(labels)
            .map(([k, v]) => `${k}=${v}`)
            .join(',');
          const pods = await api.core.listNamespacedPod({ namespace: w.namespace, labelSelector: selector });
          remaining += pods.items.length;
        }
        if (remaining === 0) return;
        await pollPause(pollMs, { remainingPods: remaining, app: ctx.app });
      }
    },

    /**
     * Scales the workloads to the given replica counts, one start-order group at a time, waiting
     * for each group to be Ready before the next.
     */
    async scaleUpWorkloads(
      ctx: StepContext,
      workloads: WorkloadRef[],
      replicas: Record<string, number>,
    ): Promise<void> {
      await guardEpoch(witness, ctx, api.site, 'workloads');
      const orders = [...new Set(workloads.map((w) => w.startOrder))].sort((a, b) => a - b);
      for (const order of orders) {
        const group = workloads.filter((w) => w.startOrder === order);
        for (const w of group) {
          const want = replicas[workloadKey(w)] ?? 0;
          const obj = await read(api, w);
          if ((obj.spec?.replicas ?? 0) !== want) {
            // Checked at each write, not once: a group starts after the previous one is Ready.
            await guardEpoch(witness, ctx, api.site, `${w.kind} ${w.namespace}/${w.name}`);
            await patch(api, w, {
              metadata: { annotations: { [REPLICAS_ANNOTATION]: null } },
              spec: { replicas: want },
            });
          }
        }
        for (;;) {
          const pending: string[] = [];
          for (const w of group) {
            const obj = await read(api, w);
            const want = replicas[workloadKey(w)] ?? 0;
            if ((obj.status?.readyReplicas ?? 0) < want)
              pending.push(`${w.name} ${obj.status?.readyReplicas ?? 0}/${want}`);
          }
          if (pending.length === 0) break;
          await pollPause(pollMs, { startOrder: order, pending });
        }
      }
    },
  };
}
