/**
 * Runbooks against the running lab: discovery from the live namespace, the drift check clean on the
 * seeded lab and catching each drift a test introduces, the plan, and bad inputs refused before
 * any site is contacted.
 */
import type * as k8s from '@kubernetes/client-node';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { CRD, mergePatch } from '../../common/k8s.ts';
import { waitUntil } from '../../common/wait.ts';
import { REPO_ROOT } from '../../lab/layout.ts';
import { apply, installSiteStorage } from '../../lab/seed.ts';
import type { DriftIssue } from '../../planner/drift.ts';
import type { Plan } from '../../planner/plan.ts';
import { validateRunbookText } from '../../runbook/validate.ts';
import { lab, pivot, resetSim, sim, site } from './helpers.ts';

const dcA = site('dc-a');
const dcB = site('dc-b');
let dir = '';
let config = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pivot-runbooks-'));
  // The lab's configuration, with a runbook directory of the test's own.
  const cfg = parse(readFileSync(lab.layout.configFile, 'utf8')) as { runbooks: { dir: string } };
  cfg.runbooks.dir = join(dir, 'runbooks');
  config = join(dir, 'pivot.yaml');
  writeFileSync(config, stringify(cfg));
  rmSync(cfg.runbooks.dir, { recursive: true, force: true });
  writeRunbooks((r) => r);
});

afterAll(async () => {
  await resetSim();
  rmSync(dir, { recursive: true, force: true });
});

/** The repository's orders runbook, changed by `edit`, as the only runbook of the test's directory. */
function writeRunbooks(edit: (r: Record<string, unknown>) => Record<string, unknown>): void {
  const runbook = parse(readFileSync(join(REPO_ROOT, 'runbooks', 'orders.yaml'), 'utf8')) as Record<
    string,
    unknown
  >;
  const target = join(dir, 'runbooks');
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  writeFileSync(join(target, 'orders.yaml'), stringify(edit(runbook)));
}

async function check(): Promise<{ code: number; issues: DriftIssue[] }> {
  const r = await pivot(['check', '--config', config, '--json']);
  if (r.code === 2) throw new Error(r.stderr);
  return { code: r.code, issues: (JSON.parse(r.stdout) as { issues: DriftIssue[] }).issues };
}

describe('pivot runbook discover', () => {
  it("drafts a runbook from dc-a's orders namespace that validates and plans", async () => {
    const r = await pivot([
      'runbook',
      'discover',
      '--site',
      'dc-a',
      '--namespace',
      'orders',
      '--config',
      config,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('REVIEW:');
    const v = validateRunbookText(r.stdout, 'discovered.yaml', { knownSites: ['dc-a', 'dc-b'] });
    expect(v.errors).toEqual([]);
    expect(v.runbook?.spec.volumes.map((g) => g.claim).sort()).toEqual([
      'data-mysql-0',
      'data-mysql-1',
      'data-mysql-2',
      'data-redis-0',
    ]);
    expect(v.runbook?.spec.workloads.map((w) => w.name)).toEqual(['mysql', 'redis', 'orders-api']);
    writeFileSync(join(dir, 'runbooks', 'orders.yaml'), r.stdout);
    const plan = await pivot(['plan', 'switchover', 'orders', '--config', config, '--json']);
    expect(plan.code).toBe(0);
    expect((JSON.parse(plan.stdout) as Plan).waves[0]?.apps[0]?.steps.some((s) => s.pointOfNoReturn)).toBe(
      true,
    );
    writeRunbooks((x) => x);
  });
});

describe('pivot check', () => {
  it('is clean on the seeded lab', async () => {
    expect(await check()).toEqual({ code: 0, issues: [] });
  });

  it('reports a PV whose reclaim policy was changed to Delete', async () => {
    const pvc = await dcA.core.readNamespacedPersistentVolumeClaim({
      name: 'data-mysql-1',
      namespace: 'orders',
    });
    const pv = pvc.spec!.volumeName!;
    const setPolicy = (policy: string) =>
      dcA.core.patchPersistentVolume(
        { name: pv, body: { spec: { persistentVolumeReclaimPolicy: policy } } },
        mergePatch,
      );
    await setPolicy('Delete');
    try {
      const { code, issues } = await check();
      expect(code).toBe(1);
      expect(issues).toEqual([
        expect.objectContaining({
          rule: 'reclaim-policy',
          site: 'dc-a',
          object: `PersistentVolume ${pv}`,
        }) as DriftIssue,
      ]);
    } finally {
      await setPolicy('Retain');
    }
  });

  it('reports the target StorageClass deleted', async () => {
    await dcB.storage.deleteStorageClass({ name: 'sim-replicated' });
    try {
      const { issues } = await check();
      expect(issues.map((i) => i.rule)).toEqual([
        'storage-class-missing',
        'storage-class-missing',
        'storage-class-missing',
        'storage-class-missing',
      ]);
      expect(issues[0]).toMatchObject({ site: 'dc-b', object: 'StorageClass sim-replicated' });
    } finally {
      await installSiteStorage(dcB);
    }
  });

  it('reports a VolumeReplication deleted', async () => {
    const vr = (await dcA.custom.getNamespacedCustomObject({
      ...CRD.volumeReplication,
      namespace: 'orders',
      name: 'data-redis-0',
    })) as k8s.KubernetesObject & { spec: unknown };
    await dcA.custom.deleteNamespacedCustomObject({
      ...CRD.volumeReplication,
      namespace: 'orders',
      name: 'data-redis-0',
    });
    try {
      const { issues } = await check();
      expect(issues).toEqual([
        expect.objectContaining({
          rule: 'replication-missing',
          site: 'dc-a',
          object: 'PersistentVolumeClaim orders/data-redis-0',
        }) as DriftIssue,
      ]);
    } finally {
      await apply(dcA, [
        {
          apiVersion: vr.apiVersion,
          kind: vr.kind,
          metadata: { name: 'data-redis-0', namespace: 'orders' },
          spec: vr.spec,
        } as k8s.KubernetesObject,
      ]);
      await waitUntil(
        'VolumeReplication data-redis-0 Primary again',
        async () => (await check()).issues.length === 0,
      );
    }
  });

  it('reports broken replication: lag past the RPO objective while the link is down', async () => {
    writeRunbooks((r) => {
      (r['spec'] as { objectives: { rpo: string } }).objectives.rpo = '3s';
      return r;
    });
    try {
      await sim.setFaults({ linkDown: true });
      await waitUntil(
        'replication-lag reported',
        async () => (await check()).issues.some((i) => i.rule === 'replication-lag'),
        { timeoutMs: 30_000, intervalMs: 1000 },
      );
      const plan = await pivot(['plan', 'switchover', 'orders', '--config', config]);
      expect(plan.code).toBe(1);
      expect(plan.stdout).toContain('REFUSED switchover orders');
    } finally {
      await resetSim();
      writeRunbooks((r) => r);
    }
  });
});

describe('bad inputs change nothing', () => {
  it('a malformed runbook: exit 2, every error with its location, before any site is contacted', async () => {
    writeFileSync(
      join(dir, 'runbooks', 'broken.yaml'),
      'apiVersion: pivot.dev/v1alpha1\nkind: Runbook\nmetadata: {name: broken}\nspec:\n  namespaces: orders\n  bogus: 1\n',
    );
    try {
      // An unreachable site in the configuration proves the check stops before contacting any.
      const cfg = parse(readFileSync(config, 'utf8')) as { sites: Array<{ kubeconfig: string }> };
      cfg.sites[0]!.kubeconfig = join(dir, 'missing-kubeconfig.yaml');
      const badConfig = join(dir, 'bad-site.yaml');
      writeFileSync(badConfig, stringify(cfg));
      const r = await pivot(['check', '--config', badConfig]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/broken\.yaml:5:\d+: spec\.namespaces/);
      expect(r.stderr).toMatch(/broken\.yaml:6:\d+: spec\.bogus/);
    } finally {
      rmSync(join(dir, 'runbooks', 'broken.yaml'));
    }
  });

  it('an unknown application or site: exit 2 with what is known', async () => {
    const app = await pivot(['plan', 'switchover', 'payments', '--config', config]);
    expect(app.code).toBe(2);
    expect(app.stderr).toContain('unknown application: payments');
    expect(app.stderr).toContain('known: orders');
    const s = await pivot(['plan', 'failover', '--site', 'dc-z', '--config', config]);
    expect(s.code).toBe(2);
    expect(s.stderr).toContain('unknown site dc-z');
  });
});
