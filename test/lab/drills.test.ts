/**
 * Drills on the lab (docs/adr/0004-drills.md): a drill of orders passes within its objectives and
 * leaves both sites and the simulated array exactly as they were, while production keeps writing;
 * a drill whose copy fails its checks fails with the reason and cleans up; an aborted drill and a
 * cancelled one clean up. The HTML evidence renders in headless Chromium; its screenshot is kept
 * in artifacts/ (the test's artefacts).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { CRD, type SiteApi } from '../../common/k8s.ts';
import { CONTROL_TASK_QUEUE } from '../../common/task-queues.ts';
import { PIVOT_VERSION } from '../../common/version.ts';
import { waitUntil } from '../../common/wait.ts';
import { DRILL_POLICY } from '../../activities/drill.ts';
import { REPO_ROOT } from '../../lab/layout.ts';
import { loadRunbookDir } from '../../planner/inputs.ts';
import type { HealthCheck, Hook } from '../../runbook/types.ts';
import type { DrillScheduleView } from '../../api/schedules.ts';
import type { DrillInput, DrillReport } from '../../workflows/drill.ts';
import { drillWorkflowId } from '../../workflows/ids.ts';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { parse } from 'yaml';
import { pivot, sim, site, status } from './helpers.ts';
import { connectPivot, type LabPivot } from './temporal.ts';

const run = promisify(execFile);
const dcA = site('dc-a');
const dcB = site('dc-b');
const networking = dcB.kubeConfig.makeApiClient(k8s.NetworkingV1Api);
const ARTIFACTS = join(REPO_ROOT, 'artifacts');
let temporal: LabPivot;

beforeAll(async () => {
  temporal = await connectPivot();
});

afterAll(async () => {
  await temporal?.close();
});

/** What must not change on a site: the production objects' specs, and no drill object left. */
async function siteFingerprint(api: SiteApi): Promise<unknown> {
  const ns = 'orders';
  const pick = (o: { metadata?: k8s.V1ObjectMeta }) => ({
    name: o.metadata?.name,
    uid: o.metadata?.uid,
    labels: o.metadata?.labels ?? {},
    annotations: Object.fromEntries(
      Object.entries(o.metadata?.annotations ?? {}).filter(([k]) => k.startsWith('pivot.dev/')),
    ),
  });
  const [pvcs, pvs, sts, deploys, services, namespaces, pods, vrs, contents] = await Promise.all([
    api.core.listNamespacedPersistentVolumeClaim({ namespace: ns }),
    api.core.listPersistentVolume(),
    api.apps.listNamespacedStatefulSet({ namespace: ns }),
    api.apps.listNamespacedDeployment({ namespace: ns }),
    api.core.listNamespacedService({ namespace: ns }),
    api.core.listNamespace(),
    api.core.listNamespacedPod({ namespace: ns }),
    api.custom.listNamespacedCustomObject({ ...CRD.volumeReplication, namespace: ns }) as Promise<{
      items: Array<{ metadata: k8s.V1ObjectMeta; spec: unknown; status?: { state?: string } }>;
    }>,
    api.custom.listClusterCustomObject(CRD.volumeSnapshotContent) as Promise<{ items: unknown[] }>,
  ]);
  return {
    claims: pvcs.items.map((c) => ({ ...pick(c), volume: c.spec?.volumeName, phase: c.status?.phase })),
    volumes: pvs.items.map((v) => ({
      ...pick(v),
      claim: `${v.spec?.claimRef?.namespace}/${v.spec?.claimRef?.name}`,
      policy: v.spec?.persistentVolumeReclaimPolicy,
      handle: v.spec?.csi?.volumeHandle,
      phase: v.status?.phase,
    })),
    workloads: [...sts.items, ...deploys.items].map((w) => ({
      ...pick(w),
      replicas: w.spec?.replicas,
      image: w.spec?.template.spec?.containers[0]?.image,
    })),
    services: services.items.map((s) => ({ ...pick(s), selector: s.spec?.selector })),
    namespaces: namespaces.items.map((n) => n.metadata?.name).sort(),
    // Hook Jobs' pods come and go with their TTL; they are checked by jobsSince().
    pods: pods.items
      .filter((p) => !p.metadata?.ownerReferences?.some((o) => o.kind === 'Job'))
      .map((p) => p.metadata?.uid)
      .sort(),
    replications: vrs.items.map((v) => ({ name: v.metadata.name, spec: v.spec, state: v.status?.state })),
    snapshotContents: contents.items.length,
  };
}

/** What must not change at the array: each production volume's copies, roles and fences. */
async function arrayFingerprint(): Promise<unknown> {
  return (await sim.volumes())
    .map((v) => ({
      handle: v.handle,
      origin: v.origin,
      copies: v.copies.map((c) => ({ site: c.site, role: c.role, fenced: c.fenced, lineage: c.lineage })),
      splitBrain: v.splitBrain,
    }))
    .sort((a, b) => a.handle.localeCompare(b.handle));
}

async function fingerprint() {
  return {
    dcA: await siteFingerprint(dcA),
    dcB: await siteFingerprint(dcB),
    array: await arrayFingerprint(),
    witness: await temporal.witness.state('orders'),
  };
}

/** Jobs created in a production namespace since `since` (a drill's hooks must run in its own). */
async function jobsSince(since: number): Promise<string[]> {
  const found: string[] = [];
  for (const api of [dcA, dcB]) {
    const jobs = await api.kubeConfig
      .makeApiClient(k8s.BatchV1Api)
      .listNamespacedJob({ namespace: 'orders' });
    for (const j of jobs.items) {
      if ((j.metadata?.creationTimestamp?.getTime() ?? 0) >= since)
        found.push(`${api.site}/${j.metadata?.name}`);
    }
  }
  return found;
}

/** A drill of the lab's orders runbook with extra post-promote hooks, started as the API would. */
function drillOf(extra: { hooks: Hook[]; healthChecks?: HealthCheck[] }, reason: string): DrillInput {
  const [orders] = loadRunbookDir(join(REPO_ROOT, 'runbooks'), ['dc-a', 'dc-b']);
  return {
    runbook: {
      ...orders!,
      spec: {
        ...orders!.spec,
        hooks: [...orders!.spec.hooks, ...extra.hooks],
        healthChecks: [...orders!.spec.healthChecks, ...(extra.healthChecks ?? [])],
      },
    },
    active: 'dc-a',
    site: 'dc-b',
    requestedBy: 'drills test',
    reason,
    versions: { pivot: PIVOT_VERSION, runbook: 'test' },
    retentionDays: 1,
  };
}

const primaryWrites = async (): Promise<number> =>
  (await sim.volumes())
    .filter((v) => v.origin.namespace === 'orders')
    .reduce((sum, v) => sum + (v.copies.find((c) => c.role === 'primary')?.seq ?? 0), 0);

async function drillNamespaceExists(): Promise<boolean> {
  return (await dcB.core.listNamespace()).items.some((n) => n.metadata?.name === 'orders-drill');
}

describe('drills', () => {
  it('a drill of orders passes within its objectives and changes nothing in production, which keeps writing', async () => {
    const before = await fingerprint();
    const writesBefore = await primaryWrites();
    const drillStarted = Date.now() - 1000;
    const started = await pivot(['drill', 'run', 'orders', '--json', '--reason', 'quarterly DR test']);
    expect({ code: started.code, stderr: started.stderr }).toEqual({
      code: 0,
      stderr: 'orders: drill on dc-b started (pivot-drill:orders)\n',
    });
    // While it runs: the copy is isolated, and a second trigger attaches instead of a rival drill.
    await waitUntil('the drill copy to be isolated', async () => {
      const policies = await networking
        .listNamespacedNetworkPolicy({ namespace: 'orders-drill' })
        .catch(() => ({ items: [] as k8s.V1NetworkPolicy[] }));
      return policies.items.some((p) => p.metadata?.name === DRILL_POLICY) || 'no policy yet';
    });
    const policy = await networking.readNamespacedNetworkPolicy({
      namespace: 'orders-drill',
      name: DRILL_POLICY,
    });
    expect(policy.spec).toMatchObject({
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ _from: [{ podSelector: {} }] }],
    });
    const again = await pivot(['drill', 'run', 'orders', '--reason', 'quarterly DR test']);
    expect(again.stderr).toContain('orders: a drill is already running (pivot-drill:orders): attached to it');

    const watched = await pivot(['watch', 'drill:orders', '--json']);
    expect(watched.code).toBe(0);
    const report = JSON.parse(watched.stdout) as DrillReport;
    expect(report).toMatchObject({ operation: 'drill', outcome: 'succeeded', from: 'dc-a', to: 'dc-b' });
    expect(report.drill).toMatchObject({
      site: 'dc-b',
      namespace: 'orders-drill',
      verdict: 'pass',
      reasons: [],
      cleanup: { done: true },
      versions: { pivot: PIVOT_VERSION },
    });
    expect(report.drill.clones.map((c) => c.claim).sort()).toEqual([
      'data-mysql-0',
      'data-mysql-1',
      'data-mysql-2',
      'data-redis-0',
    ]);
    expect(report.drill.achieved.rtoMs).toBeLessThanOrEqual(report.drill.objectives.rtoMs);
    expect(report.drill.achieved.rpoMs).toBeLessThanOrEqual(report.drill.objectives.rpoMs);
    expect(report.steps.map((s) => [s.id, s.state])).toEqual([
      ['preflight', 'succeeded'],
      ['isolate', 'succeeded'],
      ['clone-replicas', 'succeeded'],
      ['start-workloads', 'succeeded'],
      ['hooks-post-promote', 'succeeded'],
      ['verify', 'succeeded'],
      ['cleanup', 'succeeded'],
    ]);

    // Production kept writing through the drill, and nothing in it changed.
    expect(await primaryWrites()).toBeGreaterThan(writesBefore);
    expect(await fingerprint()).toEqual(before);
    expect(await jobsSince(drillStarted)).toEqual([]);

    // The API's metrics show it (within the status monitor's period: a scrape reads no witness),
    // and the alerting rules read only metrics the API exports.
    let families: Array<{
      name: string;
      metrics: Array<{ labels?: Record<string, string>; value?: string }>;
    }> = [];
    const gauge = (name: string) =>
      families.find((f) => f.name === name)?.metrics.find((m) => m.labels?.['app'] === 'orders');
    await waitUntil(
      'the drill gauges to show the drill',
      async () => {
        families = parsePrometheusTextFormat(
          await (await fetch(`${(await status()).api.url}/metrics`)).text(),
        ) as typeof families;
        const shown = Number(gauge('pivot_drill_last_success_timestamp_seconds')?.value);
        return shown === Date.parse(report.endedAt!) / 1000 || `shows ${shown}`;
      },
      { timeoutMs: 45_000, intervalMs: 1000 },
    );
    expect(gauge('pivot_drill_last_passed')?.value).toBe('1');
    const rules = parse(
      readFileSync(join(REPO_ROOT, 'deploy', 'prometheus', 'pivot-drills.rules.yaml'), 'utf8'),
    ) as {
      groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
    };
    const used = rules.groups.flatMap((g) => g.rules.flatMap((r) => r.expr.match(/pivot_[a-z_]+/g) ?? []));
    expect(used.length).toBeGreaterThan(0);
    for (const name of used)
      expect({ name, exported: families.some((f) => f.name === name) }).toEqual({ name, exported: true });

    // The evidence is kept, listed, and renders as HTML in headless Chromium.
    const list = await pivot(['drill', 'list', 'orders', '--json']);
    expect((JSON.parse(list.stdout) as { drills: Array<{ id: string }> }).drills[0]?.id).toBe(
      report.drill.id,
    );
    mkdirSync(ARTIFACTS, { recursive: true });
    const htmlFile = join(ARTIFACTS, `drill-${report.drill.id}.html`);
    const shown = await pivot(['drill', 'report', report.drill.id, '--out', htmlFile]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`drill ${report.drill.id} on dc-b (orders-drill) — PASS`);
    expect(shown.stderr).toContain(`HTML report: ${htmlFile}`);
    const html = readFileSync(htmlFile, 'utf8');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/i); // self-contained
    const png = join(ARTIFACTS, `drill-${report.drill.id}.png`);
    const chromium = ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars'];
    const dom = await run('chromium', [...chromium, '--dump-dom', `file://${htmlFile}`], { timeout: 60_000 });
    expect(dom.stdout).toContain('DR drill of orders');
    expect(dom.stdout).toMatch(/class="verdict pass">PASS</);
    await run(
      'chromium',
      [...chromium, `--screenshot=${png}`, '--window-size=1100,1400', `file://${htmlFile}`],
      {
        timeout: 60_000,
      },
    );
    const header = readFileSync(png).subarray(0, 8);
    expect(header.equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
    expect(statSync(png).size).toBeGreaterThan(10_000);
  }, 300_000);

  it('a drill whose copy fails its checks fails with the reason, and still cleans up', async () => {
    const before = await fingerprint();
    const drillStarted = Date.now() - 1000;
    const failing: Hook = {
      name: 'schema-check',
      phase: 'post-promote',
      exec: {
        selector: { 'app.kubernetes.io/name': 'mysql' },
        command: ['sh', '-c', 'echo "table orders.items is missing" >&2; exit 3'],
      },
      timeout: '30s',
      onError: 'fail',
    };
    const input = drillOf({ hooks: [failing] }, 'a copy that fails its checks');
    const report = (await temporal.client.workflow.execute('drill', {
      taskQueue: CONTROL_TASK_QUEUE,
      workflowId: drillWorkflowId('orders'),
      args: [input],
    })) as DrillReport;
    expect(report.outcome).toBe('failed');
    expect(report.drill.verdict).toBe('fail');
    expect(report.drill.reasons.join('\n')).toContain('step hooks-post-promote failed');
    expect(report.drill.reasons.join('\n')).toContain('table orders.items is missing');
    expect(report.drill.cleanup.done).toBe(true);
    expect(report.steps.find((s) => s.id === 'cleanup')?.state).toBe('succeeded');
    expect(await drillNamespaceExists()).toBe(false);
    expect(await fingerprint()).toEqual(before);
    expect(await jobsSince(drillStarted)).toEqual([]);
  }, 300_000);

  it("runs the runbook's Hook checks on the copy: a failing one fails the drill, which still cleans up", async () => {
    const before = await fingerprint();
    // A check only (no drill step runs pre-fence hooks): it runs at verify, against the copy.
    const check: Hook = {
      name: 'rows-check',
      phase: 'pre-fence',
      exec: {
        selector: { 'app.kubernetes.io/name': 'mysql' },
        command: ['sh', '-c', 'echo "orders.items has 0 rows on the copy" >&2; exit 4'],
      },
      timeout: '10s',
      onError: 'fail',
    };
    const report = (await temporal.client.workflow.execute('drill', {
      taskQueue: CONTROL_TASK_QUEUE,
      workflowId: drillWorkflowId('orders'),
      args: [
        drillOf(
          { hooks: [check], healthChecks: [{ name: 'rows', kind: 'Hook', hook: 'rows-check' }] },
          'a copy whose data check fails',
        ),
      ],
    })) as DrillReport;
    expect(report.outcome).toBe('failed');
    expect(report.drill.verdict).toBe('fail');
    expect(report.steps.find((s) => s.id === 'verify')?.state).toBe('failed');
    expect(report.drill.reasons.join('\n')).toContain('orders.items has 0 rows on the copy');
    expect(report.drill.cleanup.done).toBe(true);
    expect(await drillNamespaceExists()).toBe(false);
    expect(await fingerprint()).toEqual(before);
  }, 300_000);

  it.each([
    ['aborted with `pivot drill abort`', 'abort'],
    ['cancelled through Temporal', 'cancel'],
  ])(
    'a drill %s cleans up',
    async (_how, how) => {
      const before = await fingerprint();
      // A hook that takes its time keeps the drill running (clones made, workloads up) while it is stopped.
      const slow: Hook = {
        name: 'slow-check',
        phase: 'post-promote',
        exec: { selector: { 'app.kubernetes.io/name': 'mysql' }, command: ['sleep', '60'] },
        timeout: '2m',
        onError: 'fail',
      };
      const handle = await temporal.client.workflow.start('drill', {
        taskQueue: CONTROL_TASK_QUEUE,
        workflowId: drillWorkflowId('orders'),
        args: [drillOf({ hooks: [slow] }, 'a drill to stop')],
      });
      await waitUntil('the drill to run its hooks', async () => {
        const r = await handle.query<DrillReport>('progress');
        return r.currentStep === 'hooks-post-promote' || `at ${r.currentStep}`;
      });
      if (how === 'abort') {
        const aborted = await pivot(['drill', 'abort', 'orders', '--reason', 'change freeze']);
        expect(aborted.code).toBe(0);
      } else {
        await handle.cancel();
      }
      const report = (await handle.result()) as DrillReport;
      expect(report.outcome).toBe('aborted');
      expect(report.drill).toMatchObject({ verdict: 'fail', cleanup: { done: true } });
      if (how === 'abort') {
        expect(report.decisions).toEqual([
          expect.objectContaining({ action: 'abort', by: 'token:lab-operator', reason: 'change freeze' }),
        ]);
      }
      expect(await drillNamespaceExists()).toBe(false);
      expect(await fingerprint()).toEqual(before);
    },
    300_000,
  );

  it('a drill schedule fires on time, never runs two drills at once, and pauses', async () => {
    const created = Date.now();
    const name = 'every-15s';
    try {
      const c = await pivot(['drill', 'schedule', 'create', name, 'orders', '--every', '15s', '--json']);
      expect(c.code).toBe(0);
      const asked = JSON.parse(c.stdout) as DrillScheduleView;
      expect(asked).toMatchObject({ name, apps: ['orders'], every: '15s', paused: false });
      expect(Date.parse(asked.nextRuns[0]!) - Date.now()).toBeLessThanOrEqual(15_000); // within one interval
      // A drill takes longer than 15 s (its cleanup alone waits for a namespace to go): the
      // firings while one runs are skipped.
      let shown: DrillScheduleView | undefined;
      await waitUntil(
        'two scheduled runs and a skipped firing',
        async () => {
          shown = JSON.parse(
            (await pivot(['drill', 'schedule', 'show', name, '--json'])).stdout,
          ) as DrillScheduleView;
          return (
            (shown.recentRuns.length >= 2 && shown.skippedOverlap >= 1) || JSON.stringify(shown.recentRuns)
          );
        },
        { timeoutMs: 150_000, intervalMs: 3000 },
      );
      for (const r of shown!.recentRuns) {
        expect(Date.parse(r.startedAt) - Date.parse(r.scheduledAt)).toBeLessThan(5000); // on time
      }
      const paused = await pivot(['drill', 'schedule', 'pause', name, '--reason', 'freeze', '--json']);
      expect(JSON.parse(paused.stdout)).toMatchObject({
        paused: true,
        note: 'paused by token:lab-operator: freeze',
      });
    } finally {
      await pivot(['drill', 'schedule', 'delete', name, '--yes']);
    }
    await waitUntil('the last scheduled drill to end', async () => {
      const d = await temporal.client.workflow.getHandle(drillWorkflowId('orders')).describe();
      return d.status.name !== 'RUNNING' || 'running';
    });
    // The drills of orders since the schedule was made never overlapped, and ran as the schedule.
    const runs: Array<{ start: number; end: number; runId: string }> = [];
    for await (const w of temporal.client.workflow.list({
      query: `WorkflowId = '${drillWorkflowId('orders')}' AND StartTime > '${new Date(created).toISOString()}'`,
    })) {
      runs.push({ start: w.startTime.getTime(), end: w.closeTime?.getTime() ?? Infinity, runId: w.runId });
    }
    runs.sort((a, b) => a.start - b.start);
    expect(runs.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < runs.length; i++) expect(runs[i]!.start).toBeGreaterThanOrEqual(runs[i - 1]!.end);
    const first = (await temporal.client.workflow
      .getHandle(drillWorkflowId('orders'), runs[0]!.runId)
      .result()) as DrillReport;
    expect(first).toMatchObject({ trigger: `schedule:${name}`, outcome: 'succeeded' });
  }, 300_000);

  it('a blackout window keeps a schedule from firing in it', async () => {
    const hour = new Date().getUTCHours();
    const name = 'blacked-out';
    try {
      const c = await pivot([
        'drill',
        'schedule',
        'create',
        name,
        'orders',
        '--every',
        '15s',
        '--timezone',
        'UTC',
        '--blackout',
        `hours=${hour}`,
        '--json',
      ]);
      expect(c.code).toBe(0);
      const s = JSON.parse(c.stdout) as DrillScheduleView;
      const nextHour = new Date();
      nextHour.setUTCHours(hour + 1, 0, 0, 0);
      expect(s.nextRuns.length).toBeGreaterThan(0);
      expect(s.nextRuns.every((t) => Date.parse(t) >= nextHour.getTime())).toBe(true);
      expect(s.blackouts).toEqual([{ comment: `hours=${hour}`, hours: { start: hour, end: hour } }]);
    } finally {
      await pivot(['drill', 'schedule', 'delete', name, '--yes']);
    }
    const bad = await pivot([
      'drill',
      'schedule',
      'create',
      'bad',
      'orders',
      '--every',
      '1h',
      '--blackout',
      'hours=25',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('blackouts: hours from 0 to 23');
  }, 120_000);

  it('the switchover mode rehearses the real path after its own approval, and comes home', async () => {
    const before = await temporal.witness.state('orders');
    const started = await pivot([
      'drill',
      'run',
      'orders',
      '--mode',
      'switchover',
      '--reason',
      'annual real-path test',
    ]);
    expect(started.code).toBe(0);
    const handle = temporal.client.workflow.getHandle(drillWorkflowId('orders'));
    await waitUntil('the drill to wait for approval', async () => {
      const r = await handle.query<DrillReport>('progress');
      return r.waiting?.for === 'approval' || `at ${r.currentStep}`;
    });
    expect((await temporal.witness.state('orders')).epoch).toBe(before.epoch); // nothing moved yet
    const operator = await pivot(['approve', 'drill:orders'], {
      PIVOT_TOKEN: (await status()).api.tokens.operator!,
    });
    expect(operator.code).toBe(3); // an operator may not approve
    expect((await pivot(['approve', 'drill:orders', '--reason', 'drill window'])).code).toBe(0);
    const report = (await handle.result()) as DrillReport;
    expect(report).toMatchObject({
      outcome: 'succeeded',
      from: 'dc-a',
      to: 'dc-b',
      reason: 'annual real-path test',
    });
    expect(report.drill).toMatchObject({
      mode: 'switchover',
      verdict: 'pass',
      reasons: [],
      achieved: { rpoMs: 0 },
    });
    expect(report.steps.map((s) => [s.id, s.state])).toEqual([
      ['approval', 'succeeded'],
      ['switchover', 'succeeded'],
      ['failback', 'succeeded'],
    ]);
    expect(report.decisions).toEqual([
      expect.objectContaining({ action: 'approve', by: 'token:lab-approver' }),
    ]);
    const after = await temporal.witness.state('orders');
    expect(after).toMatchObject({ activeSite: 'dc-a', epoch: before.epoch + 2, fencedSites: [] });
  }, 300_000);

  it('an unknown drill id: exit 2 with what to do', async () => {
    const r = await pivot(['drill', 'report', 'payments']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no drill of payments is kept');
    expect(r.stderr).toContain('next: run one: `pivot drill run payments --reason "<why>"`');
  });
});
