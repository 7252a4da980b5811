/**
 * The planner: golden plans of the sample application for every operation (snapshots reviewed
 * like code), waves from tiers and dependsOn, and the refusals that protect the safety invariants.
 */
import { buildPlan } from '../../planner/plan.ts';
import { planWaves } from '../../planner/waves.ts';
import type { LiveState } from '../../planner/live-state.ts';
import { OPERATIONS, type Runbook } from '../../runbook/types.ts';
import { LAB_CONFIG, NOW, ordersRunbook, seededLab } from './fixtures/orders.ts';

/** The sample app after an unplanned failover to dc-b: dc-b primary, dc-a back and stale. */
function failedOver(): LiveState {
  const live = seededLab();
  const [a, b] = [live.sites['dc-a']!, live.sites['dc-b']!];
  for (const r of b.replications) Object.assign(r, { desired: 'primary', state: 'Primary' });
  for (const r of a.replications)
    Object.assign(r, {
      desired: 'secondary',
      state: 'Secondary',
      conditions: { Degraded: { status: 'True', message: 'resync required' } },
    });
  b.claims = a.claims.map((c) => ({ ...c }));
  b.volumes = a.volumes.map((v) => ({ ...v, name: `pivot-orders-${v.claim!.name}` }));
  [a.workloads, b.workloads] = [b.workloads, a.workloads];
  return live;
}

/** After reprotect: dc-b active, dc-a's replicas resynced and healthy. */
function reprotected(): LiveState {
  const live = failedOver();
  for (const r of live.sites['dc-a']!.replications) r.conditions = { Degraded: { status: 'False' } };
  return live;
}

const STATE_BEFORE: Record<(typeof OPERATIONS)[number], () => LiveState> = {
  switchover: seededLab,
  failover: seededLab,
  drill: seededLab,
  reprotect: failedOver,
  failback: reprotected,
};

describe('golden plans of the sample application', () => {
  for (const operation of OPERATIONS) {
    it(`${operation}`, () => {
      const live = STATE_BEFORE[operation]();
      const plan = buildPlan({ operation }, [ordersRunbook()], live, LAB_CONFIG);
      expect(plan.refused).toEqual([]);
      expect(plan).toMatchSnapshot();
    });
  }

  it('puts the point of no return at the promotion, with compensations only before it', () => {
    const plan = buildPlan(
      { operation: 'switchover', to: 'dc-b' },
      [ordersRunbook()],
      seededLab(),
      LAB_CONFIG,
    );
    const steps = plan.waves[0]!.apps[0]!.steps;
    const ponr = steps.findIndex((s) => s.pointOfNoReturn);
    expect(steps[ponr]!.id).toBe('promote-target');
    expect(steps.slice(ponr).some((s) => s.compensation)).toBe(false);
    expect(steps.findIndex((s) => s.id === 'demote-source')).toBeLessThan(ponr);
  });

  it("puts a failover's point of no return at the witness fence, and lets no safety step be skipped", () => {
    const live = seededLab();
    live.sites['dc-a']!.reachable = false;
    const steps = buildPlan({ operation: 'failover' }, [ordersRunbook()], live, LAB_CONFIG).waves[0]!.apps[0]!
      .steps;
    expect(steps.filter((s) => s.pointOfNoReturn).map((s) => s.id)).toEqual(['fence-witness']);
    expect(steps.filter((s) => s.guard).map((s) => [s.id, s.guard])).toEqual([
      ['fence-witness', 'never-skip'],
      ['fence-storage', 'attest'],
      ['promote-target', 'never-skip'],
      ['record-active-site', 'never-skip'],
    ]);
  });

  it('names every other application a storage fence on the source would cut off, and offers the site failover', () => {
    const live = seededLab();
    live.witness = {
      orders: { activeSite: 'dc-a', epoch: 1, fencedSites: [] },
      payments: { activeSite: 'dc-a', epoch: 3, fencedSites: [] },
      ledger: { activeSite: 'dc-b', epoch: 2, fencedSites: [] },
    };
    const reachable = buildPlan({ operation: 'failover' }, [ordersRunbook()], live, LAB_CONFIG);
    const fence = (p: typeof reachable) => p.waves[0]!.apps[0]!.steps.find((s) => s.id === 'fence-storage')!;
    expect(fence(reachable).preconditions[0]).toBe('dc-a answers: only orders is fenced there');
    expect(fence(reachable).objects.map((o) => o.kind)).not.toContain('NetworkFence');
    live.sites['dc-a']!.reachable = false;
    const cut = fence(buildPlan({ operation: 'failover' }, [ordersRunbook()], live, LAB_CONFIG));
    expect(cut.preconditions).toEqual([
      "if dc-a does not answer: a NetworkFence on dc-b cuts dc-a's client networks off the storage, and with them payments (fail the site over to move them too: pivot failover --site dc-a)",
    ]);
    expect(cut.objects).toEqual([
      expect.objectContaining({ kind: 'NetworkFence', name: 'pivot-fence-dc-a' }),
    ]);
  });

  it('estimates a failover data loss from the replication lag, against the RPO objective', () => {
    const live = seededLab();
    live.sites['dc-a']!.reachable = false;
    live.sites['dc-b']!.replications[0]!.lastSyncTime = new Date(NOW - 12_000).toISOString();
    const plan = buildPlan({ operation: 'failover' }, [ordersRunbook()], live, LAB_CONFIG);
    const app = plan.waves[0]!.apps[0]!;
    expect(app.approval).toBe('required');
    expect(app.estimatedDataLoss.withinObjective).toBe(true);
    expect(app.steps.map((s) => s.id)).toEqual(
      expect.arrayContaining(['fence-witness', 'fence-storage', 'promote-target']),
    );
  });
});

describe('refusals', () => {
  const refusal = (live: LiveState, op: (typeof OPERATIONS)[number], to?: string): string =>
    buildPlan(
      { operation: op, ...(to ? { to } : {}) },
      [ordersRunbook()],
      live,
      LAB_CONFIG,
    ).refused[0]?.reasons.join('; ') ?? '';

  it('refuses a failback before reprotect: the old primary still needs its resync', () => {
    expect(refusal(failedOver(), 'failback')).toContain('replication-unhealthy on dc-a');
  });

  it('refuses a reprotect when the replicas are already healthy secondaries', () => {
    expect(refusal(seededLab(), 'reprotect')).toContain('nothing to reprotect');
  });

  it('refuses a switchover to the active site', () => {
    expect(refusal(seededLab(), 'switchover', 'dc-a')).toContain('already active on dc-a');
  });

  it('refuses a planned switchover when the source is unreachable, and suggests failover', () => {
    const live = seededLab();
    live.sites['dc-a']!.reachable = false;
    expect(refusal(live, 'switchover')).toContain('use failover');
  });

  it('refuses any operation when the target is unreachable', () => {
    const live = seededLab();
    live.sites['dc-b']!.reachable = false;
    expect(refusal(live, 'failover')).toContain('dc-b cannot be reached');
  });

  it('refuses to bind a replica through a PV whose reclaim policy is not Retain (invariant 3)', () => {
    const live = seededLab();
    live.sites['dc-a']!.volumes[1]!.reclaimPolicy = 'Delete';
    expect(refusal(live, 'switchover')).toContain('reclaim-policy');
  });

  it('refuses when access modes would change (invariant 4)', () => {
    const live = seededLab();
    live.sites['dc-b']!.claims.push({
      namespace: 'orders',
      name: 'data-mysql-0',
      labels: {},
      accessModes: ['ReadWriteOnce'],
    });
    expect(refusal(live, 'switchover')).toContain('access-mode-change');
  });

  it('refuses everything on split brain (invariant 1)', () => {
    const live = seededLab();
    live.sites['dc-b']!.replications[0]!.state = 'Primary';
    expect(refusal(live, 'switchover')).toContain('split brain');
  });

  it('refuses a switchover whose replication lags past the RPO objective; a failover needs the loss accepted', () => {
    const live = seededLab();
    for (const r of live.sites['dc-a']!.replications) r.lastSyncTime = new Date(NOW - 60_000).toISOString();
    expect(refusal(live, 'switchover')).toContain('replication-lag');
    live.sites['dc-a']!.reachable = false;
    for (const r of live.sites['dc-b']!.replications) r.lastSyncTime = new Date(NOW - 60_000).toISOString();
    const plan = buildPlan({ operation: 'failover' }, [ordersRunbook()], live, LAB_CONFIG);
    expect(plan.refused).toEqual([]);
    const failover = plan.waves[0]!.apps[0]!;
    expect(failover.estimatedDataLoss).toMatchObject({ windowMs: 60_000, withinObjective: false });
    expect(failover.steps.find((s) => s.id === 'approval')?.preconditions).toEqual([
      'the expected loss (1m and growing) exceeds the RPO objective (30s): an approver must accept it (pivot approve orders --accept-data-loss <duration>)',
    ]);
  });
});

describe('waves', () => {
  const app = (name: string, tier: number, dependsOn: string[] = []): Runbook => {
    const r = ordersRunbook();
    r.metadata.name = name;
    r.spec.priority = { tier, dependsOn };
    return r;
  };

  it('orders by tier, then after every dependency', () => {
    expect(planWaves([app('web', 2, ['db']), app('db', 1), app('cache', 1), app('batch', 3)])).toEqual([
      ['cache', 'db'],
      ['web'],
      ['batch'],
    ]);
  });

  it('moves a low-tier app after a higher-tier app it depends on', () => {
    expect(planWaves([app('a', 1, ['b']), app('b', 2)])).toEqual([['b'], ['a']]);
  });
});
