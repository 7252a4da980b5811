/**
 * The drill (docs/adr/0004-drills.md): proves on the standby site that an application would come
 * up within its objectives, on clones of its replicas in an isolated namespace, and cleans up
 * everything it made, always: after success, failure, an abort or a cancellation. Production is
 * only read. The report is the evidence: steps and timings, objectives vs achieved, the verdict
 * with its reasons, the versions; the control worker keeps it for the retention period.
 */
import {
  CancellationScope,
  executeChild,
  isCancellation,
  patched,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { DrillClone, DrillPlace } from '../activities/drill.ts';
import { workloadKey, workloadRefs, type StepContext } from '../activities/types.ts';
import { parseDuration } from '../runbook/duration.ts';
import type { Hook, Runbook } from '../runbook/types.ts';
import {
  abortUpdate,
  controlActivities,
  progressQuery,
  siteActivities,
  type DecisionRequest,
} from './engine.ts';
import { describeError, OperationTracker, type OperationReport } from './progress.ts';
import { drillWorkflowId } from './ids.ts';
import { operationSteps } from '../planner/step-catalog.ts';
import { runHealthChecks, VERIFY_CHECKS } from './steps.ts';

export interface DrillInput {
  runbook: Runbook;
  /** The active site (only read) and the standby site the drill runs on. */
  active: string;
  site: string;
  requestedBy: string;
  reason: string;
  trigger?: string;
  /** Evidence: the Pivot version and the runbook's digest, as the starter saw them. */
  versions: { pivot: string; runbook: string };
  /** How long the evidence is kept (days). */
  retentionDays: number;
}

export interface DrillEvidence {
  id: string;
  site: string;
  namespace: string;
  /** clone: on clones, production untouched; switchover: a real switchover and failback. */
  mode: 'clone' | 'switchover';
  objectives: { rtoMs: number; rpoMs: number };
  /** Would-be RTO: clone, start, hooks and checks; RPO: the clones' data age at the snapshot. */
  achieved: { rtoMs?: number; rpoMs?: number };
  verdict: 'pass' | 'fail';
  reasons: string[];
  clones: DrillClone[];
  cleanup: { done: boolean; removed: string[]; error?: string };
  versions: { pivot: string; runbook: string };
}

export interface DrillReport extends OperationReport {
  drill: DrillEvidence;
}

/** A drill's id: the application and the run's start time (deterministic: from the history). */
export function drillId(app: string): string {
  return `${app}-${workflowInfo().runStartTime.toISOString().replace(/[-:.]/g, '').slice(0, 18)}`;
}

/** The evidence a drill starts with: the runbook's objectives, nothing achieved yet. */
export function newEvidence(
  runbook: Runbook,
  fields: Pick<DrillEvidence, 'id' | 'site' | 'namespace' | 'mode' | 'versions' | 'cleanup'>,
): DrillEvidence {
  return {
    ...fields,
    objectives: {
      rtoMs: parseDuration(runbook.spec.objectives.rto) ?? 0,
      rpoMs: parseDuration(runbook.spec.objectives.rpo) ?? 0,
    },
    achieved: {},
    verdict: 'fail',
    reasons: [],
    clones: [],
  };
}

/** The report (a copy) and the progress query answering with it. */
export function reportDrill(tracker: OperationTracker, evidence: DrillEvidence): () => DrillReport {
  const report = (): DrillReport => ({
    ...tracker.report(),
    drill: JSON.parse(JSON.stringify(evidence)) as DrillEvidence,
  });
  setHandler(progressQuery, report);
  return report;
}

/** Checks who decides, and records the decision in the report. */
export function validDecider(r: DecisionRequest): void {
  if (typeof r?.by !== 'string' || r.by.trim() === '') throw new Error('say who decides (by)');
}

export function recordDecision(
  tracker: OperationTracker,
  action: 'approve' | 'abort',
  r: DecisionRequest,
): void {
  tracker.decisions.push({
    action,
    by: r.by,
    at: new Date().toISOString(),
    ...(r.reason ? { reason: r.reason } : {}),
  });
}

export async function drill(input: DrillInput): Promise<DrillReport> {
  const { runbook, site, active } = input;
  const app = runbook.metadata.name;
  const namespace = runbook.spec.namespaces[0] ?? 'default';
  const id = drillId(app);
  const place: DrillPlace = { id, app, namespace, drillNamespace: `${namespace}-drill`.slice(0, 63) };
  const tracker = new OperationTracker(
    {
      app,
      operation: 'drill',
      from: active,
      to: site,
      requestedBy: input.requestedBy,
      reason: input.reason,
      ...(input.trigger ? { trigger: input.trigger } : {}),
      mode: 'planned',
    },
    operationSteps('drill', { runbook, from: active, to: site, approval: false }),
  );
  const evidence = newEvidence(runbook, {
    id,
    site,
    namespace: place.drillNamespace,
    mode: 'clone',
    versions: input.versions,
    cleanup: { done: false, removed: [] },
  });
  const report = reportDrill(tracker, evidence);

  const work = new CancellationScope();
  /** While true, an abort cancels the rehearsal; after it, only the cleanup is left. */
  let rehearsing = false;
  let abortedBy: DecisionRequest | undefined;
  setHandler(
    abortUpdate,
    (r) => {
      abortedBy = r;
      recordDecision(tracker, 'abort', r);
      work.cancel();
      return report();
    },
    {
      validator: (r: DecisionRequest) => {
        validDecider(r);
        if (!rehearsing || abortedBy) {
          throw new Error(
            `the drill of ${app} is already ending (cleaning up): there is nothing left to abort`,
          );
        }
      },
    },
  );

  let failure: unknown;
  rehearsing = true;
  try {
    await work.run(() => rehearse(input, place, tracker, evidence));
  } catch (err) {
    failure = err;
  }
  rehearsing = false;

  // Always: clean up, even when cancelled (a non-cancellable scope), then keep the evidence.
  await CancellationScope.nonCancellable(async () => {
    try {
      const { removed } = await tracker.step('cleanup', () =>
        siteActivities(site, 'storageWait').cleanupDrill(place),
      );
      evidence.cleanup = { done: true, removed };
    } catch (err) {
      evidence.cleanup = { done: false, removed: [], error: describeError(err) };
    }
    const cancelled = failure !== undefined && (isCancellation(failure) || abortedBy !== undefined);
    judge(evidence, tracker, failure, cancelled);
    if (cancelled) {
      tracker.finish(
        'aborted',
        abortedBy ? `aborted by ${abortedBy.by}` : 'cancelled',
        'nothing to do: the drill cleaned up',
      );
    } else if (evidence.verdict === 'pass') {
      tracker.finish('succeeded');
    } else {
      tracker.finish(
        'failed',
        failure ?? evidence.reasons.join('; '),
        evidence.cleanup.done
          ? 'fix what the reasons say, then run the drill again'
          : `remove what the drill left on ${site} (namespace ${place.drillNamespace}, snapshot contents pivot-drill-${place.drillNamespace}-*), then fix the cause`,
      );
    }
    await controlActivities().recordDrill(app, id, report(), input.retentionDays);
  });
  return report();
}

/** The drill's work up to the health checks; the caller cleans up whatever happens here. */
async function rehearse(
  input: DrillInput,
  place: DrillPlace,
  tracker: OperationTracker,
  evidence: DrillEvidence,
): Promise<void> {
  const { runbook, site, active } = input;
  const app = runbook.metadata.name;
  const standby = siteActivities(site, 'storageWait');
  const workloads = workloadRefs(runbook);

  const { ctx, volumes, replicas, lastSync } = await tracker.step('preflight', async () => {
    const state = await controlActivities().witnessState(app);
    // Before the first operation the witness names no active site: the sites' own record (which
    // the plan read) stands. A different one means the application moved since the plan.
    if (state.activeSite !== undefined && state.activeSite !== active) {
      throw new Error(`the witness names ${state.activeSite} as the active site, not ${active}: re-plan`);
    }
    if (site === active) throw new Error(`${site} is the active site: a drill runs on the standby`);
    if (state.fencedSites.includes(site)) {
      throw new Error(`${site} is fenced: its copies may have diverged; reprotect it before drilling`);
    }
    // What production is, from the active site (only read): its claims' volumes (a replica has
    // the same volume handle on the standby) and replica counts; else the protection record.
    const source = siteActivities(active, 'bestEffort');
    let volumes;
    let replicas: Record<string, number>;
    let lastSync: string | undefined;
    try {
      volumes = await source.describeVolumes(runbook);
      replicas = await source.currentReplicas(workloads);
      lastSync = await source.oldestReplicaSync(
        volumes.map((v) => ({ namespace: v.namespace, name: v.claim })),
      );
    } catch {
      const record = await controlActivities().protection(app);
      if (!record) throw new Error(`${active} does not answer and no protection record names the volumes`);
      ({ volumes, replicas } = record);
      tracker.note(
        `${active} did not answer: volumes and replica counts from the protection record of ${record.at}`,
      );
    }
    if (volumes.length === 0)
      throw new Error(`no replicated volume of ${app} was found: there is nothing to drill`);
    const ctx: StepContext = { app, operationId: place.id, epoch: state.epoch };
    return { ctx, volumes, replicas, lastSync };
  });

  await tracker.step('isolate', () => standby.isolateDrill(ctx, place));
  const started = Date.now();
  evidence.clones = await tracker.step('clone-replicas', () =>
    standby.cloneReplicas(ctx, place, volumes, lastSync),
  );
  const copies = await tracker.step('start-workloads', async () => {
    const copies = await standby.copyWorkloads(ctx, place, workloads);
    await standby.scaleUpWorkloads(ctx, copies, drillCounts(workloads, copies, replicas));
    return copies;
  });
  // The drill copy lives only in the drill namespace: every hook runs there, whatever namespace
  // the runbook gives it (validation fills in the production one).
  const hooks = runbook.spec.hooks
    .filter((h) => h.phase === 'post-promote')
    .map((h) => inDrill(h, place.drillNamespace));
  if (hooks.length > 0) {
    await tracker.step('hooks-post-promote', async () => {
      for (const hook of hooks) {
        const timeoutMs = parseDuration(hook.timeout) ?? 60_000;
        try {
          if (hook.exec) await standby.runExecHook(ctx, hook, place.drillNamespace, timeoutMs);
          else await standby.runJobHook(ctx, hook, place.drillNamespace, timeoutMs);
        } catch (err) {
          if (hook.onError === 'fail') throw err;
          tracker.note(`hook ${hook.name} failed and its policy is continue: ${describeError(err)}`);
        }
      }
    });
  }
  await tracker.step('verify', async () => {
    if (patched(VERIFY_CHECKS)) {
      await runHealthChecks(
        standby,
        ctx,
        runbook,
        copies,
        drillCounts(workloads, copies, replicas),
        place.drillNamespace,
        (h) => inDrill(h, place.drillNamespace),
      );
      return;
    }
    for (const check of runbook.spec.healthChecks) {
      if (check.kind === 'WorkloadsReady') {
        await standby.scaleUpWorkloads(ctx, copies, drillCounts(workloads, copies, replicas));
      }
    }
  });
  evidence.achieved.rtoMs = Date.now() - started;
}

/** A hook as it runs in a drill: in the drill namespace, whatever namespace the runbook gives it. */
function inDrill(h: Hook, namespace: string): Hook {
  return {
    ...h,
    ...(h.job ? { job: { ...h.job, namespace } } : {}),
    ...(h.exec ? { exec: { ...h.exec, namespace } } : {}),
  };
}

/** The production replica counts, keyed by the drill copies. */
function drillCounts(
  workloads: ReturnType<typeof workloadRefs>,
  copies: ReturnType<typeof workloadRefs>,
  replicas: Record<string, number>,
): Record<string, number> {
  return Object.fromEntries(
    copies.map((c, i) => [workloadKey(c), replicas[workloadKey(workloads[i]!)] ?? 0]),
  );
}

/** The verdict: every step passed, the objectives were met, and the drill cleaned up. */
function judge(
  evidence: DrillEvidence,
  tracker: OperationTracker,
  failure: unknown,
  cancelled: boolean,
): void {
  const reasons: string[] = [];
  if (cancelled) reasons.push('the drill was cancelled before it finished');
  else if (failure !== undefined) {
    const step = tracker.report().steps.find((s) => s.state === 'failed');
    reasons.push(`${step ? `step ${step.id} failed: ` : ''}${describeError(failure)}`);
  }
  const syncs = evidence.clones.map((c) =>
    c.lastSyncTime ? Date.parse(c.snapshotAt) - Date.parse(c.lastSyncTime) : NaN,
  );
  if (evidence.clones.length > 0) {
    if (syncs.some((s) => Number.isNaN(s))) {
      reasons.push('a replica reports no last sync time: the clone data age is unknown');
    } else {
      evidence.achieved.rpoMs = Math.max(0, ...syncs);
      if (evidence.achieved.rpoMs > evidence.objectives.rpoMs) {
        reasons.push(
          `RPO objective missed: the clones' data was ${(evidence.achieved.rpoMs / 1000).toFixed(1)} s old (objective ${evidence.objectives.rpoMs / 1000} s)`,
        );
      }
    }
  }
  if (evidence.achieved.rtoMs !== undefined && evidence.achieved.rtoMs > evidence.objectives.rtoMs) {
    reasons.push(
      `RTO objective missed: up and verified in ${(evidence.achieved.rtoMs / 1000).toFixed(1)} s (objective ${evidence.objectives.rtoMs / 1000} s)`,
    );
  }
  if (!evidence.cleanup.done) reasons.push(`the cleanup failed: ${evidence.cleanup.error ?? 'unknown'}`);
  evidence.reasons = reasons;
  evidence.verdict = reasons.length === 0 ? 'pass' : 'fail';
}

/** What a drill schedule starts each time it fires (api/schedules.ts). */
export interface ScheduledDrillInput {
  schedule: string;
  apps?: string[];
  site?: string;
  reason: string;
}

export interface ScheduledDrillResult {
  schedule: string;
  drills: Array<{ app: string; id?: string; outcome: string; verdict?: 'pass' | 'fail'; detail?: string }>;
  refused: string[];
}

/**
 * One firing of a drill schedule: plans the drills now (the standby of each application as it
 * stands) and runs them as children under their usual ids, so that a scheduled drill and a
 * manual one of the same application never run at once. It lasts as long as its drills: with the
 * schedule's overlap policy SKIP, a firing while one runs is skipped.
 */
export async function scheduledDrill(input: ScheduledDrillInput): Promise<ScheduledDrillResult> {
  const { drills, refused } = await controlActivities().planDrills({
    ...(input.apps ? { apps: input.apps } : {}),
    ...(input.site ? { site: input.site } : {}),
    schedule: input.schedule,
    reason: input.reason,
  });
  const results = await Promise.all(
    drills.map(async (d): Promise<ScheduledDrillResult['drills'][number]> => {
      const app = d.runbook.metadata.name;
      try {
        const report = await executeChild(drill, {
          workflowId: drillWorkflowId(app),
          args: [d],
          parentClosePolicy: 'REQUEST_CANCEL',
        });
        return { app, id: report.drill.id, outcome: report.outcome, verdict: report.drill.verdict };
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) {
          return { app, outcome: 'skipped', detail: 'a drill of this application was already running' };
        }
        return { app, outcome: 'failed', detail: describeError(err) };
      }
    }),
  );
  return { schedule: input.schedule, drills: results, refused };
}
