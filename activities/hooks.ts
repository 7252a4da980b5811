/**
 * Hooks as Kubernetes Jobs on a site (e.g. a database check after promotion): created once per
 * operation (the Job name carries the operation's epoch, so a re-run finds it), then awaited until
 * it completes or fails, within the hook's timeout.
 */
import * as k8s from '@kubernetes/client-node';
import { heartbeat } from '@temporalio/activity';
import { isConflict, type SiteApi } from '../common/k8s.ts';
import { sleep } from '../common/wait.ts';
import type { Hook } from '../runbook/types.ts';
import type { Witness } from '../witness/witness.ts';
import { FAILURE, failure } from './failures.ts';
import { guardEpoch } from './guard.ts';
import type { StepContext } from './types.ts';

export function createHookActivities(api: SiteApi, witness: Witness, pollMs = 500) {
  return {
    /** Runs a Job hook and returns "succeeded", or throws with the Job's failure. */
    async runJobHook(ctx: StepContext, hook: Hook, namespace: string, timeoutMs: number): Promise<string> {
      await guardEpoch(witness, ctx, api.site, `hook ${hook.name}`);
      if (!hook.job) {
        throw failure(
          FAILURE.precondition,
          api.site,
          `hook ${hook.name}`,
          'exec hooks are not implemented yet',
          'use a Job hook, or skip the step',
        );
      }
      const name = `pivot-${hook.name}-e${ctx.epoch}`.slice(0, 63);
      const ns = hook.job.namespace ?? namespace;
      const batch = api.kubeConfig.makeApiClient(k8s.BatchV1Api);
      try {
        await batch.createNamespacedJob({
          namespace: ns,
          body: {
            metadata: {
              name,
              labels: { 'app.kubernetes.io/managed-by': 'pivot', 'pivot.dev/hook': hook.name },
            },
            spec: {
              backoffLimit: 0,
              // Kept an hour for the record (logs, status), then removed by the TTL controller.
              ttlSecondsAfterFinished: 3600,
              activeDeadlineSeconds: Math.ceil(timeoutMs / 1000),
              template: {
                spec: {
                  restartPolicy: 'Never',
                  tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }],
                  containers: [{ name: 'hook', image: hook.job.image, command: hook.job.command }],
                },
              },
            },
          },
        });
      } catch (err) {
        if (!isConflict(err)) throw err; // created by an earlier attempt of this step
      }
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const job = await batch.readNamespacedJob({ name, namespace: ns });
        const conds = job.status?.conditions ?? [];
        if (conds.some((c) => c.type === 'Complete' && c.status === 'True')) return 'succeeded';
        const failed = conds.find((c) => c.type === 'Failed' && c.status === 'True');
        if (failed || Date.now() > deadline) {
          throw failure(
            FAILURE.precondition,
            api.site,
            `Job ${ns}/${name}`,
            `hook ${hook.name} failed: ${failed?.message ?? failed?.reason ?? 'timed out'}`,
            'read the Job logs; fix and retry the step, or skip it with a reason',
          );
        }
        heartbeat({ hook: hook.name });
        await sleep(pollMs);
      }
    },
  };
}
