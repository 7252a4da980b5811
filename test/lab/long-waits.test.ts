/**
 * Operations that wait for a person far longer than the witness lock's TTL (6 h), on Temporal's
 * time-skipping test server so that a night passes in seconds: a real switchover of a throwaway
 * application on the lab, run by in-process workers with the real activities, whose traffic cannot
 * be taken from dc-a (its Service there is gone) after the point of no return, so that it waits for
 * an operator's decision.
 *
 * - The decision comes after 7 h: the operation renewed its lock every hour and still holds it,
 *   then goes on and releases it at the end.
 * - The decision never comes: after 24 h the operation ends needing attention, as it stands, and
 *   releases its lock; nothing is rolled back or done meanwhile.
 *
 * Redis expires the lock by the wall clock, which the test server does not skip: the tests let the
 * same time pass for the lock key (`ageLock`), so that a lock nobody renews does run out.
 *
 * The lab's own Temporal and workers never see these operations; they share the lab's sites, array
 * and witness, under an application name of their own that no runbook of the lab names (so no site
 * guard touches it), and remove it from all three at the end.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import type { WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import {
  bundleWorkflowCode,
  DefaultLogger,
  Runtime,
  Worker,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import type { V1Service } from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { createControlActivities } from '../../activities/index.ts';
import { startOperations } from '../../api/operations.ts';
import { CRD, mergePatch, type SiteApi } from '../../common/k8s.ts';
import { CONTROL_TASK_QUEUE } from '../../common/task-queues.ts';
import { waitUntil } from '../../common/wait.ts';
import { loadConfig } from '../../config/load.ts';
import type { SiteName } from '../../lab/layout.ts';
import type { PivotConfig } from '../../config/types.ts';
import { seedReplicatedApp } from '../../lab/seed.ts';
import { provisionTestServer } from '../../lab/tools.ts';
import { gatherInputsFor } from '../../planner/inputs.ts';
import { Witness } from '../../witness/witness.ts';
import { createSiteWorker, WORKFLOWS_PATH } from '../../worker/workers.ts';
import type { OperationReport } from '../../workflows/progress.ts';
import { deleteNamespace, lab, readVr, sim, site, status, uniqueName } from './helpers.ts';
import { ledgerObjects } from './fixtures.ts';

const HOUR = 3600_000;
/** The lock's TTL (LOCK_TTL_MS in activities/control.ts): the waits below outlast it. */
const LOCK_TTL_MS = 6 * HOUR;
/** The engine's default wait for a decision after the point of no return (workflows/engine.ts). */
const DECISION_TIMEOUT_MS = 24 * HOUR;
const FAILING_STEP = 'repoint-traffic';

const dcA = site('dc-a');
const dcB = site('dc-b');
let config: PivotConfig;
let redis: Redis;
let witness: Witness;
let testServer: string;
let bundle: WorkflowBundleWithSourceMap;

/** One test's world: its own time-skipping server and workers, and its own application. */
interface Harness {
  env: TestWorkflowEnvironment;
  app: string;
  /** Holds the application's runbook only: the configuration of this test's operations points here. */
  runbookDir: string;
  /** When (workflow time, ms) each renewLock of this application was scheduled. */
  renewals: number[];
  handle?: WorkflowHandle;
  close(): Promise<void>;
}
let h: Harness;

beforeAll(async () => {
  // The workers' own logs (bundling, state changes, the test server's missing features) would
  // drown the test output; errors still show.
  try {
    Runtime.install({
      logger: new DefaultLogger('ERROR'),
      telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } },
    });
  } catch {
    // A runtime exists already in this process: its logger stays.
  }
  testServer = await provisionTestServer();
  config = loadConfig(lab.layout.configFile);
  redis = new Redis((await status()).redis.url, { maxRetriesPerRequest: 1 });
  witness = new Witness(redis);
  // Bundled once: each test's control worker runs the same workflow code.
  bundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('ERROR') });
}, 180_000);

afterAll(async () => {
  await redis?.quit();
});

// A server per test: skipped hours never go back, and the next operation's workflow clock must
// agree with the lab's (a switchover waits for a sync newer than its quiesce, by that clock).
beforeEach(async () => {
  h = await openHarness();
}, 240_000);

afterEach(async () => {
  await h?.close();
}, 240_000);

describe('an operation waiting for a decision longer than its lock lives', () => {
  it('renews its lock every hour of a 7 h wait, still holds it, then goes on and releases it', async () => {
    const handle = await startSwitchover();
    const since = await waitForDecision(handle);
    await skip(7 * HOUR);
    // The renewal due on the 7th hour is an activity that runs in real time after the timer fired.
    await waitUntil(
      'the renewal due at 7 h',
      () => h.renewals.length >= 7 || `${h.renewals.length} renewals`,
      {
        timeoutMs: 30_000,
        intervalMs: 100,
      },
    );
    expect((await h.env.currentTimeMs()) - since).toBeGreaterThan(LOCK_TTL_MS);
    expect((await handle.query<OperationReport>('progress')).waiting?.for).toBe('decision');
    expect({ holder: await witness.lockHolder(h.app), renewedAfterHours: renewedAfterHours(since) }).toEqual({
      holder: `${handle.workflowId}/${(await handle.describe()).runId}`,
      renewedAfterHours: [1, 2, 3, 4, 5, 6, 7],
    });

    // The morning: on-call puts the Service back and retries the step.
    await dcA.core.createNamespacedService({ namespace: h.app, body: ledgerService(h.app) });
    await handle.executeUpdate('retry', { args: [{ by: 'on-call', step: FAILING_STEP }] });
    const report = (await handle.result()) as OperationReport;
    expect(report).toMatchObject({ outcome: 'succeeded', epochBefore: 0, epochAfter: 1 });
    expect(report.decisions.map((d) => [d.action, d.by])).toEqual([['retry', 'on-call']]);
    expect(report.steps.filter((s) => s.state !== 'succeeded')).toEqual([]);
    expect(await witness.lockHolder(h.app)).toBeUndefined();
    expect(await witness.state(h.app)).toMatchObject({ activeSite: 'dc-b', epoch: 1, fencedSites: [] });
    expect(renewedAfterHours(since)).toHaveLength(7);
  }, 300_000);

  it('ends needing attention when no decision comes within 24 h, as it stands, and releases its lock', async () => {
    const handle = await startSwitchover();
    const since = await waitForDecision(handle);
    const asItStood = await sites();

    await skip(DECISION_TIMEOUT_MS - HOUR / 2);
    expect({ holder: await witness.lockHolder(h.app), renewedAfterHours: renewedAfterHours(since) }).toEqual({
      holder: `${handle.workflowId}/${(await handle.describe()).runId}`,
      renewedAfterHours: Array.from({ length: 23 }, (_, i) => i + 1),
    });

    // Awaiting the result lets the test server skip to the timeout.
    const report = (await handle.result()) as OperationReport;
    const waited = Date.parse(report.endedAt!) - since;
    expect(waited).toBeGreaterThanOrEqual(DECISION_TIMEOUT_MS);
    expect(waited).toBeLessThan(DECISION_TIMEOUT_MS + 60_000);
    expect(report).toMatchObject({
      outcome: 'needs-attention',
      currentStep: FAILING_STEP,
      pointOfNoReturnPassed: true,
      decisions: [],
      suggestion:
        'the volumes are primary on dc-b: fix the cause, then retry the failed step; never promote dc-a back without a reprotect',
    });
    expect(report.waiting).toBeUndefined();
    expect(report.error).toContain('dc-a: services ledger: HTTP 404 NotFound');
    const state = Object.fromEntries(report.steps.map((s) => [s.id, s.state]));
    expect(state).toMatchObject({
      'promote-target': 'succeeded',
      [FAILING_STEP]: 'failed',
      verify: 'pending',
      'record-active-site': 'pending',
    });
    // No renewal after the last hour, the lock released, and the sites as the failure left them:
    // past the promotion, the application runs on dc-b, its volume primary there, the witness
    // naming it.
    expect(renewedAfterHours(since)).toHaveLength(23);
    expect(await witness.lockHolder(h.app)).toBeUndefined();
    expect(await sites()).toEqual(asItStood);
    expect(asItStood).toMatchObject({
      'dc-a': { replicas: 0, replication: ['Secondary'] },
      'dc-b': { replicas: 1, replication: ['Primary'] },
      witness: { activeSite: 'dc-b', epoch: 1, fencedSites: [] },
    });
  }, 300_000);
});

/**
 * Starts a time-skipping test server with a control worker and a worker per site, on the lab's
 * sites, witness and array, and seeds an application of its own, active on dc-a.
 */
async function openHarness(): Promise<Harness> {
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: testServer } },
  });
  const app = uniqueName('long-wait');
  const runbookDir = mkdtempSync(join(tmpdir(), 'pivot-long-waits-'));
  writeFileSync(join(runbookDir, `${app}.yaml`), runbookYaml(app));
  const renewals: number[] = [];
  const namespace = env.namespace ?? 'default';
  const control = createControlActivities(
    witness,
    config.lab ? { storageSimulatorUrl: config.lab.storageSimulatorUrl } : {},
  );
  const workers = [
    await Worker.create({
      connection: env.nativeConnection,
      namespace,
      taskQueue: CONTROL_TASK_QUEUE,
      workflowBundle: bundle,
      activities: {
        ...control,
        /** The real renewal, noting when the workflow asked for it (the test server's clock). */
        async renewLock(lockApp: string, operationId: string): Promise<void> {
          if (lockApp === app) renewals.push(Context.current().info.currentAttemptScheduledTimestampMs);
          return control.renewLock(lockApp, operationId);
        },
      },
    }),
    ...(await Promise.all(
      // Each site's worker as the lab runs it: as the site worker's account on its own site.
      config.sites.map((s) =>
        createSiteWorker(
          env.nativeConnection,
          namespace,
          loadConfig(lab.layout.workerConfigFiles[s.name as SiteName]).sites.find((x) => x.name === s.name)!,
          witness,
        ),
      ),
    )),
  ];
  const running = Promise.all(workers.map((w) => w.run()));
  let closed: Promise<void> | undefined;
  const harness: Harness = {
    env,
    app,
    runbookDir,
    renewals,
    // Once only: a harness that failed to open is closed there, and again by afterEach.
    close: () =>
      (closed ??= (async () => {
        await harness.handle?.terminate('lab test cleanup').catch(() => undefined); // an ended one refuses
        for (const w of workers) w.shutdown();
        await running;
        await env.teardown();
        await removeApp(app);
        rmSync(runbookDir, { recursive: true, force: true });
      })()),
  };
  try {
    await seedReplicatedApp(dcA, dcB, {
      namespace: app,
      partOf: app,
      claims: ['data-ledger-0'],
      objects: ledgerObjects(app),
    });
    // Traffic is repointed through the Service: on dc-b, but no longer on dc-a.
    await dcB.core.createNamespacedService({ namespace: app, body: ledgerService(app) });
    await waitUntil(
      `${app} to run on dc-a, its volume primary there, synced, and secondary on dc-b`,
      async () => {
        const [a, b] = [await appOn(dcA, app), await appOn(dcB, app)];
        const vr = await readVr(dcA, app, 'data-ledger-0');
        const ready =
          a.ready === 1 &&
          a.replication.join() === 'Primary' &&
          b.replication.join() === 'Secondary' &&
          vr.status?.lastSyncTime !== undefined;
        return ready || JSON.stringify({ 'dc-a': a, 'dc-b': b, lastSyncTime: vr.status?.lastSyncTime });
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
  } catch (err) {
    await harness.close();
    throw err;
  }
  return harness;
}

/**
 * Starts a switchover of the harness's application through the code path of the API and the CLI:
 * the inputs gathered from the configuration (with a runbook directory holding only this
 * application) and planned, then started under the operation's workflow id.
 */
async function startSwitchover(): Promise<WorkflowHandle> {
  const inputs = await gatherInputsFor({ ...config, runbooks: { dir: h.runbookDir } }, { apps: [h.app] });
  const { plan, started } = await startOperations(
    h.env.client,
    {
      operation: 'switchover',
      apps: [h.app],
      requestedBy: 'test',
      reason: 'lab test: a decision that takes all night',
      trigger: 'test',
    },
    inputs,
  );
  if (started.length !== 1)
    throw new Error(`the switchover was not started: ${JSON.stringify(plan.refused)}`);
  h.handle = h.env.client.workflow.getHandle(started[0]!.workflowId);
  return h.handle;
}

/** Waits (in real time) until the traffic step failed; returns when the wait began (workflow time). */
async function waitForDecision(handle: WorkflowHandle): Promise<number> {
  let last: OperationReport | undefined;
  await waitUntil(
    'the traffic step to fail and the switchover to wait for a decision',
    async () => {
      last = await handle.query<OperationReport>('progress');
      return last.waiting?.for === 'decision' || `${last.currentStep ?? '-'} ${last.outcome}`;
    },
    { timeoutMs: 180_000, intervalMs: 500 },
  );
  expect(last).toMatchObject({ currentStep: FAILING_STEP, pointOfNoReturnPassed: true });
  expect(await witness.lockHolder(h.app)).toBe(`${handle.workflowId}/${(await handle.describe()).runId}`);
  return Date.parse(last!.waiting!.since);
}

/**
 * Lets `ms` pass on the test server, an hour at a time, and after each hour at least as much for
 * the witness lock (the real seconds between are counted twice: the lock can only run out sooner).
 */
async function skip(ms: number): Promise<void> {
  for (let left = ms; left > 0; left -= HOUR) {
    const before = await h.env.currentTimeMs();
    await h.env.sleep(Math.min(left, HOUR));
    await ageLock(h.app, (await h.env.currentTimeMs()) - before);
  }
}

/** What Redis would have done to the lock of `app` had `ms` really passed: shortened or expired it. */
async function ageLock(app: string, ms: number): Promise<void> {
  const key = `pivot:lock:{${app}}`; // witness/witness.ts
  const left = await redis.pttl(key);
  if (left < 0) return; // no lock, or one without expiry
  if (left <= ms) await redis.del(key);
  else await redis.pexpire(key, left - ms);
}

/** After how many hours of the wait each renewal came (whole hours: each is due on the hour). */
function renewedAfterHours(since: number): number[] {
  return h.renewals.map((at) => Math.floor((at - since) / HOUR));
}

/** The application on one site: its workload, the replication of its volume, its ConfigMaps. */
async function appOn(api: SiteApi, app: string) {
  const ledger = await api.apps.readNamespacedStatefulSet({ name: 'ledger', namespace: app });
  const vrs = (await api.custom.listNamespacedCustomObject({
    ...CRD.volumeReplication,
    namespace: app,
  })) as { items: Array<{ spec: { replicationState: string }; status?: { state?: string } }> };
  const cms = await api.core.listNamespacedConfigMap({ namespace: app });
  const services = await api.core.listNamespacedService({ namespace: app });
  return {
    replicas: ledger.spec?.replicas ?? 0,
    ready: ledger.status?.readyReplicas ?? 0,
    replication: vrs.items.map((v) => v.status?.state ?? 'Unknown'),
    requested: vrs.items.map((v) => v.spec.replicationState),
    configMaps: cms.items.map((c) => ({ name: c.metadata?.name, data: c.data })),
    services: services.items.map((v) => ({ name: v.metadata?.name, selector: v.spec?.selector })),
  };
}

/** The application on both sites and in the witness: what a waiting operation must not change. */
async function sites(): Promise<Record<string, unknown>> {
  return {
    'dc-a': await appOn(dcA, h.app),
    'dc-b': await appOn(dcB, h.app),
    witness: await witness.state(h.app),
  };
}

/**
 * Removes the application from both sites and the simulated array, and its records from the
 * witness. Its PVs are Retain (rebound ones too): set to Delete before the namespace goes, the
 * array's provisioner destroys each copy and its PV once the claim is gone, as a CSI driver would.
 */
async function removeApp(app: string): Promise<void> {
  const pvsOf = async (api: SiteApi) =>
    (await api.core.listPersistentVolume()).items.filter((pv) => pv.spec?.claimRef?.namespace === app);
  for (const api of [dcA, dcB]) {
    for (const pv of await pvsOf(api)) {
      await api.core.patchPersistentVolume(
        { name: pv.metadata!.name!, body: { spec: { persistentVolumeReclaimPolicy: 'Delete' } } },
        mergePatch,
      );
    }
    await deleteNamespace(api, app);
  }
  await waitUntil(
    `the array to destroy the volumes of ${app}`,
    async () => {
      const left = [...(await pvsOf(dcA)), ...(await pvsOf(dcB))].map((pv) => pv.metadata!.name!);
      const volumes = (await sim.volumes()).filter((v) => v.origin.namespace === app);
      return (
        (left.length === 0 && volumes.length === 0) || `PVs ${left.join(', ')}; ${volumes.length} volumes`
      );
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  const keys = await redis.keys(`pivot:*:{${app}}`);
  if (keys.length > 0) await redis.del(...keys);
}

/** The Service its traffic goes through (the runbook's traffic target). */
function ledgerService(ns: string): V1Service {
  return {
    metadata: { name: 'ledger', namespace: ns, labels: { 'app.kubernetes.io/part-of': ns } },
    spec: { selector: { 'app.kubernetes.io/name': 'ledger' }, ports: [{ port: 5432 }] },
  };
}

/** Its runbook: traffic through the Service `ledger`, checked ready on the target. */
function runbookYaml(app: string): string {
  return `apiVersion: pivot.dev/v1alpha1
kind: Runbook
metadata: { name: ${app} }
spec:
  namespaces: [${app}]
  sites: { primary: dc-a, secondary: dc-b }
  workloads:
    - { kind: StatefulSet, name: ledger, startOrder: 1 }
  volumes:
    - name: ledger-data
      selector: { matchLabels: { app.kubernetes.io/part-of: ${app} } }
      replication: { provider: csi-addons, volumeReplicationClass: sim-replication }
  traffic:
    - kind: ServiceSelector
      name: ledger
      selector: { app.kubernetes.io/name: ledger }
  healthChecks:
    - { name: ready, kind: WorkloadsReady, timeout: 2m }
  objectives: { rpo: 30s, rto: 10m }
`;
}
