/**
 * Hooks on a site (e.g. a database check after promotion), within the hook's timeout. Job hooks
 * run one Job per attempt of their step (the Job name carries the epoch and the attempt: a retried
 * step gets a new Job, never an earlier attempt's result, while the same attempt delivered again
 * after a worker crash finds its own Job), awaited until it completes or fails. Exec hooks run a
 * command in a running pod through the API server's exec subresource and report its status and
 * output.
 */
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { asyncLocalStorage, Context, type Info } from '@temporalio/activity';
import { isConflict, type SiteApi } from '../common/k8s.ts';
import type { Hook } from '../runbook/types.ts';
import type { Witness } from '../witness/witness.ts';
import { FAILURE, failure } from './failures.ts';
import { guardEpoch } from './guard.ts';
import { pollPause } from './pause.ts';
import type { StepContext } from './types.ts';

/** The annotation that names the attempt a hook's Job belongs to. */
export const HOOK_ATTEMPT_ANNOTATION = 'pivot.dev/hook-attempt';

/**
 * Which attempt of a hook step this activity is: its workflow run and activity id. A step run
 * again (an operator's retry, a re-run workflow) schedules a new activity, with a new id; the same
 * activity delivered again (a worker crash, a heartbeat timeout, a retryable error) keeps its id
 * and only counts up `info.attempt`, which is therefore not part of the key.
 */
export function hookAttemptKey(
  info: Pick<Info, 'workflowExecution' | 'activityId' | 'activityRunId'>,
): string {
  // An activity started on its own, not by a workflow, is identified by its own run id instead.
  return `${info.workflowExecution?.runId ?? info.activityRunId ?? 'standalone'}/${info.activityId}`;
}

/**
 * The Job of one attempt of a hook: `pivot-<hook>-e<epoch>-<hash of the attempt>`, a DNS label of
 * at most 63 characters (the hook's name is shortened to fit, never the epoch or the hash).
 */
export function hookJobName(hook: string, epoch: number, attemptKey: string): string {
  const suffix = `-e${epoch}-${createHash('sha256').update(attemptKey).digest('hex').slice(0, 10)}`;
  const room = 63 - 'pivot-'.length - suffix.length;
  const base =
    hook
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .slice(0, room)
      .replace(/^-+|-+$/g, '') || 'hook';
  return `pivot-${base}${suffix}`;
}

export function createHookActivities(api: SiteApi, witness: Witness, pollMs = 500) {
  return {
    /**
     * Runs a Job hook and returns "succeeded", or throws with the Job's failure. Runs as a
     * Temporal activity: the activity's identity names the Job (hookAttemptKey).
     */
    async runJobHook(ctx: StepContext, hook: Hook, namespace: string, timeoutMs: number): Promise<string> {
      await guardEpoch(witness, ctx, api.site, `hook ${hook.name}`);
      if (!hook.job) throw new Error(`hook ${hook.name} is not a Job hook`);
      const attempt = hookAttemptKey(Context.current().info);
      const name = hookJobName(hook.name, ctx.epoch, attempt);
      const ns = hook.job.namespace ?? namespace;
      const batch = api.client(k8s.BatchV1Api);
      try {
        await batch.createNamespacedJob({
          namespace: ns,
          body: {
            metadata: {
              name,
              labels: {
                'app.kubernetes.io/managed-by': 'pivot',
                'pivot.dev/hook': hook.name,
                'pivot.dev/epoch': String(ctx.epoch),
              },
              annotations: { [HOOK_ATTEMPT_ANNOTATION]: attempt, 'pivot.dev/operation': ctx.operationId },
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
        if (!isConflict(err)) throw err; // created by this attempt before it was delivered again
      }
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const job = await batch.readNamespacedJob({ name, namespace: ns });
        const owner = job.metadata?.annotations?.[HOOK_ATTEMPT_ANNOTATION];
        if (owner !== attempt) {
          throw failure(
            FAILURE.precondition,
            api.site,
            `Job ${ns}/${name}`,
            `the Job is not this attempt's (${attempt}) but ${owner ?? 'nobody'}'s`,
            'delete the Job and retry the step',
          );
        }
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
        try {
          await pollPause(pollMs, { hook: hook.name });
        } catch (err) {
          // The operation was aborted: the hook must not act after it (a pre-fence hook that locks
          // the database, say). Its Job goes, with its pods.
          await batch
            .deleteNamespacedJob({ name, namespace: ns, propagationPolicy: 'Background' })
            .catch(() => undefined);
          throw err;
        }
      }
    },

    /**
     * Runs an exec hook in a running pod (named, or the first Ready one the selector matches, by
     * name) and returns its output, or throws with its status and stderr. Re-running it runs the
     * command again: exec hooks must be idempotent (a check, not a migration).
     */
    async runExecHook(ctx: StepContext, hook: Hook, namespace: string, timeoutMs: number): Promise<string> {
      await guardEpoch(witness, ctx, api.site, `hook ${hook.name}`);
      const spec = hook.exec;
      if (!spec) throw new Error(`hook ${hook.name} is not an exec hook`);
      const ns = spec.namespace ?? namespace;
      const pod = await pickPod(api, ns, spec, hook.name);
      const container = spec.container ?? pod.spec?.containers[0]?.name ?? '';
      const object = `Pod ${ns}/${pod.metadata!.name!}`;
      const stdout = collector();
      const stderr = collector();
      const activity = asyncLocalStorage.getStore();
      const beat = setInterval(() => activity?.heartbeat({ hook: hook.name, pod: pod.metadata?.name }), 1000);
      let cancelled: Error | undefined;
      let status: k8s.V1Status;
      try {
        status = await new Promise<k8s.V1Status>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`no answer within ${timeoutMs / 1000} s`)),
            timeoutMs,
          );
          // The operation was aborted. Closing the stream would not end the command (the container
          // runtime leaves an exec'd process running when its client goes), so the abort waits for
          // the command to end; the workflow waits for this activity before it rolls back.
          activity?.cancelled.catch((err: unknown) => {
            cancelled = err instanceof Error ? err : new Error(String(err));
          });
          new k8s.Exec(api.kubeConfig)
            .exec(
              ns,
              pod.metadata!.name!,
              container,
              spec.command,
              stdout.stream,
              stderr.stream,
              null,
              false,
              (s) => {
                clearTimeout(timer);
                resolve(s);
              },
            )
            .then((ws: unknown) => {
              (ws as { on(event: 'error', listener: (err: Error) => void): void }).on('error', (err) =>
                reject(err),
              );
            })
            .catch((err: unknown) => {
              clearTimeout(timer);
              reject(err instanceof Error ? err : new Error(String(err)));
            });
        });
      } catch (err) {
        if (cancelled) throw cancelled;
        throw failure(
          FAILURE.unreachable,
          api.site,
          object,
          `hook ${hook.name} could not run: ${(err as Error).message}`,
          'check the pod and the site; retry the step',
        );
      } finally {
        clearInterval(beat);
      }
      if (cancelled) throw cancelled;
      if (status.status === 'Success') return stdout.text();
      throw failure(
        FAILURE.precondition,
        api.site,
        object,
        `hook ${hook.name} failed: ${status.message ?? status.reason ?? 'no reason given'}${stderr.text() ? `; stderr: ${stderr.text()}` : ''}`,
        'fix the cause and retry the step, or skip it with a reason',
      );
    },
  };
}

/** The hook's pod: the named one, or the first Running and Ready pod its selector matches. */
async function pickPod(
  api: SiteApi,
  namespace: string,
  spec: NonNullable<Hook['exec']>,
  hookName: string,
): Promise<k8s.V1Pod> {
  if (spec.pod) return api.core.readNamespacedPod({ name: spec.pod, namespace });
  const labelSelector = Object.entries(spec.selector ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const pods = await api.core.listNamespacedPod({ namespace, labelSelector });
  const ready = pods.items
    .filter(
      (p) =>
        p.status?.phase === 'Running' &&
        !p.metadata?.deletionTimestamp &&
        (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    )
    .sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  if (!ready[0]) {
    throw failure(
      FAILURE.notYet,
      api.site,
      `pods ${namespace}/${labelSelector}`,
      `no Ready pod for hook ${hookName}`,
      'retried: the workloads may still be starting',
    );
  }
  return ready[0];
}

/** A Writable that keeps the last 4 KiB written to it, as text. */
function collector(): { stream: Writable; text(): string } {
  let buf = '';
  return {
    stream: new Writable({
      write(chunk: Buffer | string, _enc, done) {
        buf = (buf + chunk.toString()).slice(-4096);
        done();
      },
    }),
    text: () => buf.trim(),
  };
}
