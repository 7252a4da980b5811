/** Every drift rule, triggered by the one change that should trigger it, on the sample app. */
import { checkDrift, type DriftIssue } from '../../planner/drift.ts';
import type { LiveState } from '../../planner/live-state.ts';
import { LAB_CONFIG, NOW, ordersRunbook, seededLab } from './fixtures/orders.ts';

function rules(
  live: LiveState,
  runbook = ordersRunbook(),
): Array<Pick<DriftIssue, 'rule' | 'site' | 'object'>> {
  return checkDrift(runbook, live, LAB_CONFIG).map(({ rule, site, object }) => ({ rule, site, object }));
}

const a = (live: LiveState) => live.sites['dc-a']!;
const b = (live: LiveState) => live.sites['dc-b']!;

describe('drift check', () => {
  it('is clean on the seeded lab', () => {
    expect(checkDrift(ordersRunbook(), seededLab(), LAB_CONFIG)).toEqual([]);
  });

  it('reports a claim without a replication object', () => {
    const live = seededLab();
    a(live).replications = a(live).replications.filter((r) => r.name !== 'data-mysql-1');
    expect(rules(live)).toEqual([
      { rule: 'replication-missing', site: 'dc-a', object: 'PersistentVolumeClaim orders/data-mysql-1' },
    ]);
  });

  it('reports a replica without a replication object on the standby', () => {
    const live = seededLab();
    b(live).replications = b(live).replications.filter((r) => r.name !== 'data-redis-0');
    expect(rules(live)).toEqual([
      { rule: 'replication-missing', site: 'dc-b', object: 'PersistentVolumeClaim orders/data-redis-0' },
    ]);
  });

  it('reports unhealthy replication: degraded, or a stale status', () => {
    const live = seededLab();
    a(live).replications[0]!.conditions['Degraded'] = { status: 'True', message: 'link broken' };
    a(live).replications[1]!.current = false;
    const found = checkDrift(ordersRunbook(), live, LAB_CONFIG);
    expect(found.map((d) => d.rule)).toEqual(['replication-unhealthy', 'replication-unhealthy']);
    expect(found[0]!.message).toContain('link broken');
    expect(found[1]!.message).toContain('stale');
  });

  it('reports replication lagging past the RPO objective', () => {
    const live = seededLab();
    a(live).replications[2]!.lastSyncTime = new Date(NOW - 45_000).toISOString();
    const found = checkDrift(ordersRunbook(), live, LAB_CONFIG);
    expect(found).toEqual([
      expect.objectContaining({
        rule: 'replication-lag',
        site: 'dc-a',
        object: 'VolumeReplication orders/data-mysql-2',
      }) as DriftIssue,
    ]);
    expect(found[0]!.message).toContain('45 s ago');
  });

  it('reports a missing target StorageClass, and follows storageClassMap', () => {
    const live = seededLab();
    b(live).storageClasses = [{ name: 'gold', provisioner: 'sim.csi.pivot.dev', reclaimPolicy: 'Retain' }];
    expect(new Set(rules(live).map((r) => `${r.rule} ${r.object}`))).toEqual(
      new Set(['storage-class-missing StorageClass sim-replicated']),
    );
    expect(
      checkDrift(ordersRunbook(), live, { storageClassMap: [{ 'dc-a': 'sim-replicated', 'dc-b': 'gold' }] }),
    ).toEqual([]);
  });

  it('reports a replicated volume held by a PV whose reclaim policy is not Retain', () => {
    const live = seededLab();
    a(live).volumes[0]!.reclaimPolicy = 'Delete';
    expect(rules(live)).toEqual([
      { rule: 'reclaim-policy', site: 'dc-a', object: 'PersistentVolume pvc-data-mysql-0' },
    ]);
  });

  it('reports access modes that would change on the target', () => {
    const live = seededLab();
    b(live).claims.push({
      namespace: 'orders',
      name: 'data-mysql-0',
      labels: {},
      accessModes: ['ReadWriteOnce'],
    });
    expect(rules(live)).toEqual([
      { rule: 'access-mode-change', site: 'dc-b', object: 'PersistentVolumeClaim orders/data-mysql-0' },
    ]);
  });

  it('reports workloads and Services missing on the target', () => {
    const live = seededLab();
    b(live).workloads = b(live).workloads.filter((w) => w.name !== 'redis');
    b(live).services = [];
    expect(rules(live)).toEqual([
      { rule: 'workload-missing', site: 'dc-b', object: 'StatefulSet orders/redis' },
      { rule: 'service-missing', site: 'dc-b', object: 'Service orders/orders-api' },
    ]);
  });

  it('reports missing CRDs and unreachable sites', () => {
    const live = seededLab();
    b(live).crds = [];
    expect(rules(live).filter((r) => r.rule === 'crd-missing')).toHaveLength(3);
    a(live).reachable = false;
    a(live).error = 'connect ECONNREFUSED';
    const found = checkDrift(ordersRunbook(), live, LAB_CONFIG);
    expect(found[0]).toMatchObject({ rule: 'site-unreachable', site: 'dc-a' });
    expect(found[0]!.message).toContain('ECONNREFUSED');
  });

  it('reports split brain when both sites report the volumes Primary', () => {
    const live = seededLab();
    b(live).replications[0]!.state = 'Primary';
    expect(rules(live)).toEqual([{ rule: 'split-brain', site: 'dc-a,dc-b', object: 'application orders' }]);
  });

  it('reports a runbook whose volume groups match no claim', () => {
    const runbook = ordersRunbook();
    runbook.spec.volumes[0]!.selector = { matchLabels: { app: 'nothing' } };
    expect(rules(seededLab(), runbook)).toEqual([
      { rule: 'no-claims', site: 'dc-a', object: 'application orders' },
    ]);
  });
});
