/**
 * The chaos suite (docs/reliability.md): the lab's sample application moves from site to site
 * while workers crash, the witness and Temporal restart, the sites' APIs fail, triggers race and a
 * rival operation moves the epoch on. After every operation the invariants are checked through both
 * sites' APIs and the simulated array; the suite ends with its count and a JSON report.
 *
 * `npm test` runs the `ci` profile (a few step boundaries per fault); `npm run test:chaos` runs
 * `full` (every boundary of the switchover, and the failover).
 */
import { jest } from '@jest/globals';
import type { WorkflowHandle } from '@temporalio/client';
import { LOCK_TAKEOVER_GRACE_MS } from '../../activities/control.ts';
import { createSiteActivities } from '../../activities/index.ts';
import { UNSAFE_SWITCHES } from '../../activities/unsafe.ts';
import { workloadRefs } from '../../activities/types.ts';
import { CRD } from '../../common/k8s.ts';
import { CONTROL_TASK_QUEUE } from '../../common/task-queues.ts';
import { SAMPLE_APP } from '../../lab/seed.ts';
import { sleep, waitUntil } from '../../common/wait.ts';
import { fenceFor } from '../../config/fence.ts';
import { loadConfig } from '../../config/load.ts';
import type { CrashablePart } from '../../lab/lab.ts';
import { REPO_ROOT } from '../../lab/layout.ts';
import { loadRunbookDir } from '../../planner/inputs.ts';
import type { Runbook } from '../../runbook/types.ts';
import type { OperationInput } from '../../workflows/engine.ts';
import { operationWorkflowId, siteOperationWorkflowId } from '../../workflows/ids.ts';
import type { OperationReport } from '../../workflows/progress.ts';
import type { ScheduledDrillResult } from '../../workflows/drill.ts';
import type { SiteOperationReport } from '../../workflows/site.ts';
import { createDrillSchedule, deleteDrillSchedule } from '../../api/schedules.ts';
import type { AlertTriggerReport } from '../../workflows/alert.ts';
import { grafanaBody, signedHeaders } from '../lab/alerts.ts';
import { apiProxy, lab, resetSim, sim, status } from '../lab/helpers.ts';
import { connectPivot, type LabPivot } from '../lab/temporal.ts';
import {
  activeSite,
  approveWhenAsked,
  askedForApproval,
  ChaosRecorder,
  checkAfter,
  PROFILE,
  reachStep,
  settle,
  SITES,
} from './harness.ts';
import {
  APP,
  oldPrimaryStaysDown,
  siteFootprint,
  SplitBrainWatch,
  staleOperationStill,
} from './invariants.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

// A failover with a site cut off, its return, a reprotect and a failback take minutes.
jest.setTimeout(600_000);

const recorder = new ChaosRecorder();
let pivot: LabPivot;
let runbook: Runbook;

beforeAll(async () => {
  pivot = await connectPivot();
  [runbook] = loadRunbookDir(join(REPO_ROOT, 'runbooks'), ['dc-a', 'dc-b']) as [Runbook];
  await resetSim();
});

// Each scenario starts on a whole lab with no fault, whatever the one before it left.
beforeEach(async () => {
  for (const site of ['dc-a', 'dc-b']) if (await siteDown(site)) await lab.reviveSite(site);
  await resetSim();
});

afterAll(async () => {
  await apiProxy.clear().catch(() => undefined);
  // Whatever a scenario left down comes back: a site cut off with its replication link too.
  for (const site of ['dc-a', 'dc-b'])
    if (await siteDown(site).catch(() => false)) await lab.reviveSite(site);
  await lab.up();
  await resetSim();
  const file = recorder.write();
  process.stdout.write(`${recorder.summary()}\n(details: ${file})\n`);
  try {
    // The other suites start from orders active on dc-a, as the lab seeds it.
    const { from } = await activeSite(pivot);
    if (from !== 'dc-a') {
      const home = await settle(await startOperation('switchover', from, 'dc-a'));
      if (home.outcome !== 'succeeded') {
        throw new Error(`orders could not be moved back to dc-a: ${home.error ?? home.outcome}`);
      }
    }
  } finally {
    await pivot?.close();
  }
}, 300_000);

function input(from: string, to: string, rb: Runbook = runbook): OperationInput {
  const config = loadConfig(lab.layout.configFile);
  return {
    runbook: rb,
    from,
    to,
    requestedBy: 'chaos',
    reason: 'chaos suite',
    storageClassMap: config.storageClassMap,
    fence: fenceFor(config, from, to),
  };
}

type OperationType = 'switchover' | 'failover' | 'reprotect' | 'failback';
type CheckOptions = NonNullable<Parameters<typeof checkAfter>[6]>;

function startOperation(
  operation: OperationType,
  from: string,
  to: string,
  rb: Runbook = runbook,
): Promise<WorkflowHandle> {
  return pivot.client.workflow.start(operation, {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId: operationWorkflowId(APP),
    workflowIdConflictPolicy: 'USE_EXISTING',
    args: [input(from, to, rb)],
  });
}

/** The switchover's steps, in order; `ci` takes a few, `full` every one. */
const SWITCHOVER_STEPS = [
  'preflight',
  'quiesce-source',
  'demote-source',
  'final-sync',
  'promote-target',
  'rebind-claims',
  'scale-up-target',
  'repoint-traffic',
  'verify',
  'record-active-site',
];
const pick = (all: string[], ci: string[]): string[] => (PROFILE === 'full' ? all : ci);
/** A test the `full` profile alone runs (skipped, and listed as such, in `ci`). */
const fullOnly = PROFILE === 'full' ? it : it.skip;

/**
 * One switchover of the application to the other site with `inject` run when it reaches `step`;
 * then every invariant. Returns the violations and the report.
 */
async function disturbedSwitchover(
  scenario: string,
  fault: string,
  step: string,
  inject: (handle: WorkflowHandle) => Promise<void>,
  heal: () => Promise<void> = () => Promise.resolve(),
  options: CheckOptions = {},
  rb: Runbook = runbook,
): Promise<{ violations: string[]; report: OperationReport }> {
  const { from, to, epoch } = await activeSite(pivot);
  const watch = await SplitBrainWatch.start();
  const handle = await startOperation('switchover', from, to, rb);
  await reachStep(handle, step);
  await inject(handle);
  await heal();
  const report = await settle(handle);
  const violations = await checkAfter(
    recorder,
    pivot,
    { scenario, fault, step },
    report,
    watch,
    epoch,
    options,
  );
  return { violations, report };
}

async function siteDown(site: string): Promise<boolean> {
  return (await status()).sites.find((s) => s.name === site)?.state !== 'running';
}

/** Runs an operation after a scenario's fault (a reprotect, a failback) and checks it too. */
async function followUp(scenario: string, operation: OperationType, from: string, to: string): Promise<void> {
  const { epoch } = await activeSite(pivot);
  const watch = await SplitBrainWatch.start();
  const report = await settle(await startOperation(operation, from, to));
  const violations = await checkAfter(
    recorder,
    pivot,
    { scenario, fault: `follow-up: ${operation}` },
    report,
    watch,
    epoch,
    { followUp: true },
  );
  expect(violations).toEqual([]);
  expect(report.outcome).toBe('succeeded');
}

/** After a failover away from `from`: reprotect it, then bring the application home, each checked. */
async function reprotectAndReturn(scenario: string, from: string, to: string): Promise<void> {
  await followUp(scenario, 'reprotect', to, from);
  await followUp(scenario, 'failback', to, from);
}

/**
 * A failover of the application away from its active site, which a partition cut off (its pods go
 * on writing to its copies until the storage fence holds), with `inject` run when the failover
 * reaches `step`. Whatever is still down then returns, the old primary included, and every
 * invariant is checked, with the old primary's: it accepts no write and stays down.
 */
async function disturbedFailover(o: {
  scenario: string;
  fault: string;
  step: string;
  inject: (sites: { from: string; to: string }) => Promise<void>;
  heal?: (sites: { from: string; to: string }) => Promise<void>;
  /** How on-call approves (default: accepting a loss of up to 10 minutes). */
  approve?: (handle: WorkflowHandle) => Promise<void>;
  options?: CheckOptions;
}): Promise<{ violations: string[]; report: OperationReport; from: string; to: string }> {
  const { from, to, epoch } = await activeSite(pivot);
  const watch = await SplitBrainWatch.start();
  await lab.partitionSite(from);
  const handle = await startOperation('failover', from, to);
  await (o.approve ?? approveWhenAsked)(handle);
  await reachStep(handle, o.step);
  await o.inject({ from, to });
  await o.heal?.({ from, to });
  const report = await settle(handle);
  for (const site of [to, from]) if (await siteDown(site)) await lab.reviveSite(site);
  const extra = o.options?.extra;
  const violations = await checkAfter(
    recorder,
    pivot,
    { scenario: o.scenario, fault: o.fault, step: o.step },
    report,
    watch,
    epoch,
    {
      ...o.options,
      extra: async () => [await oldPrimaryStaysDown(SITES[from]!, from), ...(extra ? await extra() : [])],
    },
  );
  return { violations, report, from, to };
}

/** The failover's steps after the approval, in order; `ci` takes a few, `full` every one. */
const FAILOVER_STEPS = [
  'fence-witness',
  'fence-storage',
  'quiesce-source',
  'promote-target',
  'rebind-claims',
  'scale-up-target',
  'verify',
  'record-active-site',
];

/**
 * Starts again what a crash took down. Twice, a few seconds apart: a worker that lost Temporal
 * while it was down exits, and the second pass starts it again.
 */
async function recover(): Promise<void> {
  await lab.up();
  await sleep(3000);
  await lab.up();
}

/**
 * A switchover that a rival overtakes at `step`: it moves the application's epoch on in the
 * witness, as another operation would. With `mechanismOff`, the workers run with the epoch guard
 * switched off, and the invariants must catch the stale operation acting.
 */
async function staleEpochScenario(
  step: string,
  mechanismOff?: string,
): Promise<{ violations: string[]; report: OperationReport }> {
  // For the self-check the target's writes are slowed (through the API proxy), so that the
  // operation still has writes to make after the rival moves the epoch on.
  // The switchover's target (the witness names it active once it is promoted).
  const { to: target } = await activeSite(pivot);
  if (mechanismOff) {
    await apiProxy.setFaults(target, { latencyMs: SLOW_WRITE_MS, match: '^(POST|PUT|PATCH|DELETE) ' });
  }
  let atRival = '';
  try {
    return await disturbedSwitchover(
      mechanismOff ? 'self-check: stale epoch' : 'stale epoch',
      'epoch advanced by a rival',
      step,
      async () => {
        const now = await pivot.witness.state(APP);
        await pivot.witness.advanceEpoch(APP, {
          expectEpoch: now.epoch,
          actor: 'chaos-rival',
          reason: 'chaos: a rival operation',
        });
        // A write already on its way when the epoch moved lands (the guard checks before each write,
        // not during one): the footprint is taken once it has.
        if (mechanismOff) await sleep(SLOW_WRITE_MS + 1000);
        atRival = await siteFootprint(SITES[target]!);
      },
      undefined,
      {
        othersAdvanced: 1,
        notApplicable: {
          'an actionable end, served from one site':
            'the rival took the application over and left it stopped; the stale operation must not restart it',
          ...(mechanismOff
            ? { 'no effect applied twice': 'the stale operation is let loose on purpose' }
            : {}),
        },
        extra: async () => [await staleOperationStill(SITES[target]!, target, atRival)],
        ...(mechanismOff ? { mechanismOff } : {}),
      },
    );
  } finally {
    await apiProxy.clear();
  }
}

const SLOW_WRITE_MS = 1500;

/** The states the application's VolumeReplications report on a site. */
async function vrStates(site: string): Promise<string[]> {
  const list = (await SITES[site]!.custom.listNamespacedCustomObject({
    ...CRD.volumeReplication,
    namespace: APP,
  })) as { items: Array<{ status?: { state?: string } }> };
  return [...new Set(list.items.map((v) => v.status?.state ?? 'Unknown'))];
}

/** The last sync times (ms) the application's replicas report on a site (NaN: none yet). */
async function lastSyncTimes(site: string): Promise<number[]> {
  const list = (await SITES[site]!.custom.listNamespacedCustomObject({
    ...CRD.volumeReplication,
    namespace: APP,
  })) as { items: Array<{ status?: { lastSyncTime?: string } }> };
  return list.items.map((v) => Date.parse(v.status?.lastSyncTime ?? ''));
}

/** Promotes the application's volumes on `site` and starts it there, at the current epoch. */
async function restoreSource(site: string): Promise<void> {
  const acts = createSiteActivities(SITES[site]!, pivot.witness);
  const ctx = { app: APP, operationId: 'chaos-by-hand', epoch: (await pivot.witness.state(APP)).epoch };
  const claims = SAMPLE_APP.claims.map((name) => ({ namespace: APP, name }));
  await acts.ensureReplicationState(ctx, claims, 'primary');
  const workloads = workloadRefs(runbook);
  await acts.scaleUpWorkloads(ctx, workloads, await acts.currentReplicas(workloads));
}

describe('chaos', () => {
  describe('a worker crashes (SIGKILL) and comes back', () => {
    const cases: Array<[CrashablePart, string]> = [
      ...pick(SWITCHOVER_STEPS, ['quiesce-source', 'final-sync', 'rebind-claims']).map(
        (s) => ['worker-control', s] as [CrashablePart, string],
      ),
      ...pick(['quiesce-source', 'demote-source', 'rebind-claims', 'scale-up-target'], ['rebind-claims']).map(
        (s) => ['worker-dc-b', s] as [CrashablePart, string],
      ),
    ];
    it.each(cases)('%s at %s: the switchover resumes and completes', async (part, step) => {
      // The target worker is the one the moving steps run on; crash whichever side is the target.
      const { to } = await activeSite(pivot);
      const victim: CrashablePart = part === 'worker-control' ? part : (`worker-${to}` as CrashablePart);
      const { violations, report } = await disturbedSwitchover(
        'worker crash',
        `SIGKILL ${victim}`,
        step,
        () => lab.crash(victim),
        recover,
      );
      expect(violations).toEqual([]);
      expect(report.outcome).toBe('succeeded');
    });
  });

  describe('the witness and Temporal restart', () => {
    it.each([
      ['witness', 'final-sync'],
      ['temporal', 'rebind-claims'],
    ] as Array<[CrashablePart, string]>)(
      '%s killed at %s and restarted with its data',
      async (part, step) => {
        const { violations, report } = await disturbedSwitchover(
          'restart',
          `SIGKILL ${part}, restart`,
          step,
          () => lab.crash(part),
          async () => {
            await lab.up();
          },
        );
        expect(violations).toEqual([]);
        expect(report.outcome).toBe('succeeded');
      },
    );
  });

  describe("the sites' APIs fail", () => {
    it.each([
      ['503 on 20% of requests, 50 ms latency', { errorRate: 0.2, status: 503 as const, latencyMs: 50 }],
      ['429 on 20% of requests', { errorRate: 0.2, status: 429 as const }],
      ['10% of connections cut', { dropRate: 0.1 }],
    ])('%s on both sites, polling waits included: the switchover completes', async (what, faults) => {
      const before = await apiProxy.report();
      const { violations, report } = await disturbedSwitchover('flaky API', what, 'preflight', async () => {
        await apiProxy.setFaults('dc-a', faults);
        await apiProxy.setFaults('dc-b', faults);
      });
      const after = await apiProxy.report();
      await apiProxy.clear();
      const injected = (['dc-a', 'dc-b'] as const).reduce(
        (n, s) =>
          n +
          after[s]!.counters.errors -
          before[s]!.counters.errors +
          after[s]!.counters.drops -
          before[s]!.counters.drops,
        0,
      );
      expect(violations).toEqual([]);
      expect(report.outcome).toBe('succeeded');
      // The faults reached Pivot: otherwise this scenario proves nothing.
      expect(injected).toBeGreaterThan(0);
    });
  });

  describe("the target's API stops answering", () => {
    it('blackholed for 8 s in the middle of the scale-up: the switchover completes', async () => {
      const { to } = await activeSite(pivot);
      const held = async () => (await apiProxy.report())[to]!.counters.blackholed;
      const before = await held();
      const { violations, report } = await disturbedSwitchover(
        'flaky API',
        `${to}'s API blackholed for 8 s`,
        'scale-up-target',
        async () => {
          await apiProxy.setFaults(to, { blackhole: true });
          await sleep(8000);
        },
        async () => {
          await apiProxy.clear();
        },
      );
      expect(violations).toEqual([]);
      expect(report.outcome).toBe('succeeded');
      // Requests were held unanswered: otherwise this scenario proves nothing.
      expect(await held()).toBeGreaterThan(before);
    });
  });

  describe('a rival operation moves the epoch on', () => {
    it.each(pick(['quiesce-source', 'demote-source', 'final-sync'], ['final-sync']))(
      'at %s: every later mutating step refuses, and the operation says what is left',
      async (step) => {
        const { from, to } = await activeSite(pivot);
        const { violations, report } = await staleEpochScenario(step);
        // The stale operation refused to act, its compensations included: the application stays
        // as the rival left it (here: stopped), which the report says, with what is left to do.
        expect(violations).toEqual([]);
        expect(report.outcome).toBe('needs-attention');
        expect(report.suggestion).toContain('Left to do');
        expect(report.steps.some((s) => s.error?.includes('is stale'))).toBe(true);
        expect(await vrStates(to)).toEqual(['Secondary']);
        // The rival's part, done by hand at the current epoch: the source serves again.
        await restoreSource(from);
      },
    );
  });

  describe('racing triggers', () => {
    it('50 concurrent starts through the API: exactly one operation runs', async () => {
      const s = await status();
      const token = s.api.tokens.operator!;
      const { from, to, epoch } = await activeSite(pivot);
      const watch = await SplitBrainWatch.start();
      const answers = await Promise.all(
        Array.from({ length: 50 }, () =>
          fetch(`${s.api.url}/v1/operations`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({
              operation: 'switchover',
              apps: [APP],
              to,
              reason: 'chaos: racing triggers',
            }),
          }).then(async (r) => ({
            status: r.status,
            body: (await r.json()) as { operations?: Array<{ runId?: string }> },
          })),
        ),
      );
      const accepted = answers.filter((a) => a.status === 202);
      const runs = new Set(accepted.flatMap((a) => (a.body.operations ?? []).map((o) => o.runId)));
      expect(runs.size).toBe(1);
      const report = (await pivot.client.workflow
        .getHandle(operationWorkflowId(APP))
        .result()) as OperationReport;
      expect(report.from).toBe(from);
      const violations = await checkAfter(
        recorder,
        pivot,
        { scenario: 'racing triggers', fault: '50 concurrent API starts' },
        report,
        watch,
        epoch,
      );
      expect(violations).toEqual([]);
      expect(report.outcome).toBe('succeeded');
    });
  });

  describe('racing triggers of every kind', () => {
    it('an alert storm, a drill schedule and 50 API starts at once: one operation moves the application, and the others end cleanly', async () => {
      const s = await status();
      const hooks = s.api.hooks!;
      const { from, to, epoch } = await activeSite(pivot);
      const rule = `${from}-down`; // the lab's rule: fail the application over from a lost site
      const since = new Date();
      const watch = await SplitBrainWatch.start();
      const schedule = `chaos-race-${since.getTime()}`;
      await createDrillSchedule(
        pivot.client,
        { name: schedule, apps: [APP], cron: '0 3 1 1 *', reason: 'chaos: racing triggers' },
        'chaos',
      );
      try {
        const labels = { alertname: 'DatacenterDown', datacenter: from };
        const [alerts, starts] = await Promise.all([
          Promise.all(
            Array.from({ length: 50 }, (_, i) => {
              const body = grafanaBody('firing', labels, `race ${since.getTime()} ${i}`);
              return fetch(`${s.api.url}/hooks/grafana`, {
                method: 'POST',
                headers: signedHeaders(hooks, body),
                body,
              }).then((r) => r.status);
            }),
          ),
          Promise.all(
            Array.from({ length: 50 }, () =>
              fetch(`${s.api.url}/v1/operations`, {
                method: 'POST',
                headers: {
                  authorization: `Bearer ${s.api.tokens.operator!}`,
                  'content-type': 'application/json',
                },
                body: JSON.stringify({
                  operation: 'switchover',
                  apps: [APP],
                  to,
                  reason: 'chaos: racing triggers',
                }),
              }).then((r) => r.status),
            ),
          ),
          pivot.client.schedule.getHandle(`pivot-drill-schedule:${schedule}`).trigger(),
        ]);
        expect(alerts.filter((x) => x !== 202)).toEqual([]);
        expect(starts.filter((x) => x !== 202 && x !== 409)).toEqual([]);

        // Whichever trigger came first runs; the others attach to it. The API's starts usually win;
        // the alert's failover wins when they take longer than its 5 s hold-down (each start
        // plans against both sites), and then waits for on-call's approval, as it would at 3 a.m.
        const handle = pivot.client.workflow.getHandle(operationWorkflowId(APP));
        await waitUntil('an operation started by the racing triggers', async () => {
          const d = await handle.describe().catch(() => undefined);
          return (d !== undefined && d.startTime >= since) || 'none yet';
        });
        const winner = (await handle.describe()).type;
        if (winner === 'failover') await approveWhenAsked(handle);
        const report = (await handle.result()) as OperationReport;
        // The alert's trigger, when it came second, attached to the running operation, or found
        // nothing left to fail over once the application had moved.
        const alert = (await pivot.client.workflow
          .getHandle(`pivot-alert-${rule}`)
          .result()) as AlertTriggerReport;
        // The schedule's run carries the time it was triggered in its id.
        const drillRuns: ScheduledDrillResult[] = [];
        for await (const w of pivot.client.workflow.list({
          query: `WorkflowType = 'scheduledDrill' AND StartTime > '${since.toISOString()}'`,
        })) {
          drillRuns.push(
            (await pivot.client.workflow
              .getHandle(w.workflowId, w.runId)
              .result()) as (typeof drillRuns)[number],
          );
        }
        expect(drillRuns).toHaveLength(1);
        const runs: string[] = [];
        for await (const w of pivot.client.workflow.list({
          query: `WorkflowId = '${operationWorkflowId(APP)}' AND StartTime > '${since.toISOString()}'`,
        })) {
          runs.push(`${w.type} ${w.runId}`);
        }
        expect(runs).toHaveLength(1);
        expect(report).toMatchObject({ operation: winner, from, to });
        expect(['started', 'refused']).toContain(alert.outcome);
        // The schedule's firing accounted for the application: it drilled it, or said why not.
        const [fired] = drillRuns;
        expect(fired!.drills.length + fired!.refused.length).toBe(1);
        const violations = await checkAfter(
          recorder,
          pivot,
          {
            scenario: 'racing triggers',
            fault: 'an alert storm, a drill schedule and 50 API starts at once',
          },
          report,
          watch,
          epoch,
        );
        expect(violations).toEqual([]);
        expect(report.outcome).toBe('succeeded');
        // No drill left anything behind: its namespace is gone from the standby it ran on.
        for (const site of [from, to]) {
          const left = await SITES[site]!.core.listNamespace({ labelSelector: 'pivot.dev/drill' });
          const names = left.items.filter((n) => !n.metadata?.deletionTimestamp).map((n) => n.metadata?.name);
          expect(names).toEqual([]);
        }
        if (winner === 'failover') await reprotectAndReturn('racing triggers', from, to);
      } finally {
        await deleteDrillSchedule(pivot.client, schedule).catch(() => undefined);
        // The alert suite after this one starts with the rule able to fire.
        const holder = await pivot.witness.coolDownHolder(rule);
        if (holder) await pivot.witness.releaseCoolDown(rule, holder);
      }
    });
  });

  describe('a failover while the source is cut off', () => {
    const cases: Array<['worker-control' | 'the target worker', string]> = [
      ...pick(FAILOVER_STEPS, ['fence-storage']).map(
        (s) => ['worker-control', s] as ['worker-control', string],
      ),
      ...pick(['promote-target', 'rebind-claims', 'scale-up-target'], ['rebind-claims']).map(
        (s) => ['the target worker', s] as ['the target worker', string],
      ),
    ];
    it.each(cases)(
      'SIGKILL %s at %s: the failover completes; the old primary returns, stays down, and is reprotected',
      async (who, step) => {
        let victim: CrashablePart = 'worker-control';
        const { violations, report, from, to } = await disturbedFailover({
          scenario: 'worker crash (failover)',
          fault: `SIGKILL ${who}`,
          step,
          inject: async ({ to }) => {
            if (who !== 'worker-control') victim = `worker-${to}` as CrashablePart;
            await lab.crash(victim);
          },
          heal: () => lab.startCrashed(),
        });
        expect(violations).toEqual([]);
        expect(report.outcome).toBe('succeeded');
        await reprotectAndReturn('worker crash (failover)', from, to);
      },
    );

    fullOnly.each(['fence-storage', 'promote-target', 'rebind-claims', 'scale-up-target'])(
      'the old primary returns at %s: it accepts no write and stays down',
      async (step) => {
        const { violations, report, from, to } = await disturbedFailover({
          scenario: 'partition',
          fault: 'the old primary returns during the failover',
          step,
          inject: ({ from }) => lab.reviveSite(from),
        });
        expect(violations).toEqual([]);
        expect(report.outcome).toBe('succeeded');
        await reprotectAndReturn('partition', from, to);
      },
    );

    it('the target goes down at promote-target, after the fence, and returns: the failover completes', async () => {
      const { violations, report, from, to } = await disturbedFailover({
        scenario: 'target lost',
        fault: 'the target site goes down after the fence, then returns',
        step: 'promote-target',
        inject: async ({ to }) => {
          await lab.killSite(to);
          await sleep(5000);
        },
        heal: ({ to }) => lab.reviveSite(to),
      });
      expect(violations).toEqual([]);
      expect(report.outcome).toBe('succeeded');
      await reprotectAndReturn('target lost', from, to);
    });
  });

  describe('the source is cut off in the middle of a switchover', () => {
    it.each(pick(['quiesce-source', 'demote-source', 'final-sync'], ['final-sync']))(
      'at %s: it stops before its point of no return and says so; the approved failover completes',
      async (step) => {
        const { from, to, epoch } = await activeSite(pivot);
        const watch = await SplitBrainWatch.start();
        const handle = await startOperation('switchover', from, to);
        await reachStep(handle, step);
        await lab.partitionSite(from);
        const stopped = await settle(handle);
        // It did not turn itself into a failover: nothing promoted, the witness unchanged.
        expect(stopped.pointOfNoReturnPassed).toBe(false);
        expect(['rolled-back', 'needs-attention']).toContain(stopped.outcome);
        // In the final sync the source is watched; in a step on the source, its task finds no worker.
        expect(stopped.error).toMatch(new RegExp(`${from} stopped answering|no worker took the task`));
        expect(await vrStates(to)).toEqual(['Secondary']);
        expect(await pivot.witness.state(APP)).toMatchObject({ activeSite: from, epoch });
        // On-call decides: a failover, approved.
        const failover = await startOperation('failover', from, to);
        await approveWhenAsked(failover);
        const report = await settle(failover);
        await lab.reviveSite(from);
        const violations = await checkAfter(
          recorder,
          pivot,
          { scenario: 'source lost during a switchover', fault: `${from} cut off`, step },
          report,
          watch,
          epoch,
          { extra: async () => [await oldPrimaryStaysDown(SITES[from]!, from)] },
        );
        expect(violations).toEqual([]);
        expect(report.outcome).toBe('succeeded');
        await reprotectAndReturn('source lost during a switchover', from, to);
      },
    );
  });

  describe('the storage misbehaves', () => {
    const cases: Array<[string, string, () => Promise<void>, () => Promise<void>, string]> = [
      [
        'the replication link down for 5 s',
        'final-sync',
        async () => {
          await sim.setFaults({ linkDown: true });
          await sleep(5000);
        },
        async () => {
          await sim.setFaults({ linkDown: false });
        },
        'succeeded',
      ],
      [
        'a promotion that takes 8 s',
        'preflight',
        async () => {
          await sim.setFaults({ promotionDelayMs: 8000 });
        },
        resetSim,
        'succeeded',
      ],
      [
        'a promotion the target refuses',
        'preflight',
        async () => {
          await sim.setFaults({
            failNextPromotions: 100_000,
            failPromotionsOnSite: (await activeSite(pivot)).to,
          });
        },
        () => Promise.resolve(),
        'rolled-back',
      ],
    ];
    it.each(PROFILE === 'full' ? cases : cases.slice(0, 1))(
      '%s (at %s): nothing lost, served from one site',
      async (what, step, inject, heal, outcome) => {
        let result: { violations: string[]; report: OperationReport };
        try {
          result = await disturbedSwitchover('storage faults', what, step, inject, heal);
        } finally {
          await resetSim();
        }
        expect(result.violations).toEqual([]);
        expect(result.report.outcome).toBe(outcome);
      },
    );
  });

  describe('decisions under stress', () => {
    it.each(
      pick(
        ['abort:quiesce-source', 'cancel:quiesce-source', 'abort:demote-source', 'cancel:final-sync'],
        ['abort:quiesce-source'],
      ).map((c) => c.split(':') as ['abort' | 'cancel', string]),
    )('%s at %s: the switchover stops and the source serves again', async (how, step) => {
      const { violations, report } = await disturbedSwitchover(
        'decisions under stress',
        how === 'abort' ? 'an abort from on-call' : 'a cancel through Temporal',
        step,
        async (handle) => {
          if (how === 'abort') {
            await handle.executeUpdate('abort', { args: [{ by: 'chaos', reason: 'chaos: stop now' }] });
          } else {
            await handle.cancel();
          }
        },
      );
      expect(violations).toEqual([]);
      expect(report.outcome).toBe('aborted');
      expect(report.pointOfNoReturnPassed).toBe(false);
    });
  });

  describe('an abort while a pre-fence hook runs', () => {
    it('the switchover stops once the hook has ended, and the source serves again', async () => {
      const { from } = await activeSite(pivot);
      // A hook that would act 10 s later (flush and lock the database, say); in the lab an exec
      // hook's command runs on this machine, in the site's exec directory.
      const marker = join(lab.layout.kwokDir, `exec-${from}`, `pre-fence-hook-acted-${Date.now()}`);
      const withHook: Runbook = {
        ...runbook,
        spec: {
          ...runbook.spec,
          hooks: [
            ...runbook.spec.hooks,
            {
              name: 'lock-writes',
              phase: 'pre-fence',
              exec: {
                selector: { 'app.kubernetes.io/name': 'mysql' },
                command: ['sh', '-c', `sleep 10; touch ${marker}`],
              },
              timeout: '1m',
              onError: 'fail',
            },
          ],
        },
      };
      const { violations, report } = await disturbedSwitchover(
        'decisions under stress',
        'an abort from on-call while a pre-fence hook runs',
        'hooks-pre-fence',
        async (handle) => {
          await sleep(1500); // the hook's command has started
          await handle.executeUpdate('abort', { args: [{ by: 'chaos', reason: 'chaos: stop now' }] });
        },
        undefined,
        {},
        withHook,
      );
      expect(violations).toEqual([]);
      expect(report.outcome).toBe('aborted');
      expect(report.steps.find((s) => s.id === 'quiesce-source')?.state).toBe('pending');
      // An exec'd command cannot be stopped through the Kubernetes API: the abort ended only once
      // the hook had (its mark is there when the report is final), so no hook acts after it.
      expect(existsSync(marker)).toBe(true);
    });
  });

  describe('an operation terminated through Temporal', () => {
    it.each(pick(['quiesce-source', 'final-sync'], ['quiesce-source']))(
      'at %s: its lock is taken over once no step of it can still act, and the next switchover completes',
      async (step) => {
        const { from, to, epoch } = await activeSite(pivot);
        const watch = await SplitBrainWatch.start();
        const terminated = await startOperation('switchover', from, to);
        await reachStep(terminated, step);
        // Terminate runs no code of the workflow: no compensation, and its lock stays in the witness.
        await terminated.terminate('chaos: terminated by hand');
        const closedAt = (await terminated.describe()).closeTime!.getTime();
        expect(await pivot.witness.lockHolder(APP)).toBe(
          `${terminated.workflowId}/${(await terminated.describe()).runId}`,
        );

        // At once: refused, with when to start again (a step of the closed one may still be in flight).
        const early = await settle(await startOperation('switchover', from, to));
        expect(early.outcome).toBe('refused');
        expect(early.error).toContain('may still have a step in flight');
        expect(early.error).toContain(new Date(closedAt + LOCK_TAKEOVER_GRACE_MS).toISOString());

        await sleep(Math.max(0, closedAt + LOCK_TAKEOVER_GRACE_MS - Date.now()) + 500);
        const report = await settle(await startOperation('switchover', from, to));
        const violations = await checkAfter(
          recorder,
          pivot,
          { scenario: 'terminate', fault: 'a terminate through Temporal, then the same switchover', step },
          report,
          watch,
          epoch,
        );
        expect(violations).toEqual([]);
        expect(report.outcome).toBe('succeeded');
        const audit = await pivot.witness.auditTrail(APP);
        expect(audit.some((e) => e.action === 'lock-taken-over')).toBe(true);
      },
    );
  });

  describe("a site operation's parent is cancelled or terminated through Temporal", () => {
    const DONE = { cancel: 'cancelled', terminate: 'terminated' } as const;
    it.each(['cancel', 'terminate'] as const)(
      '%s while the application moves: its operation ends on its own terms',
      async (how) => {
        const { from, to, epoch } = await activeSite(pivot);
        const config = loadConfig(lab.layout.configFile);
        const since = new Date();
        const watch = await SplitBrainWatch.start();
        const parent = await pivot.client.workflow.start('siteSwitchover', {
          taskQueue: CONTROL_TASK_QUEUE,
          workflowId: siteOperationWorkflowId(from),
          args: [
            {
              from,
              to,
              runbooks: [runbook],
              requestedBy: 'chaos',
              reason: `chaos: the site operation's parent ${DONE[how]}`,
              storageClassMap: config.storageClassMap,
            },
          ],
        });
        const child = pivot.client.workflow.getHandle(operationWorkflowId(APP));
        await waitUntil(`the site operation to start ${APP}'s`, async () => {
          const d = await child.describe().catch(() => undefined);
          return (d !== undefined && d.startTime >= since) || 'not yet';
        });
        await reachStep(child, 'quiesce-source');
        if (how === 'cancel') await parent.cancel();
        else await parent.terminate('chaos: the site operation terminated by hand');
        const report = await settle(child);
        const violations = await checkAfter(
          recorder,
          pivot,
          {
            scenario: 'site operation',
            fault: `the parent ${DONE[how]} through Temporal`,
            step: 'quiesce-source',
          },
          report,
          watch,
          epoch,
        );
        expect(violations).toEqual([]);
        // A cancel asks each running operation to stop (before its point of no return it rolls
        // back); a terminate leaves them to finish (they are started with parentClosePolicy ABANDON).
        expect(report.outcome).toBe(how === 'cancel' ? 'aborted' : 'succeeded');
        if (how === 'cancel') {
          // The site operation says it was aborted, with the application's own report.
          const site = (await parent.result()) as SiteOperationReport;
          expect(site.outcome).toBe('aborted');
          expect(site.apps.map((a) => [a.app, a.outcome])).toEqual([[APP, 'aborted']]);
        } else {
          expect((await parent.describe()).status.name).toBe('TERMINATED');
        }
      },
    );
  });

  describe('clocks disagree', () => {
    it("the target's array clock runs 30 s ahead: the final sync refuses to prove anything from it", async () => {
      const { to } = await activeSite(pivot);
      let result: { violations: string[]; report: OperationReport };
      try {
        result = await disturbedSwitchover(
          'clock skew',
          `${to}'s array clock 30 s ahead`,
          'preflight',
          async () => {
            // Syncs that take 6 s to ship: a sync taken before the quiesce, stamped 30 s ahead,
            // would pass for the final one, and the writes after it would be lost.
            await sim.setFaults({ clockSkewMs: { [to]: 30_000 }, syncDurationMs: 6000 });
          },
        );
      } finally {
        await resetSim();
      }
      expect(result.violations).toEqual([]);
      expect(result.report.outcome).toBe('rolled-back');
      expect(result.report.error).toContain('its clock is ahead');
    });

    it("a failover while the target's array clock runs 30 s ahead: the loss is reported unbounded, never as none", async () => {
      const { to } = await activeSite(pivot);
      let result: Awaited<ReturnType<typeof disturbedFailover>>;
      let firstApproval = '';
      try {
        await sim.setFaults({ clockSkewMs: { [to]: 30_000 } });
        // Every replica has a sync stamped in the future before the source is cut off.
        await waitUntil(
          `syncs stamped ahead on ${to}`,
          async () => (await lastSyncTimes(to)).every((t) => t > Date.now() + 10_000),
          { timeoutMs: 60_000 },
        );
        result = await disturbedFailover({
          scenario: 'clock skew',
          fault: `${to}'s array clock 30 s ahead, the source cut off`,
          step: 'fence-witness',
          inject: () => Promise.resolve(),
          approve: async (handle) => {
            await askedForApproval(handle);
            // A stamp in the future bounds nothing: the loss to accept is unbounded.
            firstApproval = await handle
              .executeUpdate('approve', { args: [{ by: 'chaos-approver', acceptDataLossMs: 600_000 }] })
              .then(
                () => 'approved',
                (err: Error) => (err.cause instanceof Error ? err.cause.message : err.message),
              );
            if (firstApproval !== 'approved') {
              await handle.executeUpdate('approve', {
                args: [{ by: 'chaos-approver', acceptDataLossMs: Number.MAX_SAFE_INTEGER }],
              });
            }
          },
        });
      } finally {
        await resetSim();
      }
      expect(result.violations).toEqual([]);
      expect(firstApproval).toContain('--accept-data-loss unbounded');
      expect(result.report.outcome).toBe('succeeded');
      expect(result.report.rpo?.windowMs).toBe(Number.MAX_SAFE_INTEGER);
      await reprotectAndReturn('clock skew', result.from, result.to);
    });

    fullOnly.each([-30_000])(
      "the target's array clock runs %d ms behind: the final sync waits for a sync its clock puts after the quiesce",
      async (skew) => {
        const { to } = await activeSite(pivot);
        let result: { violations: string[]; report: OperationReport };
        try {
          result = await disturbedSwitchover(
            'clock skew',
            `${to}'s array clock ${skew} ms off`,
            'preflight',
            async () => {
              await sim.setFaults({ clockSkewMs: { [to]: skew } });
            },
          );
        } finally {
          await resetSim();
        }
        expect(result.violations).toEqual([]);
        expect(result.report.outcome).toBe('succeeded');
      },
    );
  });

  // Last: it leaves the application where the stale operation took it.
  describe('the checks can fail', () => {
    it('with the final-sync proof switched off, a switchover over a slow link loses writes and the suite says so', async () => {
      const { from } = await activeSite(pivot);
      await lab.restartWorkers({ PIVOT_LAB_UNSAFE: 'no-final-sync-proof' });
      let violations: string[];
      try {
        // Each sync takes 6 s to ship: the replicas are always at least 6 s behind.
        ({ violations } = await disturbedSwitchover(
          'self-check: final sync',
          'a slow replication link',
          'preflight',
          async () => {
            await sim.setFaults({ syncDurationMs: 6000 });
          },
          () => Promise.resolve(),
          { mechanismOff: UNSAFE_SWITCHES['no-final-sync-proof'] },
        ));
      } finally {
        await resetSim();
        await lab.restartWorkers();
      }
      expect(violations).toContainEqual(expect.stringMatching(/a planned move lost \d+ write/));
      expect(recorder.selfChecks().at(-1)).toMatchObject({ caught: true });
      // The move stands, with its loss: the old primary's copies diverged. A planned move back
      // onto them stops at its final sync, which no sync can reach, and says so.
      const back = await settle(await startOperation('switchover', (await activeSite(pivot)).from, from));
      expect(back).toMatchObject({ outcome: 'rolled-back', pointOfNoReturnPassed: false });
      expect(back.error).toContain('ResyncRequired');
      // Resynced, as a reprotect would, the application can move again.
      const acts = createSiteActivities(SITES[from]!, pivot.witness);
      const ctx = { app: APP, operationId: 'chaos-by-hand', epoch: (await pivot.witness.state(APP)).epoch };
      await acts.ensureReplicationState(
        ctx,
        SAMPLE_APP.claims.map((name) => ({ namespace: APP, name })),
        'resync',
      );
    });

    it('with the storage fence switched off, the cut-off old primary writes on after the failover and the suite says so', async () => {
      await lab.restartWorkers({ PIVOT_LAB_UNSAFE: 'no-storage-fence' });
      let result: Awaited<ReturnType<typeof disturbedFailover>>;
      try {
        result = await disturbedFailover({
          scenario: 'self-check: storage fence',
          fault: 'the source cut off',
          step: 'promote-target',
          inject: () => Promise.resolve(),
          options: { mechanismOff: UNSAFE_SWITCHES['no-storage-fence'] },
        });
      } finally {
        await lab.restartWorkers();
      }
      expect(result.violations).toContainEqual(expect.stringContaining('never two writers'));
      expect(recorder.selfChecks().at(-1)).toMatchObject({ caught: true });
      await reprotectAndReturn('self-check: storage fence', result.from, result.to);
      // Repaired (the old primary's writes discarded by the resync): the array's alarm is
      // acknowledged, so that the other suites on this lab start from a clean record.
      for (const v of await sim.volumes()) {
        if (v.origin.namespace === APP && v.splitBrain) await sim.acknowledgeSplitBrain(v.handle);
      }
    });

    it('with the epoch guard switched off (a test-only switch), the stale operation acts and the suite says so', async () => {
      const { to } = await activeSite(pivot);
      await lab.restartWorkers({ PIVOT_LAB_UNSAFE: 'no-epoch-guard' });
      let violations: string[];
      try {
        // After the promotion (whose witness write would refuse a stale epoch by itself): the guard alone stands.
        ({ violations } = await staleEpochScenario('rebind-claims', UNSAFE_SWITCHES['no-epoch-guard']));
      } finally {
        await lab.restartWorkers();
      }
      expect(violations).toContainEqual(expect.stringContaining('a stale operation acted'));
      expect(recorder.selfChecks().at(-1)).toMatchObject({ caught: true });
      // What the stale operation did stands (dc-b promoted and serving): the witness records it.
      const now = await pivot.witness.state(APP);
      await pivot.witness.advanceEpoch(APP, {
        expectEpoch: now.epoch,
        activeSite: to,
        actor: 'chaos',
        reason: 'chaos: after the self-check',
      });
    });
  });
});
