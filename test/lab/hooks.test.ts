/**
 * Hooks on a lab site: an exec hook runs its command in a Ready pod the selector picks (kwok runs
 * it on this machine, see lab/sites.ts) and returns its output; a failing command fails the hook
 * with its status and stderr; no Ready pod is a retryable "not yet". A Job hook runs one Job per
 * attempt of its step (kwok completes a Job's pods; a ResourceQuota of no pods makes one fail at
 * its deadline): a retry after a failure runs a new Job, the same attempt delivered again finds its
 * own. Job hooks are also exercised by every operation of orders (post-promote mysql-ping).
 */
import * as k8s from '@kubernetes/client-node';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Redis } from 'ioredis';
import { createHookActivities } from '../../activities/hooks.ts';
import { waitUntil } from '../../common/wait.ts';
import type { Hook } from '../../runbook/types.ts';
import { Witness } from '../../witness/witness.ts';
import { deleteNamespace, site, status, uniqueName } from './helpers.ts';

const dcA = site('dc-a');
let redis: Redis;
let hooks: ReturnType<typeof createHookActivities>;
const ctx = { app: 'hooks-test', operationId: 'test', epoch: 0 };

beforeAll(async () => {
  redis = new Redis((await status()).redis.url, { maxRetriesPerRequest: 1 });
  hooks = createHookActivities(dcA, new Witness(redis, { prefix: uniqueName('hooks') }));
});

afterAll(async () => {
  await redis?.quit();
});

function execHook(
  command: string[],
  selector: Record<string, string> = { 'app.kubernetes.io/name': 'mysql' },
): Hook {
  return {
    name: 'check',
    phase: 'post-promote',
    exec: { selector, command },
    timeout: '30s',
    onError: 'fail',
  };
}

describe('exec hooks', () => {
  it('runs the command in a Ready pod and returns its output', async () => {
    const out = await hooks.runExecHook(
      ctx,
      execHook(['sh', '-c', 'echo "pong from $PIVOT_LAB_SITE"']),
      'orders',
      30_000,
    );
    expect(out).toBe('pong from dc-a');
  });

  it('fails with the status and stderr of a failing command', async () => {
    await expect(
      hooks.runExecHook(ctx, execHook(['sh', '-c', 'echo replica lagging >&2; exit 3']), 'orders', 30_000),
    ).rejects.toThrow(
      /dc-a: Pod orders\/mysql-0: hook check failed: .*exit status 3.*; stderr: replica lagging/,
    );
  });

  it('says "not yet" when no Ready pod matches', async () => {
    await expect(
      hooks.runExecHook(ctx, execHook(['true'], { 'app.kubernetes.io/name': 'nothing' }), 'orders', 30_000),
    ).rejects.toMatchObject({ type: 'NotYet' });
  });
});

describe('Job hooks', () => {
  const ns = uniqueName('hook-jobs');
  const hook: Hook = {
    name: 'db-check',
    phase: 'post-promote',
    job: { image: 'busybox:1.37', command: ['sh', '-c', 'true'] },
    timeout: '60s',
    onError: 'fail',
  };
  const batch = dcA.kubeConfig.makeApiClient(k8s.BatchV1Api);
  const workflowExecution = { workflowId: 'pivot-hooks-test', runId: uniqueName('run') };

  /** Runs the hook as activity `activityId` of one workflow run does, delivered for the `attempt`th time. */
  function runAs(activityId: string, attempt: number, timeoutMs: number): Promise<string> {
    return new MockActivityEnvironment({ workflowExecution, activityId, attempt }).run(() =>
      hooks.runJobHook(ctx, hook, ns, timeoutMs),
    );
  }

  async function jobs(): Promise<k8s.V1Job[]> {
    const list = await batch.listNamespacedJob({ namespace: ns, labelSelector: 'pivot.dev/hook=db-check' });
    return list.items.sort((a, b) => a.metadata!.name!.localeCompare(b.metadata!.name!));
  }

  const finished = (job: k8s.V1Job, type: 'Complete' | 'Failed') =>
    (job.status?.conditions ?? []).some((c) => c.type === type && c.status === 'True');

  /** Whether a pod may be created in the namespace now (the quota admission's view). */
  async function podAdmitted(): Promise<boolean> {
    const name = uniqueName('probe');
    try {
      await dcA.core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name },
          spec: {
            tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }],
            containers: [{ name: 'probe', image: 'busybox:1.37' }],
          },
        },
      });
    } catch (err) {
      if ((err as { code?: number }).code === 403) return false;
      throw err;
    }
    await dcA.core.deleteNamespacedPod({ name, namespace: ns, gracePeriodSeconds: 0 });
    return true;
  }

  beforeAll(async () => {
    await dcA.core.createNamespace({ body: { metadata: { name: ns } } });
    // The first attempt's Job can start no pod: it fails when its deadline (the hook's timeout) passes.
    await dcA.core.createNamespacedResourceQuota({
      namespace: ns,
      body: { metadata: { name: 'no-pods' }, spec: { hard: { pods: '0' } } },
    });
    await waitUntil('the quota to refuse pods', async () => !(await podAdmitted()), { timeoutMs: 30_000 });
  });

  afterAll(async () => {
    await deleteNamespace(dcA, ns);
  });

  it('runs a new Job when the step is retried after a failure, and the same Job when its attempt is delivered again', async () => {
    await expect(runAs('1', 1, 3_000)).rejects.toThrow(/hook db-check failed/);
    await waitUntil(
      "the first attempt's Job to fail",
      async () => (await jobs()).some((j) => finished(j, 'Failed')),
      { timeoutMs: 30_000 },
    );
    const [failed] = await jobs();

    // The cause is fixed; the operator retries the step, which schedules a new activity.
    await dcA.core.deleteNamespacedResourceQuota({ name: 'no-pods', namespace: ns });
    await waitUntil('the quota to be gone', podAdmitted, { timeoutMs: 60_000 });
    await expect(runAs('2', 1, 60_000)).resolves.toBe('succeeded');
    const afterRetry = await jobs();
    expect(afterRetry).toHaveLength(2);
    const retried = afterRetry.find((j) => j.metadata!.name !== failed!.metadata!.name)!;
    expect(finished(retried, 'Complete')).toBe(true);
    expect(
      finished(
        afterRetry.find((j) => j.metadata!.name === failed!.metadata!.name)!,
        'Failed',
      ),
    ).toBe(true);

    // The same activity delivered again (its worker died): it finds its own Job and creates none.
    await expect(runAs('2', 2, 60_000)).resolves.toBe('succeeded');
    expect((await jobs()).map((j) => j.metadata!.uid)).toEqual(afterRetry.map((j) => j.metadata!.uid));

    // A later attempt does not take that success for its own: it runs a Job of its own.
    await expect(runAs('3', 1, 60_000)).resolves.toBe('succeeded');
    const all = await jobs();
    expect(all).toHaveLength(3);
    for (const job of all) expect(job.metadata!.name!.length).toBeLessThanOrEqual(63);
  });
});

describe('a Job hook whose operation is aborted', () => {
  const ns = uniqueName('hook-abort');
  const hook: Hook = {
    name: 'lock-writes',
    phase: 'pre-fence',
    job: { image: 'busybox:1.37', command: ['sh', '-c', 'true'] },
    timeout: '60s',
    onError: 'fail',
  };
  const batch = dcA.kubeConfig.makeApiClient(k8s.BatchV1Api);

  beforeAll(async () => {
    await dcA.core.createNamespace({ body: { metadata: { name: ns } } });
    // No pod can start: the Job stays running until it is deleted.
    await dcA.core.createNamespacedResourceQuota({
      namespace: ns,
      body: { metadata: { name: 'no-pods' }, spec: { hard: { pods: '0' } } },
    });
  });

  afterAll(async () => {
    await deleteNamespace(dcA, ns);
  });

  it('deletes its Job, so that the hook cannot act after the roll-back', async () => {
    const env = new MockActivityEnvironment({
      workflowExecution: { workflowId: 'pivot-hooks-test', runId: uniqueName('run') },
      activityId: '1',
    });
    const running = env.run(() => hooks.runJobHook(ctx, hook, ns, 60_000));
    const live = async () =>
      (
        await batch.listNamespacedJob({ namespace: ns, labelSelector: 'pivot.dev/hook=lock-writes' })
      ).items.filter((j) => !j.metadata?.deletionTimestamp);
    await waitUntil('the hook to create its Job', async () => (await live()).length === 1, {
      timeoutMs: 30_000,
    });
    env.cancel();
    await expect(running).rejects.toBeInstanceOf(CancelledFailure);
    await waitUntil('the Job to be deleted', async () => (await live()).length === 0, { timeoutMs: 30_000 });
  });
});
