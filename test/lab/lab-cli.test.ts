/**
 * `pivot lab` as an operator uses it, run as a process: the status contract, the sites'
 * independence, the sample application, losing and regaining a datacenter, and the clear refusals.
 */
import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labProcesses } from '../../lab/lab.ts';
import { SAMPLE_APP } from '../../lab/seed.ts';
import type { LabStatus } from '../../lab/status.ts';
import { CRD, connectConfiguredSite } from '../../common/k8s.ts';
import { loadConfig } from '../../config/load.ts';
import { apiProxy, lab, pivot, site, uniqueName } from './helpers.ts';

const dcA = site('dc-a');
const dcB = site('dc-b');

afterAll(async () => {
  const s = await lab.status();
  for (const st of s.sites) if (st.state !== 'running') await lab.reviveSite(st.name);
});

describe('pivot lab status', () => {
  it('reports every part running, with the documented JSON shape', async () => {
    const r = await pivot(['lab', 'status', '--json']);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as LabStatus;
    expect(s).toMatchObject({ schemaVersion: 1, state: 'running', seeded: true });
    expect(s.sites.map((x) => x.name)).toEqual(['dc-a', 'dc-b']);
    for (const x of s.sites) {
      expect(x).toMatchObject({ state: 'running', readyNodes: 3 });
      expect(x.apiServerUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(x.kubeconfig).toMatch(/kubeconfig\.yaml$/);
      expect(x.clientCidrs.length).toBeGreaterThan(0);
    }
    expect(s.temporal).toMatchObject({ state: 'running', namespace: 'default' });
    expect(s.temporal.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(s.temporal.webUiUrl).toMatch(/^http:\/\//);
    expect(s.redis.url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    expect(s.storageSimulator.state).toBe('running');
    expect(s.apiProxy.state).toBe('running');
    expect(Object.keys(s.apiProxy.siteUrls)).toEqual(['dc-a', 'dc-b']);
  });

  it('prints a readable table without --json', async () => {
    const r = await pivot(['lab', 'status']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('site dc-a');
    expect(r.stdout).toContain('temporal');
  });
});

describe('pivot lab api-faults', () => {
  // What Pivot's readers may list (the chart's RBAC: lab/identities.ts).
  const LIST_PVS = '^GET /api/v1/persistentvolumes(\\?|$)';
  afterEach(() => apiProxy.clear());

  it("fails Pivot's calls to a site through the proxy, and only Pivot's", async () => {
    const set = await pivot([
      'lab',
      'api-faults',
      'dc-a',
      '--error-rate',
      '1',
      '--status',
      '429',
      '--count',
      '1',
      // Only listing namespaces, which Pivot's own workers do not do while idle.
      '--match',
      LIST_PVS,
    ]);
    expect(set.code).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({
      'dc-a': { faults: { errorRate: 1, status: 429, count: 1 } },
    });
    // Pivot's view of dc-a (its configuration names the proxy): the next request is refused once,
    // which Pivot's client rides out (common/k8s-retry.ts).
    const config = loadConfig(lab.layout.configFile);
    const viaProxy = connectConfiguredSite(config.sites.find((s) => s.name === 'dc-a')!);
    const refused = async () => (await apiProxy.report())['dc-a']!.counters.errors;
    const before = await refused();
    expect((await viaProxy.core.listPersistentVolume()).items.length).toBeGreaterThan(0);
    expect(await refused()).toBe(before + 1);
    // Refused every time: Pivot's client gives up with the answer; the site itself never saw a fault.
    await apiProxy.setFaults('dc-a', { errorRate: 1, match: LIST_PVS });
    expect((await dcA.core.listPersistentVolume()).items.length).toBeGreaterThan(0);
    await expect(viaProxy.core.listPersistentVolume()).rejects.toMatchObject({ code: 503 });
  });

  it('refuses a bad fault with the reasons, and changes nothing', async () => {
    const r = await pivot(['lab', 'api-faults', 'dc-a', '--status', '404', '--drop-rate', '3']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('status must be equal to one of the allowed values');
    expect(r.stderr).toContain('dropRate must be <= 1');
    expect((await apiProxy.report())['dc-a']!.faults).toMatchObject({ errorRate: 0, dropRate: 0 });
  });
});

describe('the two sites', () => {
  it('are independent API servers: an object created on dc-a is absent on dc-b', async () => {
    const name = uniqueName('independence');
    await dcA.core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name }, data: { site: 'dc-a' } },
    });
    try {
      await expect(dcB.core.readNamespacedConfigMap({ name, namespace: 'default' })).rejects.toMatchObject({
        code: 404,
      });
    } finally {
      await dcA.core.deleteNamespacedConfigMap({ name, namespace: 'default' });
    }
  });

  it('run the sample application on dc-a, Ready, and stand by on dc-b', async () => {
    for (const w of SAMPLE_APP.workloads) {
      const a =
        w.kind === 'StatefulSet'
          ? await dcA.apps.readNamespacedStatefulSet({ name: w.name, namespace: SAMPLE_APP.namespace })
          : await dcA.apps.readNamespacedDeployment({ name: w.name, namespace: SAMPLE_APP.namespace });
      expect(a.status?.readyReplicas).toBe(w.replicas);
    }
    const mysqlClaim = await dcA.core.readNamespacedPersistentVolumeClaim({
      name: 'data-mysql-0',
      namespace: 'orders',
    });
    expect(mysqlClaim.spec?.accessModes).toEqual(['ReadWriteOncePod']);
    const running = (await dcB.core.listNamespacedPod({ namespace: 'orders' })).items.filter(
      (p) => p.status?.phase === 'Running',
    );
    expect(running.map((p) => p.metadata?.name)).toEqual([]);
    const vrs = (await dcB.custom.listNamespacedCustomObject({
      ...CRD.volumeReplication,
      namespace: 'orders',
    })) as {
      items: Array<{ spec: { replicationState: string }; status?: { state?: string } }>;
    };
    expect(vrs.items).toHaveLength(SAMPLE_APP.claims.length);
    expect(
      vrs.items.every((v) => v.spec.replicationState === 'secondary' && v.status?.state === 'Secondary'),
    ).toBe(true);
  });
});

describe('pivot lab up', () => {
  it('on a running lab changes nothing', async () => {
    const before = await dcA.core.readNamespace({ name: 'orders' });
    const r = await pivot(['lab', 'up']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('already running');
    const after = await dcA.core.readNamespace({ name: 'orders' });
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
  });

  it('with a port taken names the part, exits non-zero and starts nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pivot-lab-'));
    const base = 27000;
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(base + 233, '127.0.0.1', resolve));
    try {
      const r = await pivot(['lab', 'up'], { PIVOT_LAB_DIR: dir, PIVOT_LAB_PORT_BASE: String(base) });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`temporal: port ${base + 233} is already in use`);
      expect(r.stderr).toContain('nothing was started');
      expect(labProcesses(dir)).toEqual([]);
    } finally {
      blocker.close();
      for (const pid of labProcesses(dir)) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('losing and regaining a datacenter', () => {
  it('rejects unknown site names with a usage error', async () => {
    const r = await pivot(['lab', 'kill-site', 'dc-z']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown site "dc-z"');
    expect(r.stderr).toContain('dc-a, dc-b');
  });

  it('kill-site makes dc-a unreachable while dc-b serves; revive-site brings it back with its objects', async () => {
    const name = uniqueName('survivor');
    await dcA.core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name } } });
    const killed = await pivot(['lab', 'kill-site', 'dc-a']);
    expect(killed.code).toBe(0);
    await expect(dcA.core.listNamespace()).rejects.toThrow();
    expect((await dcB.core.listNamespace()).items.length).toBeGreaterThan(0);
    const s = JSON.parse((await pivot(['lab', 'status', '--json'])).stdout) as LabStatus;
    expect(s.state).toBe('degraded');
    expect(s.sites.find((x) => x.name === 'dc-a')?.state).toBe('stopped');

    const again = await pivot(['lab', 'kill-site', 'dc-a']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('dc-a: is already down');

    const revived = await pivot(['lab', 'revive-site', 'dc-a']);
    expect(revived.code).toBe(0);
    const cm = await dcA.core.readNamespacedConfigMap({ name, namespace: 'default' });
    expect(cm.metadata?.name).toBe(name);
    await dcA.core.deleteNamespacedConfigMap({ name, namespace: 'default' });
  });
});
