/**
 * switchover: the planned move of one application from `from` to `to` with no data loss
 * (DESIGN.md section 2), step for step as `pivot plan switchover` prints it: quiesce the source,
 * demote it, wait for the final sync, promote the target (the point of no return), bind the
 * replicas, start the workloads in order, run the post-promote hooks, repoint traffic, verify, and
 * record the new active site with the next fencing epoch.
 *
 * Before the point of no return a failure runs the compensations newest-first (promote the source
 * back, scale it back up) and ends "rolled-back"; after it, Pivot never rolls back on its own: it
 * ends "needs-attention" with the failed step, the error and what to do.
 */
import {
  defineQuery,
  proxyActivities,
  setHandler,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { ControlActivities, SiteActivities } from '../activities/index.ts';
import { NON_RETRYABLE } from '../activities/failures.ts';
import type { ClaimRef, StepContext, VolumeSpec, WorkloadRef } from '../activities/types.ts';
import { CONTROL_TASK_QUEUE, siteTaskQueue } from '../common/task-queues.ts';
import { mapStorageClass } from '../planner/resolve.ts';
import { parseDuration } from '../runbook/duration.ts';
import type { Runbook } from '../runbook/types.ts';
import { OperationTracker, type OperationReport } from './progress.ts';

export interface SwitchoverInput {
  runbook: Runbook;
  from: string;
  to: string;
  requestedBy: string;
  reason: string;
  storageClassMap: Array<Record<string, string>>;
  /** How long a storage refusal may last before a step gives up on an attempt (default 10 s). */
  refusalGraceMs?: number;
}

export const progressQuery = defineQuery<OperationReport>('progress');

/** Named timeout and retry profiles; the non-retryable error types are declared, not inferred. */
const PROFILES = {
  k8sMutation: {
    startToCloseTimeout: '1 minute',
    retry: { initialInterval: '1 second', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
  },
  storageWait: {
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: '30 seconds',
    retry: { initialInterval: '2 seconds', maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE },
  },
} satisfies Record<string, ActivityOptions>;

function site(name: string, profile: keyof typeof PROFILES) {
  return proxyActivities<SiteActivities>({ taskQueue: siteTaskQueue(name), ...PROFILES[profile] });
}

export async function switchover(input: SwitchoverInput): Promise<OperationReport> {
  const { runbook, from, to } = input;
  const app = runbook.metadata.name;
  const operationId = workflowInfo().workflowId;
  const namespace = runbook.spec.namespaces[0] ?? 'default';
  const tracker = new OperationTracker(app, 'switchover', from, to, input.requestedBy, input.reason, [
    ['preflight', 'preflight checks', 'control'],
    ['quiesce-source', `scale the workloads on ${from} to 0 and wait until their pods are gone`, from],
    ['demote-source', `demote the volumes on ${from}`, from],
    ['final-sync', `wait until ${to} has every write made before the quiesce`, to],
    ['promote-target', `promote the volumes on ${to}`, to],
    ['rebind-claims', `bind the replica volumes to their claims on ${to}`, to],
    ['scale-up-target', `start the workloads on ${to} in start order`, to],
    ['hooks-post-promote', 'run the post-promote hooks', to],
    ['repoint-traffic', `repoint traffic to ${to}`, to],
    ['verify', 'run the health checks', to],
    ['record-active-site', `record ${to} as the active site and advance the fencing epoch`, 'control'],
  ]);
  setHandler(progressQuery, () => tracker.report());

  const control = proxyActivities<ControlActivities>({
    taskQueue: CONTROL_TASK_QUEUE,
    ...PROFILES.k8sMutation,
  });
  const [src, srcWait, tgt, tgtWait] = [
    site(from, 'k8sMutation'),
    site(from, 'storageWait'),
    site(to, 'k8sMutation'),
    site(to, 'storageWait'),
  ];
  const workloads: WorkloadRef[] = runbook.spec.workloads.map((w) => ({
    kind: w.kind,
    namespace: w.namespace ?? namespace,
    name: w.name,
    startOrder: w.startOrder,
  }));
  const compensations: Array<{ what: string; run: () => Promise<unknown> }> = [];
  let locked = false;
  try {
    const { ctx, volumes } = await tracker.step('preflight', async () => {
      const witness = await control.beginOperation(app, operationId);
      locked = true;
      if (witness.activeSite && witness.activeSite !== from) {
        throw new Error(
          `the witness records ${witness.activeSite} as the active site of ${app}, not ${from}`,
        );
      }
      await Promise.all([src.probeSite(), tgt.probeSite()]);
      const ctx: StepContext = { app, operationId, epoch: witness.epoch };
      tracker.epochBefore = witness.epoch;
      return { ctx, volumes: await src.describeVolumes(runbook) };
    });
    const claims: ClaimRef[] = volumes.map((v: VolumeSpec) => ({ namespace: v.namespace, name: v.claim }));

    const replicas = await tracker.step('quiesce-source', async () => {
      const recorded = await src.scaleDownWorkloads(ctx, workloads);
      compensations.unshift({
        what: `scale the workloads on ${from} back up`,
        run: () => srcWait.scaleUpWorkloads(ctx, workloads, recorded),
      });
      await srcWait.waitWorkloadsStopped(ctx, workloads);
      return recorded;
    });
    // Workflow time at this point is after the pods were confirmed gone: no write is later.
    const quiescedAt = new Date(Date.now()).toISOString();

    await tracker.step('demote-source', async () => {
      compensations.unshift({
        what: `promote the volumes on ${from} back`,
        run: () => srcWait.ensureReplicationState(ctx, claims, 'primary'),
      });
      await srcWait.ensureReplicationState(ctx, claims, 'secondary');
    });
    await tracker.step('final-sync', () => tgtWait.waitForSyncSince(ctx, claims, quiescedAt));

    await tracker.step('promote-target', async () => {
      // A refused promotion stays requested at the storage: withdraw it before the source is promoted back.
      compensations.unshift({
        what: `withdraw the promotion of the volumes on ${to}`,
        run: () => tgtWait.ensureReplicationState(ctx, claims, 'secondary'),
      });
      await tgtWait.ensureReplicationState(ctx, claims, 'primary', {
        refusalGraceMs: input.refusalGraceMs ?? 10_000,
      });
    });
    tracker.pointOfNoReturnPassed = true;

    await tracker.step('rebind-claims', () => {
      const classes = Object.fromEntries(
        volumes.map((v) => [
          v.storageClassName,
          mapStorageClass(input.storageClassMap, from, to, v.storageClassName),
        ]),
      );
      return tgtWait.rebindClaims(ctx, volumes, classes);
    });
    await tracker.step('scale-up-target', () => tgtWait.scaleUpWorkloads(ctx, workloads, replicas));
    await tracker.step('hooks-post-promote', async () => {
      for (const hook of runbook.spec.hooks.filter((h) => h.phase === 'post-promote')) {
        try {
          await tgtWait.runJobHook(ctx, hook, namespace, parseDuration(hook.timeout) ?? 60_000);
        } catch (err) {
          if (hook.onError === 'fail') throw err;
          tracker.note(`hook ${hook.name} failed and its policy is continue: ${String(err)}`);
        }
      }
    });
    await tracker.step('repoint-traffic', async () => {
      await tgt.pointTraffic(ctx, runbook.spec.traffic, namespace, true, to);
      await src.pointTraffic(ctx, runbook.spec.traffic, namespace, false, to);
    });
    await tracker.step('verify', async () => {
      for (const check of runbook.spec.healthChecks) {
        if (check.kind === 'WorkloadsReady') await tgtWait.scaleUpWorkloads(ctx, workloads, replicas);
      }
    });
    await tracker.step('record-active-site', async () => {
      const epoch = await control.recordActiveSite(
        app,
        operationId,
        ctx.epoch,
        to,
        `switchover ${from} → ${to}: ${input.reason}`,
      );
      tracker.epochAfter = epoch;
      await Promise.all([
        tgt.recordSiteState(app, runbook.spec.namespaces, to, epoch),
        src.recordSiteState(app, runbook.spec.namespaces, to, epoch),
      ]);
    });
    tracker.finish('succeeded');
  } catch (err) {
    if (compensations.length === 0 && !tracker.pointOfNoReturnPassed) {
      tracker.finish('refused', err, 'nothing was changed: fix the cause and run the switchover again');
    } else if (!tracker.pointOfNoReturnPassed) {
      for (const c of compensations) {
        try {
          await c.run();
          tracker.note(`compensated: ${c.what}`);
        } catch (compErr) {
          tracker.note(`compensation failed: ${c.what}: ${String(compErr)}`);
        }
      }
      tracker.finish(
        'rolled-back',
        err,
        `the source ${from} serves again; fix the cause and run the switchover again`,
      );
    } else {
      tracker.finish(
        'needs-attention',
        err,
        `the volumes are primary on ${to}: fix the cause, then retry the failed step; never promote ${from} back without a reprotect`,
      );
    }
  } finally {
    if (locked) await control.endOperation(app, operationId, tracker.report().outcome);
  }
  return tracker.report();
}
