/**
 * The benchmark's smoke run (bench/run.ts) on the shared lab, with three applications of two
 * claims each: Pivot's site switchover and the kubectl runbook both reach the expected end state on
 * both sites and the array, and the figures are all there. Timings are printed, never asserted.
 * Also: a snapshot of many namespaces, listed across the site, holds what per-namespace lists hold.
 */
import { lastLine, runBench, formatTable } from '../../bench/run.ts';
import { observeSite } from '../../planner/live-state.ts';
import { lab, site } from './helpers.ts';

describe('the benchmark', () => {
  it('moves three applications with Pivot and with kubectl, and both end as expected', async () => {
    const lines: string[] = [];
    const result = await runBench(lab, {
      apps: 3,
      pvcsPerApp: 2,
      operation: 'switchover',
      concurrency: 3,
      kubectlSample: 1,
      keep: false,
      rpo: '30s',
      log: (line) => lines.push(line),
    });
    process.stdout.write(`${formatTable(result)}\n${lastLine(result)}\n`);
    expect(result.endState).toEqual({ pivot: [], kubectl: [] });
    expect(result.pivot.outcome).toBe('succeeded');
    // Tiers 1, 2, 3, each depending on the one before: three waves, one application each.
    expect(result.waves).toBe(3);
    expect(result.pivot.steps.map((s) => s.id)).toEqual(
      expect.arrayContaining(['preflight', 'final-sync', 'promote-target', 'rebind-claims']),
    );
    expect(result.pivot.largestHistory.events).toBeGreaterThan(0);
    expect(Object.keys(result.pivot.kubeRequests.bySite).sort()).toEqual(['dc-a', 'dc-b']);
    expect(result.pivot.processes.map((p) => p.name)).toEqual(
      expect.arrayContaining(['worker-control', 'worker-dc-a', 'worker-dc-b', 'api']),
    );
    expect(result.pivot.processes.every((p) => p.peakRssMiB > 0)).toBe(true);
    expect(result.status.latencyMs.samples).toBeGreaterThan(0);
    expect(result.kubectl.appsMoved).toBe(1);
    expect(lastLine(result)).toMatch(
      /^bench: 3 apps, pivot [\d.]+s, kubectl [\d.]+s, floor [\d.]+s, speedup [\d.]+, floor ratio [\d.]+$/,
    );
    // Cleaned up: nothing of the run is left on either site.
    for (const name of ['dc-a', 'dc-b'] as const) {
      const left = (await site(name).core.listNamespace()).items.filter((n) =>
        n.metadata?.name?.startsWith('bench'),
      );
      expect(left).toEqual([]);
    }
  }, 600_000);

  it('lists many namespaces across the site once, and finds what per-namespace lists find', async () => {
    const api = site('dc-a');
    const namespaces = (await api.core.listNamespace()).items.map((n) => n.metadata!.name!);
    expect(namespaces.length).toBeGreaterThan(4);
    // What does not change between two reads (a sync stamp may): which objects there are.
    const names = (s: Awaited<ReturnType<typeof observeSite>>) => ({
      claims: s.claims.map((c) => `${c.namespace}/${c.name}`).sort(),
      replications: s.replications.map((r) => `${r.namespace}/${r.name}`).sort(),
      workloads: s.workloads.map((w) => `${w.kind} ${w.namespace}/${w.name}`).sort(),
      services: s.services.map((v) => `${v.namespace}/${v.name}`).sort(),
    });
    const across = await observeSite(api, namespaces, 0);
    const each = await observeSite(api, namespaces, Infinity);
    expect(across.reachable).toBe(true);
    expect(across.claims.length).toBeGreaterThan(0);
    expect(names(across)).toEqual(names(each));
  });
});
