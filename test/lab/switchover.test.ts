/**
 * The planned switchover workflow on the lab, asserting both sites through their own APIs and the
 * simulated array's data-plane figures: dc-a → dc-b, back again, and a promotion refused by the
 * storage, compensated so that the source serves as before.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CRD, type SiteApi } from '../../common/k8s.ts';
import { CONTROL_TASK_QUEUE } from '../../common/task-queues.ts';
import { waitUntil } from '../../common/wait.ts';
import { REPO_ROOT } from '../../lab/layout.ts';
import { STANDBY_SELECTOR } from '../../activities/traffic.ts';
import { SITE_STATE_CONFIGMAP } from '../../activities/site-state.ts';
import { validateRunbookText } from '../../runbook/validate.ts';
import type { Runbook } from '../../runbook/types.ts';
import type { OperationReport } from '../../workflows/progress.ts';
import type { switchover } from '../../workflows/switchover.ts';
import { resetSim, sim, site, uniqueName } from './helpers.ts';
import { startWorkers, type LabWorkers } from './temporal.ts';

const dcA = site('dc-a');
const dcB = site('dc-b');
const SITES: Record<string, SiteApi> = { 'dc-a': dcA, 'dc-b': dcB };
const EXPECTED = { mysql: 3, redis: 1, 'orders-api': 2 } as const;
let workers: LabWorkers;
let runbook: Runbook;
let active = 'dc-a';

beforeAll(async () => {
  workers = await startWorkers(uniqueName('switchover'));
  const file = join(REPO_ROOT, 'runbooks', 'orders.yaml');
  const v = validateRunbookText(readFileSync(file, 'utf8'), file, { knownSites: ['dc-a', 'dc-b'] });
  if (!v.runbook) throw new Error(JSON.stringify(v.errors));
  runbook = v.runbook;
});

afterAll(async () => {
  await resetSim();
  if (active !== 'dc-a') await run('dc-b', 'dc-a'); // leave the lab as the other suites expect it
  await workers?.stop();
});

async function run(
  from: string,
  to: string,
  extra: { refusalGraceMs?: number } = {},
): Promise<OperationReport> {
  const report = await workers.client.workflow.execute<typeof switchover>('switchover', {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId: uniqueName('switchover-orders'),
    args: [{ runbook, from, to, requestedBy: 'test', reason: 'lab test', storageClassMap: [], ...extra }],
  });
  if (report.outcome === 'succeeded') active = to;
  return report;
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
  })) as {
    items: Array<{ status?: { state?: string } }>;
  };
  return [...new Set(list.items.map((v) => v.status?.state ?? 'Unknown'))];
}

const ordersVolumes = async () => (await sim.volumes()).filter((v) => v.origin.namespace === 'orders');

async function expectServing(to: string, from: string, report: OperationReport): Promise<void> {
  expect(report.outcome).toBe('succeeded');
  expect(report.steps.every((s) => s.state === 'succeeded')).toBe(true);
  expect(report.epochAfter).toBe((report.epochBefore ?? -1) + 1);
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
  expect(await workers.witness.state('orders')).toMatchObject({ activeSite: to, epoch: report.epochAfter });
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

describe('switchover workflow', () => {
  it('moves orders from dc-a to dc-b with no data lost', async () => {
    const report = await run('dc-a', 'dc-b');
    await expectServing('dc-b', 'dc-a', report);
  });

  it('moves it back to dc-a, reusing the claims the first move left there', async () => {
    const report = await run('dc-b', 'dc-a');
    await expectServing('dc-a', 'dc-b', report);
  });

  it('compensates a promotion the storage refuses: the source serves again as before', async () => {
    await sim.setFaults({ failNextPromotions: 100_000, failPromotionsOnSite: 'dc-b' });
    const before = await workers.witness.state('orders');
    const report = await run('dc-a', 'dc-b', { refusalGraceMs: 1_500 });
    await resetSim();
    expect(report.outcome).toBe('rolled-back');
    expect(report.pointOfNoReturnPassed).toBe(false);
    expect(report.steps.find((s) => s.id === 'promote-target')).toMatchObject({ state: 'failed' });
    expect(report.error).toContain('injected fault');
    expect(report.notes).toEqual([
      'compensated: withdraw the promotion of the volumes on dc-b',
      'compensated: promote the volumes on dc-a back',
      'compensated: scale the workloads on dc-a back up',
    ]);
    const a = await replicas(dcA);
    for (const [name, n] of Object.entries(EXPECTED)) expect(a[name]).toEqual({ want: n, ready: n });
    expect(await vrStates(dcA)).toEqual(['Primary']);
    expect(await vrStates(dcB)).toEqual(['Secondary']);
    const requested = (await dcB.custom.listNamespacedCustomObject({
      ...CRD.volumeReplication,
      namespace: 'orders',
    })) as {
      items: Array<{ spec: { replicationState: string } }>;
    };
    expect(requested.items.every((v) => v.spec.replicationState === 'secondary')).toBe(true);
    expect(await workers.witness.state('orders')).toEqual(before);
    for (const v of await ordersVolumes()) expect(v.splitBrain).toBe(false);
  });
});
