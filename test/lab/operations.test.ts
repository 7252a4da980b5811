/**
 * The failover workflows on the lab, run by the lab's own workers, asserting both sites through
 * their own APIs, the witness, and the simulated array's data-plane figures: switchover there and
 * back, a second trigger attaching, an abort and a refused promotion compensated before the point
 * of no return, an unplanned failover that needs attention and is retried, the returning old
 * primary kept down and fenced, reprotect, failback, and a site switchover in dependency waves.
 * No test may leave split brain behind.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  WorkflowUpdateFailedError,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { CRD, type SiteApi } from '../../common/k8s.ts';
import { CONTROL_TASK_QUEUE } from '../../common/task-queues.ts';
import { sleep, waitUntil } from '../../common/wait.ts';
import { fenceFor } from '../../config/fence.ts';
import { loadConfig } from '../../config/load.ts';
import { REPO_ROOT } from '../../lab/layout.ts';
import { seedReplicatedApp } from '../../lab/seed.ts';
import { SIM_DRIVER } from '../../lab/storage-sim/constants.ts';
import { STANDBY_SELECTOR } from '../../activities/traffic.ts';
import { createSiteActivities } from '../../activities/index.ts';
import { workloadRefs } from '../../activities/types.ts';
import { SITE_STATE_CONFIGMAP } from '../../activities/site-state.ts';
import { fenceName } from '../../activities/fencing.ts';
import { validateRunbookText } from '../../runbook/validate.ts';
import type { Runbook } from '../../runbook/types.ts';
import type { OperationInput } from '../../workflows/engine.ts';
import { operationWorkflowId } from '../../workflows/ids.ts';
import { observe } from '../../planner/live-state.ts';
import { buildPlan } from '../../planner/plan.ts';
import type { Operation } from '../../runbook/types.ts';
import type { OperationReport } from '../../workflows/progress.ts';
import type { SiteOperationReport, siteSwitchover } from '../../workflows/site.ts';
import { apiProxy, deleteNamespace, lab, resetSim, sim, site, uniqueName } from './helpers.ts';
import { ledgerObjects } from './fixtures.ts';
import { connectPivot, type LabPivot } from './temporal.ts';

const dcA = site('dc-a');
const dcB = site('dc-b');
const SITES: Record<string, SiteApi> = { 'dc-a': dcA, 'dc-b': dcB };
const EXPECTED = { mysql: 3, redis: 1, 'orders-api': 2 } as const;
let pivot: LabPivot;
let runbook: Runbook;
let active = 'dc-a';

function loadRunbook(text: string, file: string): Runbook {
  const v = validateRunbookText(text, file, { knownSites: ['dc-a', 'dc-b'] });
  if (!v.runbook) throw new Error(JSON.stringify(v.errors));
  return v.runbook;
}

beforeAll(async () => {
  pivot = await connectPivot();
  const file = join(REPO_ROOT, 'runbooks', 'orders.yaml');
  runbook = loadRunbook(readFileSync(file, 'utf8'), file);
});

afterAll(async () => {
  await resetSim();
  if (active !== 'dc-a') await run('switchover', 'dc-b', 'dc-a'); // leave the lab as the other suites expect it
  await pivot?.close();
});

function input(from: string, to: string, extra: Partial<OperationInput> = {}): OperationInput {
  const config = loadConfig(lab.layout.configFile);
  return {
    runbook,
    from,
    to,
    requestedBy: 'test',
    reason: 'lab test',
    storageClassMap: config.storageClassMap,
    fence: fenceFor(config, from, to),
    ...extra,
  };
}

function start(
  operation: string,
  from: string,
  to: string,
  extra: Partial<OperationInput> = {},
): Promise<WorkflowHandleWithFirstExecutionRunId> {
  return pivot.client.workflow.start(operation, {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId: operationWorkflowId('orders'),
    workflowIdConflictPolicy: 'USE_EXISTING',
    args: [input(from, to, extra)],
  });
}

async function run(
  operation: string,
  from: string,
  to: string,
  extra: Partial<OperationInput> = {},
): Promise<OperationReport> {
  const report = (await (await start(operation, from, to, extra)).result()) as OperationReport;
  if (report.outcome === 'succeeded' && operation !== 'reprotect') active = to;
  return report;
}

/** Waits until the operation's progress satisfies `check`, and returns it. */
async function progressUntil(
  handle: WorkflowHandle,
  what: string,
  check: (r: OperationReport) => boolean,
  timeoutMs = 90_000,
): Promise<OperationReport> {
  let last: OperationReport | undefined;
  await waitUntil(
    what,
    async () => {
      last = await handle.query<OperationReport>('progress');
      return check(last) || `${last.currentStep ?? '-'} ${last.outcome}`;
    },
    { timeoutMs, intervalMs: 300 },
  );
  return last!;
}

async function replicas(api: SiteApi): Promise<Record<string, { want: number; ready: number }>> {
  const [sts, deps] = await Promise.all([
    api.apps.listNamespacedStatefulSet({ namespace: 'orders' }),
    api.apps.listNamespacedDeployment({ namespace: 'orders' }),
  ]);
  return Object.fromEntries(
    [...sts.items, ...deps.items].map((w) => [
      w.metadata!.name!,
      { want: w.spec?.replicas ?? 0, ready: w.status?.readyReplicas ?? 0 },
    ]),
  );
}

async function vrStates(api: SiteApi): Promise<string[]> {
  const list = (await api.custom.listNamespacedCustomObject({
    ...CRD.volumeReplication,
    namespace: 'orders',
  })) as { items: Array<{ status?: { state?: string } }> };
  return [...new Set(list.items.map((v) => v.status?.state ?? 'Unknown'))];
}

const ordersVolumes = async () => (await sim.volumes()).filter((v) => v.origin.namespace === 'orders');

async function expectNoSplitBrain(): Promise<void> {
  for (const v of await sim.volumes())
    expect({ handle: v.handle, splitBrain: v.splitBrain }).toEqual({
      handle: v.handle,
      splitBrain: false,
    });
}

async function expectServing(to: string, from: string, report: OperationReport): Promise<void> {
  expect(report.outcome).toBe('succeeded');
  expect(report.steps.every((s) => s.state === 'succeeded')).toBe(true);
  expect(report.epochAfter).toBe((report.epochBefore ?? -1) + 1);
  expect(report.measuredLoss?.writes).toBe(0);
  // The source is down, the target runs every workload with the source's replica counts.
  const [src, tgt] = [await replicas(SITES[from]!), await replicas(SITES[to]!)];
  for (const [name, n] of Object.entries(EXPECTED)) {
    expect(src[name]).toEqual({ want: 0, ready: 0 });
    expect(tgt[name]).toEqual({ want: n, ready: n });
  }
  // Every claim on the target is bound to the replica through a Retain PV with the same access modes.
  const srcClaims = await SITES[from]!.core.listNamespacedPersistentVolumeClaim({ namespace: 'orders' });
  for (const claim of srcClaims.items) {
    const t = await SITES[to]!.core.readNamespacedPersistentVolumeClaim({
      name: claim.metadata!.name!,
      namespace: 'orders',
    });
    expect(t.status?.phase).toBe('Bound');
    expect(t.spec?.accessModes).toEqual(claim.spec?.accessModes);
    const pv = await SITES[to]!.core.readPersistentVolume({ name: t.spec!.volumeName! });
    const srcPv = await SITES[from]!.core.readPersistentVolume({ name: claim.spec!.volumeName! });
    expect(pv.spec?.persistentVolumeReclaimPolicy).toBe('Retain');
    expect(pv.spec?.csi?.volumeHandle).toBe(srcPv.spec?.csi?.volumeHandle);
  }
  // Replication reversed; traffic follows; each site knows who is active.
  expect(await vrStates(SITES[to]!)).toEqual(['Primary']);
  expect(await vrStates(SITES[from]!)).toEqual(['Secondary']);
  const svcTo = await SITES[to]!.core.readNamespacedService({ name: 'orders-api', namespace: 'orders' });
  const svcFrom = await SITES[from]!.core.readNamespacedService({ name: 'orders-api', namespace: 'orders' });
  expect(svcTo.spec?.selector).toEqual({ 'app.kubernetes.io/name': 'orders-api' });
  expect(svcFrom.spec?.selector).toEqual(STANDBY_SELECTOR);
  for (const api of [dcA, dcB]) {
    const cm = await api.core.readNamespacedConfigMap({ name: SITE_STATE_CONFIGMAP, namespace: 'orders' });
    expect(cm.data).toMatchObject({ activeSite: to, epoch: String(report.epochAfter) });
  }
  expect(await pivot.witness.state('orders')).toMatchObject({
    activeSite: to,
    epoch: report.epochAfter,
    fencedSites: [],
  });
  // The array: the target is the primary, nothing the source wrote is missing, no split brain,
  // and the new primary's writes flow back to the old one.
  const before = await ordersVolumes();
  expect(before).toHaveLength(4);
  for (const v of before) {
    expect(v.primarySite).toBe(to);
    expect(v.copies.find((c) => c.site === from)?.writesNotOnPrimary).toBe(0);
    expect(v.splitBrain).toBe(false);
  }
  await waitUntil(`writes on ${to} replicated back to ${from}`, async () => {
    const now = await ordersVolumes();
    return now.every((v) => {
      const old = before.find((b) => b.handle === v.handle)!;
      const seq = (s: string, x: typeof v) => x.copies.find((c) => c.site === s)!.seq;
      return seq(to, v) > seq(to, old) && seq(from, v) > seq(from, old);
    });
  });
}

async function expectSourceServesAsBefore(before: Awaited<ReturnType<Witness['state']>>): Promise<void> {
  const a = await replicas(dcA);
  for (const [name, n] of Object.entries(EXPECTED)) expect(a[name]).toEqual({ want: n, ready: n });
  expect(await vrStates(dcA)).toEqual(['Primary']);
  expect(await vrStates(dcB)).toEqual(['Secondary']);
  const requested = (await dcB.custom.listNamespacedCustomObject({
    ...CRD.volumeReplication,
    namespace: 'orders',
  })) as { items: Array<{ spec: { replicationState: string } }> };
  expect(requested.items.every((v) => v.spec.replicationState === 'secondary')).toBe(true);
  expect(await pivot.witness.state('orders')).toEqual(before);
  expect(await pivot.witness.lockHolder('orders')).toBeUndefined();
  await expectNoSplitBrain();
}

type Witness = LabPivot['witness'];

/** Run alone on a fresh lab, a test first gives orders what earlier tests leave: an active site in the witness. */
async function ensureRecordedActiveSite(): Promise<void> {
  if ((await pivot.witness.state('orders')).activeSite) return;
  await expectServing('dc-b', 'dc-a', await run('switchover', 'dc-a', 'dc-b'));
  await expectServing('dc-a', 'dc-b', await run('switchover', 'dc-b', 'dc-a'));
}

/** A step as on-call reads it, in the plan or in the report: the step catalog makes them one. */
const outline = (s: {
  id: string;
  title: string;
  site: string;
  guard?: string;
  pointOfNoReturn?: boolean;
}) => ({
  id: s.id,
  title: s.title,
  site: s.site,
  guard: s.guard ?? 'skippable',
  pointOfNoReturn: s.pointOfNoReturn === true,
});

/** The steps `pivot plan` prints for an operation of orders now (read before it starts). */
async function plannedSteps(operation: Operation, to: string, rb: Runbook = runbook) {
  // As the API plans: with the witness's view (after a failover both sites report Primary).
  const live = {
    ...(await observe([dcA, dcB], rb.spec.namespaces)),
    witness: { orders: await pivot.witness.state('orders') },
  };
  const plan = buildPlan({ operation, to }, [rb], live, loadConfig(lab.layout.configFile));
  const app = plan.waves[0]?.apps[0];
  if (!app) throw new Error(`the plan refused ${operation}: ${JSON.stringify(plan.refused)}`);
  return app.steps.map(outline);
}

describe('planned operations', () => {
  it('switches orders over from dc-a to dc-b with no data lost, step for step as planned', async () => {
    const planned = await plannedSteps('switchover', 'dc-b');
    const report = await run('switchover', 'dc-a', 'dc-b');
    await expectServing('dc-b', 'dc-a', report);
    expect(report.rpo).toMatchObject({ windowMs: 0 });
    expect(report.steps.map(outline)).toEqual(planned);
  });

  it('attaches a second trigger to the running operation instead of starting a rival', async () => {
    const first = await start('switchover', 'dc-b', 'dc-a');
    const second = await start('failover', 'dc-b', 'dc-a'); // e.g. an alert firing meanwhile
    expect(second.firstExecutionRunId).toBe(first.firstExecutionRunId);
    expect((await second.describe()).type).toBe('switchover');
    const report = (await second.result()) as OperationReport;
    active = 'dc-a';
    await expectServing('dc-a', 'dc-b', report);
  });

  it('refuses to act on a witness that lost its record of the application', async () => {
    // The witness's data is gone (a Redis restarted empty): it would read epoch 0.
    const key = 'pivot:state:{orders}';
    await ensureRecordedActiveSite();
    const saved = await pivot.redis.hgetall(key);
    expect(Number(saved['epoch'])).toBeGreaterThan(0);
    await pivot.redis.del(key);
    try {
      const report = await run('switchover', 'dc-a', 'dc-b');
      expect(report).toMatchObject({ outcome: 'refused', pointOfNoReturnPassed: false });
      expect(report.error).toMatch(
        /the witness holds epoch 0 for orders but dc-b recorded epoch \d+: the witness lost its record/,
      );
    } finally {
      await pivot.redis.hset(key, saved);
    }
    expect(await vrStates(dcA)).toEqual(['Primary']);
  });

  it('aborts a switchover waiting for its final sync: the wait stops, the source serves again as before', async () => {
    const before = await pivot.witness.state('orders');
    await sim.setFaults({ linkDown: true });
    // Counts the final sync's polls of dc-b's replicas (read one by one, by name), as the API proxy sees them.
    await apiProxy.setFaults('dc-b', {
      latencyMs: 1,
      match:
        '^GET /apis/replication\\.storage\\.openshift\\.io/v1alpha1/namespaces/orders/volumereplications/',
    });
    const polls = async () => (await apiProxy.report())['dc-b']!.counters.delayed;
    const handle = await start('switchover', 'dc-a', 'dc-b');
    await progressUntil(handle, 'the final sync to wait', (r) => r.currentStep === 'final-sync');
    // Nothing failed: there is nothing to retry or skip.
    await expect(handle.executeUpdate('retry', { args: [{ by: 'test' }] })).rejects.toThrow(
      WorkflowUpdateFailedError,
    );
    const polling = await polls();
    await sleep(1500);
    expect(await polls()).toBeGreaterThan(polling);
    await handle.executeUpdate('abort', { args: [{ by: 'test', reason: 'change freeze' }] });
    // The link stays down: an abandoned poll would go on. Cancelled, it stops at its next pause.
    await sleep(1500);
    const afterAbort = await polls();
    await sleep(2000);
    expect(await polls()).toBe(afterAbort);
    await resetSim(); // the link returns, so that the source can be promoted back
    const report = (await handle.result()) as OperationReport;
    expect(report.outcome).toBe('aborted');
    expect(report.pointOfNoReturnPassed).toBe(false);
    expect(report.error).toContain('aborted by test: change freeze');
    expect(report.notes).toEqual([
      'compensated: promote the volumes on dc-a back',
      'compensated: scale the workloads on dc-a back up',
    ]);
    await expectSourceServesAsBefore(before);
  });

  it('rolls back a scale-down that fails half-way: what it stopped starts again', async () => {
    const before = await pivot.witness.state('orders');
    // orders-api stops first (reverse start order); dc-a's API then refuses every change to mysql.
    await apiProxy.setFaults('dc-a', {
      errorRate: 1,
      status: 503,
      match: '^PATCH /apis/apps/v1/namespaces/orders/statefulsets/mysql',
    });
    let report: OperationReport;
    try {
      report = (await (await start('switchover', 'dc-a', 'dc-b')).result()) as OperationReport;
    } finally {
      await apiProxy.clear();
    }
    expect(report).toMatchObject({ outcome: 'rolled-back', pointOfNoReturnPassed: false });
    expect(report.steps.find((s) => s.id === 'quiesce-source')?.state).toBe('failed');
    expect(report.notes).toEqual(['compensated: scale the workloads on dc-a back up']);
    await waitUntil('orders-api to be Ready on dc-a again', async () => {
      const a = await replicas(dcA);
      return a['orders-api']?.ready === EXPECTED['orders-api'] || JSON.stringify(a['orders-api']);
    });
    await expectSourceServesAsBefore(before);
  });

  it('ends needing attention, naming what is left, when a compensation fails', async () => {
    const before = await pivot.witness.state('orders');
    await sim.setFaults({ linkDown: true });
    const handle = await start('switchover', 'dc-a', 'dc-b');
    await progressUntil(handle, 'the final sync to wait', (r) => r.currentStep === 'final-sync');
    // With the link still down, dc-a's array will not take the primary role back unforced: the
    // roll-back cannot finish.
    await handle.executeUpdate('abort', { args: [{ by: 'test', reason: 'change freeze' }] });
    const report = (await handle.result().finally(resetSim)) as OperationReport;
    expect(report.outcome).toBe('needs-attention');
    expect(report.notes).toEqual([
      expect.stringMatching(/^compensation failed: promote the volumes on dc-a back: .*the storage refused/),
    ]);
    expect(report.suggestion).toBe(
      'the roll-back did not finish: dc-a does not serve as before. Left to do, in order: promote the volumes on dc-a back; scale the workloads on dc-a back up',
    );
    // What was left, done by hand once the array answers again.
    const acts = createSiteActivities(dcA, pivot.witness);
    const ctx = { app: 'orders', operationId: 'by-hand', epoch: before.epoch };
    const claims = (await ordersVolumes()).map((v) => ({ namespace: 'orders', name: v.origin.claim! }));
    await acts.ensureReplicationState(ctx, claims, 'primary');
    const workloads = workloadRefs(runbook);
    await acts.scaleUpWorkloads(ctx, workloads, await acts.currentReplicas(workloads));
    await expectSourceServesAsBefore(before);
  });

  it('verifies with every declared check: a failing Hook check holds the switchover until it passes', async () => {
    // The check passes on dc-a (where it also runs before the fence) and on dc-b only once the marker exists.
    const marker = join(tmpdir(), uniqueName('pivot-check'));
    const checked: Runbook = {
      ...runbook,
      spec: {
        ...runbook.spec,
        hooks: [
          ...runbook.spec.hooks,
          {
            name: 'db-check',
            phase: 'pre-fence',
            exec: {
              selector: { 'app.kubernetes.io/name': 'mysql' },
              command: ['sh', '-c', `test "$PIVOT_LAB_SITE" = dc-a || test -f ${marker}`],
            },
            timeout: '10s',
            onError: 'fail',
          },
        ],
        healthChecks: [...runbook.spec.healthChecks, { name: 'db', kind: 'Hook', hook: 'db-check' }],
      },
    };
    const handle = await start('switchover', 'dc-a', 'dc-b', { runbook: checked });
    const stuck = await progressUntil(
      handle,
      'verify to fail',
      (r) => r.waiting?.for === 'decision',
      120_000,
    );
    expect(stuck).toMatchObject({ currentStep: 'verify', pointOfNoReturnPassed: true });
    expect(stuck.error).toContain('hook db-check failed');
    writeFileSync(marker, 'ok');
    await handle.executeUpdate('retry', { args: [{ by: 'on-call', step: 'verify' }] });
    const report = (await handle.result()) as OperationReport;
    rmSync(marker, { force: true });
    active = 'dc-b';
    await expectServing('dc-b', 'dc-a', report);
    await expectServing('dc-a', 'dc-b', await run('switchover', 'dc-b', 'dc-a'));
  });

  it('compensates a promotion the storage refuses: the source serves again as before', async () => {
    await sim.setFaults({ failNextPromotions: 100_000, failPromotionsOnSite: 'dc-b' });
    const before = await pivot.witness.state('orders');
    const report = await run('switchover', 'dc-a', 'dc-b', { refusalGraceMs: 1_500 });
    await resetSim();
    expect(report.outcome).toBe('rolled-back');
    expect(report.steps.find((s) => s.id === 'promote-target')).toMatchObject({ state: 'failed' });
    expect(report.error).toContain('injected fault');
    expect(report.notes).toEqual([
      'compensated: withdraw the promotion of the volumes on dc-b',
      'compensated: promote the volumes on dc-a back',
      'compensated: scale the workloads on dc-a back up',
    ]);
    await expectSourceServesAsBefore(before);
  });
});

describe('unplanned failover, reprotect, failback', () => {
  it('fails over to dc-b when dc-a is cut off, keeps dc-a down and fenced when it returns, then brings orders home', async () => {
    const before = await pivot.witness.state('orders');
    const planned = await plannedSteps('failover', 'dc-b');
    // A partition, not a loss: dc-a's pods go on writing to its copies until the storage fence
    // holds, which the array takes 3 s to apply.
    await sim.setFaults({ fenceDelayMs: 3000 });
    await lab.partitionSite('dc-a');
    // The storage refuses the forced promotion at first: after the point of no return that needs attention.
    await sim.setFaults({ failNextPromotions: 100_000, failPromotionsOnSite: 'dc-b' });
    // An RPO objective of 1 s: the replicas' last sync (every 2 s on the lab, none since dc-a died) is older.
    const tight = {
      ...runbook,
      spec: { ...runbook.spec, objectives: { ...runbook.spec.objectives, rpo: '1s' } },
    };
    const handle = await start('failover', 'dc-a', 'dc-b', { refusalGraceMs: 1_000, runbook: tight });
    await progressUntil(handle, 'the failover to wait for approval', (r) => r.waiting?.for === 'approval');
    // No RPO gate: a plain approval would force-promote whatever the loss. It must state the loss it accepts.
    await expect(handle.executeUpdate('approve', { args: [{ by: 'on-call' }] })).rejects.toMatchObject({
      cause: {
        message: expect.stringMatching(
          /expected data loss of orders is .*, beyond its RPO objective of 1s/,
        ) as string,
      },
    });
    await expect(
      handle.executeUpdate('approve', { args: [{ by: 'on-call', acceptDataLossMs: 500 }] }),
    ).rejects.toThrow(WorkflowUpdateFailedError);
    await handle.executeUpdate('approve', { args: [{ by: 'on-call', acceptDataLossMs: 600_000 }] });
    const stuck = await progressUntil(
      handle,
      'the failover to need attention',
      (r) => r.waiting?.for === 'decision',
      120_000,
    );
    expect(stuck).toMatchObject({
      outcome: 'needs-attention',
      currentStep: 'promote-target',
      pointOfNoReturnPassed: true,
    });
    expect(stuck.error).toContain('injected fault');
    expect(await pivot.witness.state('orders')).toMatchObject({
      epoch: before.epoch + 1,
      fencedSites: ['dc-a'],
    });
    await expect(
      handle.executeUpdate('retry', { args: [{ by: 'on-call', step: 'verify' }] }),
    ).rejects.toThrow(WorkflowUpdateFailedError);
    await expect(
      handle.executeUpdate('skip', { args: [{ by: 'on-call', step: 'promote-target' }] }),
    ).rejects.toThrow(WorkflowUpdateFailedError); // a skip needs a reason
    // Safety steps can be skipped: not the promotion, whatever the reason.
    await expect(
      handle.executeUpdate('skip', {
        args: [{ by: 'on-call', step: 'promote-target', reason: 'the array is slow, bind them anyway' }],
      }),
    ).rejects.toMatchObject({ cause: { message: expect.stringContaining('cannot be skipped') as string } });
    await resetSim();
    await handle.executeUpdate('retry', { args: [{ by: 'on-call', step: 'promote-target' }] });
    const report = (await handle.result()) as OperationReport;
    active = 'dc-b';

    expect(report.outcome).toBe('succeeded');
    expect(report.mode).toBe('unplanned');
    expect(report.epochAfter).toBe(before.epoch + 1);
    expect(report.decisions.map((d) => d.action)).toEqual(['approve', 'retry']);
    expect(report.decisions[0]).toMatchObject({ by: 'on-call', acceptDataLossMs: 600_000 });
    expect(report.rpo).toMatchObject({ objectiveMs: 1000, acceptedLossMs: 600_000 });
    // The window ends when the storage fence held, not at the witness fence before it.
    const fenced = report.steps.find((s) => s.id === 'fence-storage')!;
    expect(report.rpo!.writesStoppedAt).toBe(fenced.endedAt);
    expect(Date.parse(report.rpo!.lastSyncTime!) + report.rpo!.windowMs).toBe(Date.parse(fenced.endedAt!));
    expect(report.steps.map(outline)).toEqual(planned);
    // dc-b serves every workload.
    const b = await replicas(dcB);
    for (const [name, n] of Object.entries(EXPECTED)) expect(b[name]).toEqual({ want: n, ready: n });
    expect(await vrStates(dcB)).toEqual(['Primary']);
    // The storage fence against dc-a's clients exists on dc-b and holds.
    const fence = (await dcB.custom.getClusterCustomObject({
      ...CRD.networkFence,
      name: fenceName('dc-a'),
    })) as {
      spec: { fenceState: string; cidrs: string[] };
      status?: { result?: string };
    };
    expect(fence.spec).toMatchObject({ fenceState: 'Fenced', cidrs: ['10.10.0.0/16'] });
    expect(fence.status?.result).toBe('Succeeded');
    // The reported RPO covers what the array counts as lost: dc-a's writes after the last sync,
    // up to when the storage fence held (not only up to the witness fence, which its pods never see).
    expect(report.measuredLoss?.writes).toBeGreaterThan(0);
    expect(report.rpo!.windowMs).toBeGreaterThanOrEqual(report.measuredLoss!.windowMs);
    const lost = (await ordersVolumes()).reduce(
      (n, v) => n + (v.copies.find((c) => c.site === 'dc-a')?.writesNotOnPrimary ?? 0),
      0,
    );
    expect(lost).toBe(report.measuredLoss!.writes);
    await expectNoSplitBrain();

    // dc-a returns: its site guard keeps its workloads at 0 and the array refuses its writes.
    await lab.reviveSite('dc-a');
    await waitUntil(
      'the site guard to keep dc-a down',
      async () =>
        Object.values(await replicas(dcA)).every((r) => r.want === 0) || JSON.stringify(await replicas(dcA)),
      { timeoutMs: 60_000 },
    );
    const accepted = async () =>
      (await ordersVolumes()).map((v) => v.copies.find((c) => c.site === 'dc-a')!.acceptedWrites);
    const fencedAt = await accepted();
    await new Promise((r) => setTimeout(r, 3000));
    expect(await accepted()).toEqual(fencedAt);
    for (const v of await ordersVolumes()) expect(v.copies.find((c) => c.site === 'dc-a')?.fenced).toBe(true);
    await expectNoSplitBrain();

    // dc-a may not take orders back before it is reprotected: the switchover refuses at preflight.
    const early = await run('switchover', 'dc-b', 'dc-a');
    expect(early).toMatchObject({ outcome: 'refused', pointOfNoReturnPassed: false });
    expect(early.error).toContain('dc-a is fenced since an unplanned failover: reprotect it');
    expect(await pivot.witness.state('orders')).toMatchObject({ activeSite: 'dc-b', fencedSites: ['dc-a'] });

    // Reprotect: dc-a resynced from dc-b, its fences lifted; dc-b keeps serving.
    const plannedReprotect = await plannedSteps('reprotect', 'dc-a');
    const reprotect = await run('reprotect', 'dc-b', 'dc-a');
    expect(reprotect.outcome).toBe('succeeded');
    expect(reprotect.steps.map(outline)).toEqual(plannedReprotect);
    expect(await pivot.witness.state('orders')).toMatchObject({ activeSite: 'dc-b', fencedSites: [] });
    await expect(
      dcB.custom.getClusterCustomObject({ ...CRD.networkFence, name: fenceName('dc-a') }),
    ).rejects.toMatchObject({ code: 404 });
    for (const v of await ordersVolumes()) {
      expect(v.copies.find((c) => c.site === 'dc-a')).toMatchObject({
        role: 'secondary',
        writesNotOnPrimary: 0,
      });
    }

    // Failback: home to dc-a with nothing lost.
    const plannedFailback = await plannedSteps('failback', 'dc-a');
    const failback = await run('failback', 'dc-b', 'dc-a');
    await expectServing('dc-a', 'dc-b', failback);
    expect(failback.steps.map(outline)).toEqual(plannedFailback);
  }, 600_000);
});

describe('a failover of one application', () => {
  const ns = uniqueName('payments');
  beforeAll(async () => {
    await seedReplicatedApp(dcA, dcB, {
      namespace: ns,
      partOf: ns,
      claims: ['data-ledger-0'],
      objects: ledgerObjects(ns),
    });
  });
  afterAll(async () => {
    await deleteNamespace(dcA, ns);
    await deleteNamespace(dcB, ns);
  });

  it('fences that application alone while its source answers: the others on the site keep writing', async () => {
    const ledgerWrites = async () =>
      (await sim.volumes())
        .filter((v) => v.origin.namespace === ns)
        .reduce((n, v) => n + (v.copies.find((c) => c.site === 'dc-a')?.acceptedWrites ?? 0), 0);
    await waitUntil('the ledger to write on dc-a', async () => (await ledgerWrites()) > 0);
    const handle = await start('failover', 'dc-a', 'dc-b');
    await progressUntil(handle, 'the failover to wait for approval', (r) => r.waiting?.for === 'approval');
    await handle.executeUpdate('approve', { args: [{ by: 'on-call' }] });
    const report = (await handle.result()) as OperationReport;
    active = 'dc-b';
    expect(report.outcome).toBe('succeeded');
    // No fence on dc-a's networks: the ledger, active on dc-a, keeps writing there.
    await expect(
      dcB.custom.getClusterCustomObject({ ...CRD.networkFence, name: fenceName('dc-a') }),
    ).rejects.toMatchObject({ code: 404 });
    const after = await ledgerWrites();
    await waitUntil('the ledger to go on writing on dc-a', async () => (await ledgerWrites()) > after);
    for (const v of await ordersVolumes()) {
      expect(v.copies.find((c) => c.site === 'dc-a')).toMatchObject({ role: 'secondary', fenced: false });
    }
    expect(report.rpo!.windowMs).toBeGreaterThanOrEqual(report.measuredLoss!.windowMs);
    expect(report.notes).toContain(
      "dc-a answered: orders was fenced there alone (stopped, volumes demoted); dc-a's networks are not fenced",
    );
    await expectNoSplitBrain();

    expect((await run('reprotect', 'dc-b', 'dc-a')).outcome).toBe('succeeded');
    await expectServing('dc-a', 'dc-b', await run('failback', 'dc-b', 'dc-a'));
  }, 600_000);

  it('keeps a storage fence two applications rely on until the last of them is reprotected', async () => {
    const ledger = loadRunbook(paymentsRunbook(ns), 'payments.yaml');
    const startLedger = (operation: string, from: string, to: string) =>
      pivot.client.workflow.start(operation, {
        taskQueue: CONTROL_TASK_QUEUE,
        workflowId: operationWorkflowId(ns),
        workflowIdConflictPolicy: 'USE_EXISTING',
        args: [input(from, to, { runbook: ledger })],
      });
    const approved = async (handle: WorkflowHandle): Promise<OperationReport> => {
      await progressUntil(handle, 'the failover to wait for approval', (r) => r.waiting?.for === 'approval');
      await handle.executeUpdate('approve', { args: [{ by: 'on-call', acceptDataLossMs: 600_000 }] });
      return (await handle.result()) as OperationReport;
    };
    const fence = () => dcB.custom.getClusterCustomObject({ ...CRD.networkFence, name: fenceName('dc-a') });
    const ledgerFencedOnDcA = async () =>
      (await sim.volumes())
        .filter((v) => v.origin.namespace === ns)
        .every((v) => v.copies.find((c) => c.site === 'dc-a')?.fenced === true);
    // What dc-a's site guard keeps for the applications it protects (ledger's runbook is the test's own).
    const onDcA = createSiteActivities(dcA, pivot.witness);
    await pivot.witness.recordProtection(ns, {
      site: 'dc-a',
      volumes: await onDcA.describeVolumes(ledger),
      replicas: await onDcA.currentReplicas(workloadRefs(ledger)),
    });

    // Freshly seeded, the ledger's replicas must have synced once, or its loss would be unbounded.
    await waitUntil('the ledger to replicate', async () =>
      (await sim.volumes()).filter((v) => v.origin.namespace === ns).every((v) => !!v.lastSyncTime),
    );
    // dc-a is cut off: each failover can stop it only with the fence on its networks, which both then rely on.
    await lab.partitionSite('dc-a');
    expect((await approved(await start('failover', 'dc-a', 'dc-b'))).outcome).toBe('succeeded');
    active = 'dc-b';
    expect((await approved(await startLedger('failover', 'dc-a', 'dc-b'))).outcome).toBe('succeeded');
    expect(await pivot.redis.smembers('pivot:fence-owners:{dc-a}')).toEqual(
      expect.arrayContaining(['orders', ns]),
    );
    await lab.reviveSite('dc-a');

    // Reprotecting orders leaves the fence: the ledger's old primary on dc-a must stay cut off.
    const first = await run('reprotect', 'dc-b', 'dc-a');
    expect(first.outcome).toBe('succeeded');
    expect(first.notes).toContain(`the storage fence on dc-a's networks stays: ${ns} still rely on it`);
    await expect(fence()).resolves.toBeDefined();
    expect(await ledgerFencedOnDcA()).toBe(true);
    await expectNoSplitBrain();

    // The last owner's reprotect lifts it.
    const second = (await (await startLedger('reprotect', 'dc-b', 'dc-a')).result()) as OperationReport;
    expect(second.outcome).toBe('succeeded');
    await expect(fence()).rejects.toMatchObject({ code: 404 });
    await waitUntil('the ledger on dc-a to be unfenced', async () => !(await ledgerFencedOnDcA()));

    await expectServing('dc-a', 'dc-b', await run('failback', 'dc-b', 'dc-a'));
    expect(
      ((await (await startLedger('failback', 'dc-b', 'dc-a')).result()) as OperationReport).outcome,
    ).toBe('succeeded');
    await expectNoSplitBrain();
  }, 900_000);

  it('does not read a source that answers after transient errors as unreachable', async () => {
    // Pivot's first two probes of dc-a's API fail with 503 (the site's own clients are unaffected).
    const injected = async () => (await apiProxy.report())['dc-a']!.counters.errors;
    const before = await injected();
    await apiProxy.setFaults('dc-a', { errorRate: 1, status: 503, match: '^GET /version', count: 2 });
    const handle = await start('failover', 'dc-a', 'dc-b');
    const waiting = await progressUntil(handle, 'the failover to wait for approval', (r) => !!r.waiting);
    expect(waiting.notes.filter((n) => n.includes('does not answer'))).toEqual([]);
    expect(await injected()).toBe(before + 2);
    expect(waiting.waiting?.for).toBe('approval');
    await handle.executeUpdate('approve', { args: [{ by: 'on-call' }] });
    const report = (await handle.result()) as OperationReport;
    active = 'dc-b';
    expect(report.outcome).toBe('succeeded');
    // dc-a was quiesced as a live source, not cut off at the storage as a dead one.
    expect(report.notes).toContain(
      "dc-a answered: orders was fenced there alone (stopped, volumes demoted); dc-a's networks are not fenced",
    );
    await expect(
      dcB.custom.getClusterCustomObject({ ...CRD.networkFence, name: fenceName('dc-a') }),
    ).rejects.toMatchObject({ code: 404 });
    await expectNoSplitBrain();

    expect((await run('reprotect', 'dc-b', 'dc-a')).outcome).toBe('succeeded');
    await expectServing('dc-a', 'dc-b', await run('failback', 'dc-b', 'dc-a'));
  }, 600_000);
});

describe('a storage fence that fails', () => {
  const byHand = 'fenced-by-hand-dc-a';
  afterAll(async () => {
    for (const name of [fenceName('dc-a'), byHand]) {
      await dcB.custom.deleteClusterCustomObject({ ...CRD.networkFence, name }).catch(() => undefined);
    }
  });

  it("is passed only with a second person's attestation, recorded in the report and the audit trail", async () => {
    // dc-a is cut off, so only a fence on its networks can stop it; the array refuses Pivot's (a
    // network it cannot parse): fence-storage fails after the point of no return.
    await lab.partitionSite('dc-a');
    const settings = fenceFor(loadConfig(lab.layout.configFile), 'dc-a', 'dc-b');
    const handle = await start('failover', 'dc-a', 'dc-b', {
      fence: { ...settings, cidrs: ['not-a-network'] },
    });
    await progressUntil(handle, 'the failover to wait for approval', (r) => r.waiting?.for === 'approval');
    await handle.executeUpdate('approve', { args: [{ by: 'on-call', acceptDataLossMs: 600_000 }] });
    const stuck = await progressUntil(handle, 'the fence to fail', (r) => r.waiting?.for === 'decision');
    expect(stuck).toMatchObject({ currentStep: 'fence-storage', pointOfNoReturnPassed: true });
    const skip = (by: string, extra: object = {}) =>
      handle.executeUpdate('skip', {
        args: [{ by, step: 'fence-storage', reason: 'the array will not fence', ...extra }],
      });
    // A reason is not enough, and the requester cannot vouch for its own failover.
    await expect(skip('on-call')).rejects.toMatchObject({
      cause: { message: expect.stringContaining("an approver's attestation") as string },
    });
    const attestation = `fenced by hand: NetworkFence ${byHand} on dc-b, dc-a's client networks`;
    await expect(skip('test', { attestation })).rejects.toMatchObject({
      cause: { message: expect.stringContaining('two-person rule') as string },
    });
    // The storage lead fences dc-a by hand, then attests it.
    await dcB.custom.createClusterCustomObject({
      ...CRD.networkFence,
      body: {
        apiVersion: `${CRD.networkFence.group}/${CRD.networkFence.version}`,
        kind: 'NetworkFence',
        metadata: { name: byHand },
        spec: { fenceState: 'Fenced', cidrs: settings.cidrs, driver: SIM_DRIVER, secret: settings.secret },
      },
    });
    await waitUntil('the fence by hand to hold', async () =>
      (await ordersVolumes()).every((v) => v.copies.find((c) => c.site === 'dc-a')?.fenced === true),
    );
    await skip('storage-lead', { attestation });
    const report = (await handle.result()) as OperationReport;
    active = 'dc-b';
    expect(report.outcome).toBe('succeeded');
    expect(report.steps.find((s) => s.id === 'fence-storage')).toMatchObject({ state: 'skipped' });
    expect(report.decisions.at(-1)).toMatchObject({ action: 'skip', by: 'storage-lead', attestation });
    expect(report.notes).toContain(`storage-lead attests in place of step fence-storage: ${attestation}`);
    const trail = await pivot.witness.auditTrail('orders', 50);
    expect(trail.filter((e) => e.action === 'attest').at(-1)).toMatchObject({
      actor: 'storage-lead',
      detail: expect.stringContaining(attestation) as string,
    });
    await expectNoSplitBrain();

    // Home again: dc-a returns, the refused fence object goes, reprotect, the fence by hand is
    // lifted, failback.
    await lab.reviveSite('dc-a');
    await dcB.custom.deleteClusterCustomObject({ ...CRD.networkFence, name: fenceName('dc-a') });
    expect((await run('reprotect', 'dc-b', 'dc-a')).outcome).toBe('succeeded');
    await dcB.custom.deleteClusterCustomObject({ ...CRD.networkFence, name: byHand });
    await waitUntil('the fence by hand to be lifted', async () =>
      (await ordersVolumes()).every((v) => v.copies.find((c) => c.site === 'dc-a')?.fenced === false),
    );
    await expectServing('dc-a', 'dc-b', await run('failback', 'dc-b', 'dc-a'));
  }, 600_000);
});

describe('an operation that stops after its promotion', () => {
  it('leaves the promoted target running: the witness names it, and no site guard takes it down', async () => {
    // A post-failover check fails once orders runs on dc-b; on-call closes the operation as it stands.
    const failing: Runbook = {
      ...runbook,
      spec: {
        ...runbook.spec,
        hooks: [
          ...runbook.spec.hooks,
          {
            name: 'check',
            phase: 'post-failover',
            exec: { selector: { 'app.kubernetes.io/name': 'mysql' }, command: ['sh', '-c', 'exit 3'] },
            timeout: '10s',
            onError: 'fail',
          },
        ],
      },
    };
    await ensureRecordedActiveSite();
    const before = await pivot.witness.state('orders');
    const handle = await start('failover', 'dc-a', 'dc-b', { runbook: failing });
    await progressUntil(handle, 'the failover to wait for approval', (r) => r.waiting?.for === 'approval');
    await handle.executeUpdate('approve', { args: [{ by: 'on-call' }] });
    await progressUntil(handle, 'the check to fail', (r) => r.waiting?.for === 'decision', 120_000);
    await handle.executeUpdate('abort', { args: [{ by: 'on-call', reason: 'look at it in the morning' }] });
    const report = (await handle.result()) as OperationReport;
    active = 'dc-b';
    expect(report).toMatchObject({ outcome: 'needs-attention', currentStep: 'hooks-post-failover' });
    // The lock is gone with the operation. Several guard periods (2 s on the lab) later, dc-b
    // still serves every workload, and the witness names it, at the fenced epoch.
    expect(await pivot.witness.lockHolder('orders')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 8_000));
    const b = await replicas(dcB);
    for (const [name, n] of Object.entries(EXPECTED)) expect(b[name]).toEqual({ want: n, ready: n });
    expect(await pivot.witness.state('orders')).toMatchObject({
      activeSite: 'dc-b',
      epoch: before.epoch + 1,
      fencedSites: ['dc-a'],
    });
    await expectNoSplitBrain();

    // Home again: reprotect dc-a, then fail back.
    await dcB.custom
      .deleteClusterCustomObject({ ...CRD.networkFence, name: fenceName('dc-a') })
      .catch(() => undefined);
    expect((await run('reprotect', 'dc-b', 'dc-a')).outcome).toBe('succeeded');
    await expectServing('dc-a', 'dc-b', await run('failback', 'dc-b', 'dc-a'));
  }, 600_000);
});

describe('site switchover', () => {
  const ns = uniqueName('payments');
  afterAll(async () => {
    await deleteNamespace(dcA, ns);
    await deleteNamespace(dcB, ns);
  });

  const startSite = (extra: Partial<Parameters<typeof siteSwitchover>[0]>, runbooks = [runbook]) =>
    pivot.client.workflow.start<typeof siteSwitchover>('siteSwitchover', {
      taskQueue: CONTROL_TASK_QUEUE,
      workflowId: uniqueName('site-switchover-dc-a'),
      args: [
        {
          from: 'dc-a',
          to: 'dc-b',
          runbooks,
          requestedBy: 'test',
          reason: 'lab test',
          storageClassMap: loadConfig(lab.layout.configFile).storageClassMap,
          ...extra,
        },
      ],
    });

  /** The site operation's child for orders, once it is past its preflight (it has started acting). */
  const ordersPastPreflight = async () => {
    const child = pivot.client.workflow.getHandle(operationWorkflowId('orders'));
    await waitUntil('the switchover of orders to be past its preflight', async () => {
      try {
        const r = await child.query<OperationReport>('progress');
        return (
          r.outcome === 'running' && r.steps.some((s) => s.id === 'quiesce-source' && s.state !== 'pending')
        );
      } catch {
        return false;
      }
    });
    return child;
  };

  it('holds its approval to the two-person rule, like every operation', async () => {
    const gated: Runbook = {
      ...runbook,
      spec: { ...runbook.spec, approval: { ...runbook.spec.approval, switchover: 'required' } },
    };
    const handle = await startSite({ requestedBy: 'alice', twoPersonRule: true }, [gated]);
    await waitUntil(
      'the site switchover to wait for approval',
      async () => (await handle.query<SiteOperationReport>('progress')).outcome === 'waiting-approval',
    );
    await expect(handle.executeUpdate('approve', { args: [{ by: 'alice' }] })).rejects.toMatchObject({
      cause: {
        message: expect.stringContaining('two-person rule: alice requested the switchover of dc-a') as string,
      },
    });
    await handle.executeUpdate('abort', { args: [{ by: 'alice', reason: 'no second approver tonight' }] });
    expect((await handle.result()).outcome).toBe('aborted');
    expect(await pivot.witness.state('orders')).toMatchObject({ activeSite: 'dc-a' });
  });

  it('never kills an application operation mid-step when the site operation is terminated', async () => {
    const parent = await startSite({});
    const child = await ordersPastPreflight();
    await parent.terminate('lab test: the site operation is terminated');
    const report = (await child.result()) as OperationReport;
    active = 'dc-b';
    await expectServing('dc-b', 'dc-a', report);
    await expectServing('dc-a', 'dc-b', await run('switchover', 'dc-b', 'dc-a'));
  });

  it('reports a move that completed as completed when the witness cannot record its end', async () => {
    const parent = await startSite({});
    const child = await ordersPastPreflight();
    // The lock's key no longer holds a lock: the witness fails every attempt to release it.
    const lockKey = 'pivot:lock:{orders}';
    await pivot.redis.del(lockKey);
    await pivot.redis.hset(lockKey, 'broken', 'by the test');
    try {
      const report = await parent.result();
      active = 'dc-b';
      expect(report.outcome).toBe('succeeded');
      expect(report.apps.map((a) => [a.app, a.outcome])).toEqual([['orders', 'succeeded']]);
      const moved = (await child.result()) as OperationReport;
      expect(moved.outcome).toBe('succeeded');
      expect(moved.notes).toContainEqual(
        expect.stringContaining('the witness did not record the end of this operation'),
      );
    } finally {
      await pivot.redis.del(lockKey);
    }
    await expectServing('dc-a', 'dc-b', await run('switchover', 'dc-b', 'dc-a'));
  });

  it('moves every application of dc-a in dependency waves, and back', async () => {
    await seedReplicatedApp(dcA, dcB, {
      namespace: ns,
      partOf: ns,
      claims: ['data-ledger-0'],
      objects: ledgerObjects(ns),
    });
    const payments = loadRunbook(paymentsRunbook(ns), 'payments.yaml');
    const moveAll = async (from: string, to: string): Promise<SiteOperationReport> => {
      const config = loadConfig(lab.layout.configFile);
      return pivot.client.workflow.execute<typeof siteSwitchover>('siteSwitchover', {
        taskQueue: CONTROL_TASK_QUEUE,
        workflowId: uniqueName(`site-switchover-${from}`),
        args: [
          {
            from,
            to,
            runbooks: [payments, runbook],
            concurrency: 2,
            requestedBy: 'test',
            reason: 'lab test',
            storageClassMap: config.storageClassMap,
          },
        ],
      });
    };
    for (const [from, to] of [
      ['dc-a', 'dc-b'],
      ['dc-b', 'dc-a'],
    ] as const) {
      const report = await moveAll(from, to);
      active = to === 'dc-b' ? 'dc-b' : active;
      expect(report.waves).toEqual([['orders'], [ns]]);
      expect(report.apps.map((a) => [a.app, a.outcome])).toEqual([
        ['orders', 'succeeded'],
        [ns, 'succeeded'],
      ]);
      const [orders, pay] = report.apps;
      // payments depends on orders: it starts only once orders is up on the target.
      expect(Date.parse(pay!.startedAt!)).toBeGreaterThanOrEqual(Date.parse(orders!.endedAt!));
      const ledger = await SITES[to]!.apps.readNamespacedStatefulSet({ name: 'ledger', namespace: ns });
      expect(ledger.status?.readyReplicas).toBe(1);
      active = to;
    }
    await expectNoSplitBrain();
  });
});

function paymentsRunbook(ns: string): string {
  return `apiVersion: pivot.dev/v1alpha1
kind: Runbook
metadata: { name: ${ns} }
spec:
  namespaces: [${ns}]
  sites: { primary: dc-a, secondary: dc-b }
  workloads:
    - { kind: StatefulSet, name: ledger, startOrder: 1 }
  volumes:
    - name: ledger-data
      selector: { matchLabels: { app.kubernetes.io/part-of: ${ns} } }
      replication: { provider: csi-addons, volumeReplicationClass: sim-replication }
  healthChecks:
    - { name: ready, kind: WorkloadsReady, timeout: 2m }
  objectives: { rpo: 30s, rto: 10m }
  priority: { tier: 1, dependsOn: [orders] }
`;
}
