/**
 * The failover workflows on the lab, run by the lab's own workers, asserting both sites through
 * their own APIs, the witness, and the simulated array's data-plane figures: switchover there and
 * back, a second trigger attaching, an abort and a refused promotion compensated before the point
 * of no return, an unplanned failover that needs attention and is retried, the returning old
 * primary kept down and fenced, reprotect, failback, and a site switchover in dependency waves.
 * No test may leave split brain behind.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  WorkflowUpdateFailedError,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { CRD, type SiteApi } from '../../common/k8s.ts';
import { CONTROL_TASK_QUEUE } from '../../common/task-queues.ts';
import { waitUntil } from '../../common/wait.ts';
import { fenceFor } from '../../config/fence.ts';
import { loadConfig } from '../../config/load.ts';
import { REPO_ROOT } from '../../lab/layout.ts';
import { seedReplicatedApp } from '../../lab/seed.ts';
import { STANDBY_SELECTOR } from '../../activities/traffic.ts';
import { SITE_STATE_CONFIGMAP } from '../../activities/site-state.ts';
import { fenceName } from '../../activities/fencing.ts';
import { validateRunbookText } from '../../runbook/validate.ts';
import type { Runbook } from '../../runbook/types.ts';
import type { OperationInput } from '../../workflows/engine.ts';
import { operationWorkflowId } from '../../workflows/ids.ts';
import type { OperationReport } from '../../workflows/progress.ts';
import type { SiteOperationReport, siteSwitchover } from '../../workflows/site.ts';
import { deleteNamespace, lab, resetSim, sim, site, uniqueName } from './helpers.ts';
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

describe('planned operations', () => {
  it('switches orders over from dc-a to dc-b with no data lost', async () => {
    const report = await run('switchover', 'dc-a', 'dc-b');
    await expectServing('dc-b', 'dc-a', report);
    expect(report.rpo).toMatchObject({ windowMs: 0 });
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

  it('aborts a switchover waiting for its final sync: the source serves again as before', async () => {
    const before = await pivot.witness.state('orders');
    await sim.setFaults({ linkDown: true });
    const handle = await start('switchover', 'dc-a', 'dc-b');
    await progressUntil(handle, 'the final sync to wait', (r) => r.currentStep === 'final-sync');
    // Nothing failed: there is nothing to retry or skip.
    await expect(handle.executeUpdate('retry', { args: [{ by: 'test' }] })).rejects.toThrow(
      WorkflowUpdateFailedError,
    );
    await handle.executeUpdate('abort', { args: [{ by: 'test', reason: 'change freeze' }] });
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
  it('fails over to dc-b when dc-a dies, keeps dc-a down and fenced when it returns, then brings orders home', async () => {
    const before = await pivot.witness.state('orders');
    await lab.killSite('dc-a');
    // The storage refuses the forced promotion at first: after the point of no return that needs attention.
    await sim.setFaults({ failNextPromotions: 100_000, failPromotionsOnSite: 'dc-b' });
    const handle = await start('failover', 'dc-a', 'dc-b', { refusalGraceMs: 1_000 });
    await progressUntil(handle, 'the failover to wait for approval', (r) => r.waiting?.for === 'approval');
    await handle.executeUpdate('approve', { args: [{ by: 'on-call' }] });
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
    await resetSim();
    await handle.executeUpdate('retry', { args: [{ by: 'on-call', step: 'promote-target' }] });
    const report = (await handle.result()) as OperationReport;
    active = 'dc-b';

    expect(report.outcome).toBe('succeeded');
    expect(report.mode).toBe('unplanned');
    expect(report.epochAfter).toBe(before.epoch + 1);
    expect(report.decisions.map((d) => d.action)).toEqual(['approve', 'retry']);
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
    // The reported RPO covers what the array counts as lost.
    expect(report.measuredLoss).toBeDefined();
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
    const reprotect = await run('reprotect', 'dc-b', 'dc-a');
    expect(reprotect.outcome).toBe('succeeded');
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
    const failback = await run('failback', 'dc-b', 'dc-a');
    await expectServing('dc-a', 'dc-b', failback);
  }, 600_000);
});

describe('site switchover', () => {
  const ns = uniqueName('payments');
  afterAll(async () => {
    await deleteNamespace(dcA, ns);
    await deleteNamespace(dcB, ns);
  });

  it('moves every application of dc-a in dependency waves, and back', async () => {
    await seedReplicatedApp(dcA, dcB, {
      namespace: ns,
      partOf: ns,
      claims: ['data-ledger-0'],
      objects: paymentsObjects(ns),
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

function paymentsObjects(ns: string) {
  const labels = { 'app.kubernetes.io/part-of': ns, 'app.kubernetes.io/name': 'ledger' };
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } },
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'ledger', namespace: ns, labels },
      spec: {
        replicas: 1,
        serviceName: 'ledger',
        selector: { matchLabels: { 'app.kubernetes.io/name': 'ledger' } },
        template: {
          metadata: { labels },
          spec: {
            tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }],
            containers: [
              { name: 'ledger', image: 'postgres:17', volumeMounts: [{ name: 'data', mountPath: '/data' }] },
            ],
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data', labels },
            spec: {
              accessModes: ['ReadWriteOnce'],
              storageClassName: 'sim-replicated',
              resources: { requests: { storage: '1Gi' } },
            },
          },
        ],
      },
    },
  ];
}

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
