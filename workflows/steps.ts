/**
 * Step bodies the per-application operations share: the tail that brings an application up on a
 * site (bind the replicas, start the workloads, hooks, traffic, verification) and the data-loss
 * figures for the report. Each returns the work of one plan step; the caller runs it with
 * `run.act(id, ...)` so that it is tracked, and decided on if it fails after the point of no return.
 */
import { workloadRefs, type StepContext, type VolumeSpec } from '../activities/types.ts';
import { mapStorageClass } from '../planner/resolve.ts';
import { parseDuration } from '../runbook/duration.ts';
import type { HookPhase, Runbook } from '../runbook/types.ts';
import { controlActivities, siteActivities, type OperationRun } from './engine.ts';

/**
 * patched() ids: a change to a workflow's commands after histories of it were recorded keeps the
 * old path for them (test/unit/replay.test.ts replays those histories).
 */
/** The new active site's protection record is written when the move is recorded (not only by its guard). */
export const PROTECTION_AT_TARGET = 'protection-record-at-target';

/** The tracker's step list entries for the hooks of a phase (none when the runbook has none). */
export function hookSteps(runbook: Runbook, phase: HookPhase, site: string): Array<[string, string, string]> {
  return runbook.spec.hooks.some((h) => h.phase === phase)
    ? [[`hooks-${phase}`, `run the ${phase} hooks`, site]]
    : [];
}

/** The steps that bring the application up on `to`, in plan order. */
export function bringUpSteps(runbook: Runbook, to: string): Array<[string, string, string]> {
  return [
    ['rebind-claims', `bind the replica volumes to their claims on ${to}`, to],
    ['scale-up-target', `start the workloads on ${to} in start order`, to],
    ...hookSteps(runbook, 'post-promote', to),
    ...(runbook.spec.traffic.length > 0
      ? [['repoint-traffic', `repoint traffic to ${to}`, to] as [string, string, string]]
      : []),
    ['verify', 'run the health checks', to],
  ];
}

export async function runHooks(
  run: OperationRun,
  ctx: StepContext,
  phase: HookPhase,
  site: string,
): Promise<void> {
  const hooks = run.input.runbook.spec.hooks.filter((h) => h.phase === phase);
  if (hooks.length === 0) return;
  const acts = siteActivities(site, 'storageWait');
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
