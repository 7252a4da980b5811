/**
 * Step bodies the per-application operations share: the tail that brings an application up on a
 * site (bind the replicas, start the workloads, hooks, traffic, verification) and the data-loss
 * figures for the report. Each returns the work of one plan step; the caller runs it with
 * `run.act(id, ...)` so that it is tracked, and decided on if it fails after the point of no return.
 */
import { ActivityCancellationType, patched } from '@temporalio/workflow';
import { workloadRefs, type StepContext, type VolumeSpec, type WorkloadRef } from '../activities/types.ts';
import { mapStorageClass } from '../planner/resolve.ts';
import { parseDuration } from '../runbook/duration.ts';
import type { Hook, HookPhase, Runbook } from '../runbook/types.ts';
import { controlActivities, siteActivities, type OperationRun } from './engine.ts';

/**
 * patched() ids: a change to a workflow's commands after histories of it were recorded keeps the
 * old path for them (test/unit/replay.test.ts replays those histories).
 */
/** The new active site's protection record is written when the move is recorded (not only by its guard). */
export const PROTECTION_AT_TARGET = 'protection-record-at-target';
/** A failover reads the replicas' last sync before its approval, to gate a loss beyond the RPO objective. */
export const RPO_GATE = 'rpo-gate';
/** The witness records the new active site as soon as its volumes are promoted, not at the end. */
export const ACTIVE_AT_PROMOTION = 'active-site-at-promotion';
/** `verify` runs every declared check, read only and within its timeout (it used to scale up again). */
export const VERIFY_CHECKS = 'verify-checks';
/** A failover fences the application alone on a source that answers; site fences have owners. */
export const PER_APP_FENCE = 'per-application-fence';
/** An abort waits for a running hook's activity to end before the operation rolls back. */
export const HOOKS_END_BEFORE_ROLLBACK = 'hooks-end-before-rollback';

/**
 * Runs the runbook's health checks on a site: WorkloadsReady reads (never scales) within its
 * timeout, and a Hook check runs the named hook within the hook's timeout; any failure fails the
 * check. `hookFor` gives the hook as it runs there (a drill moves it to its namespace).
 */
export async function runHealthChecks(
  acts: ReturnType<typeof siteActivities>,
  ctx: StepContext,
  runbook: Runbook,
  workloads: WorkloadRef[],
  replicas: Record<string, number>,
  namespace: string,
  hookFor: (hook: Hook) => Hook = (h) => h,
): Promise<void> {
  for (const check of runbook.spec.healthChecks) {
    if (check.kind === 'WorkloadsReady') {
      await acts.checkWorkloadsReady(ctx, workloads, replicas, parseDuration(check.timeout) ?? 180_000);
      continue;
    }
    const declared = runbook.spec.hooks.find((h) => h.name === check.hook);
    if (!declared) throw new Error(`health check ${check.name} names no hook ${check.hook}`);
    const hook = hookFor(declared);
    const timeoutMs = parseDuration(hook.timeout) ?? 60_000;
    if (hook.exec) await acts.runExecHook(ctx, hook, namespace, timeoutMs);
    else await acts.runJobHook(ctx, hook, namespace, timeoutMs);
  }
}

export async function runHooks(
  run: OperationRun,
  ctx: StepContext,
  phase: HookPhase,
  site: string,
): Promise<void> {
  const hooks = run.input.runbook.spec.hooks.filter((h) => h.phase === phase);
  if (hooks.length === 0) return;
  // An abort waits for a running hook to end (a Job hook's Job is deleted; an exec hook's command
  // cannot be stopped) before the operation rolls back: no hook acts after the rollback.
  const acts = patched(HOOKS_END_BEFORE_ROLLBACK)
    ? siteActivities(site, 'storageWait', {
        cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      })
    : siteActivities(site, 'storageWait');
  await run.act(`hooks-${phase}`, async () => {
    for (const hook of hooks) {
      try {
        const timeoutMs = parseDuration(hook.timeout) ?? 60_000;
        if (hook.exec) await acts.runExecHook(ctx, hook, run.namespace, timeoutMs);
        else await acts.runJobHook(ctx, hook, run.namespace, timeoutMs);
      } catch (err) {
        if (hook.onError === 'fail') throw err;
        run.tracker.note(`hook ${hook.name} failed and its policy is continue: ${String(err)}`);
      }
    }
  });
}

/**
 * Binds, starts, hooks, repoints and verifies on `to`. `leaving` is the site traffic is taken
 * from, when it can be asked (undefined: it cannot, e.g. it is down).
 */
export async function bringUp(
  run: OperationRun,
  ctx: StepContext,
  volumes: VolumeSpec[],
  replicas: Record<string, number>,
  leaving: { site: string; reachable: boolean },
): Promise<void> {
  const { runbook, from, to, storageClassMap } = run.input;
  const tgtWait = siteActivities(to, 'storageWait');
  const tgt = siteActivities(to, 'k8sMutation');
  const workloads = workloadRefs(runbook);
  await run.act('rebind-claims', () => {
    const classes = Object.fromEntries(
      volumes.map((v) => [
        v.storageClassName,
        mapStorageClass(storageClassMap, from, to, v.storageClassName),
      ]),
    );
    return tgtWait.rebindClaims(ctx, volumes, classes);
  });
  await run.act('scale-up-target', () => tgtWait.scaleUpWorkloads(ctx, workloads, replicas));
  await runHooks(run, ctx, 'post-promote', to);
  if (runbook.spec.traffic.length > 0) {
    await run.act('repoint-traffic', async () => {
      await tgt.pointTraffic(ctx, runbook.spec.traffic, run.namespace, true, to);
      if (leaving.reachable) {
        await siteActivities(leaving.site, 'k8sMutation').pointTraffic(
          ctx,
          runbook.spec.traffic,
          run.namespace,
          false,
          to,
        );
      } else {
        run.tracker.note(
          `${leaving.site} did not answer: its traffic objects still point at it until reprotect`,
        );
      }
    });
  }
  await run.act('verify', async () => {
    if (patched(VERIFY_CHECKS)) {
      await runHealthChecks(tgtWait, ctx, runbook, workloads, replicas, run.namespace);
      return;
    }
    for (const check of runbook.spec.healthChecks) {
      if (check.kind === 'WorkloadsReady') await tgtWait.scaleUpWorkloads(ctx, workloads, replicas);
    }
  });
}

/**
 * On the lab: counts, from the simulated array's write sequences, the writes the copies on
 * `lostSite` hold that the primary lacks (by default the source: what the promotion lost).
 */
export async function measureLoss(
  run: OperationRun,
  volumes: VolumeSpec[],
  lostSite: string = run.input.from,
): Promise<void> {
  try {
    const loss = await controlActivities().measureDataLoss(
      volumes.map((v) => v.volumeHandle),
      lostSite,
    );
    if (loss) run.tracker.measuredLoss = loss;
  } catch (err) {
    run.tracker.note(`the data loss on ${lostSite} could not be measured: ${String(err)}`);
  }
}
