/**
 * What every chaos scenario checks, read from both sites' APIs and the simulated array's
 * data-plane report (docs/reliability.md): never two writers, no loss beyond the reported RPO, no
 * step's effect applied twice, and an end an operator can act on, with the application served from
 * exactly one site. Each check returns the violations it found (empty: the invariant held), so a
 * scenario can record them all before it fails.
 */
import type * as k8s from '@kubernetes/client-node';
import type { SiteApi } from '../../common/k8s.ts';
import { CRD } from '../../common/k8s.ts';
import { SAMPLE_APP } from '../../lab/seed.ts';
import type { VolumeReport } from '../../lab/storage-sim/model.ts';
import type { OperationReport } from '../../workflows/progress.ts';
import { sleep, waitUntil } from '../../common/wait.ts';
import { sim } from '../lab/helpers.ts';

export const APP = 'orders';
const NS = SAMPLE_APP.namespace;
const CLAIMS: readonly string[] = SAMPLE_APP.claims;

export interface Invariant {
  name: string;
  violations: string[];
  /** Why the scenario does not apply this invariant (its violations are then not counted). */
  notApplicable?: string;
}

async function appVolumes(): Promise<VolumeReport[]> {
  return (await sim.volumes()).filter((v) => v.origin.namespace === NS);
}

/**
 * Watches the array while a scenario runs: a volume that accepts writes on both copies at once
 * (the simulator counts such periods) is two writers, however briefly.
 */
export class SplitBrainWatch {
  private readonly before = new Map<string, number>();

  static async start(): Promise<SplitBrainWatch> {
    const w = new SplitBrainWatch();
    for (const v of await appVolumes()) w.before.set(v.handle, v.splitBrainPeriods);
    return w;
  }

  async check(): Promise<Invariant> {
    const violations: string[] = [];
    for (const v of await appVolumes()) {
      // New periods only: the array keeps the record of one the scenario before this repaired.
      const periods = v.splitBrainPeriods - (this.before.get(v.handle) ?? 0);
      if (periods > 0) {
        violations.push(
          `${v.origin.claim ?? v.handle}: writes accepted on both copies (${periods} period(s))`,
        );
      }
    }
    return { name: 'never two writers', violations };
  }
}

/** The loss the array counted is within what the report states (a planned move: none at all). */
export function lossWithinReported(report: OperationReport): Invariant {
  const violations: string[] = [];
  const measured = report.measuredLoss;
  if (report.outcome === 'succeeded' && measured) {
    if (report.mode === 'planned' && measured.writes > 0) {
      violations.push(`a planned move lost ${measured.writes} write(s)`);
    }
    if (report.mode === 'unplanned' && measured.writes > 0) {
      const reported = report.rpo?.windowMs ?? 0;
      if (measured.windowMs > reported) {
        violations.push(`lost writes over ${measured.windowMs} ms, reported ${reported} ms`);
      }
    }
  }
  return { name: 'loss within the reported RPO', violations };
}

/** How many writes were lost beyond the reported window (the suite's L). */
export function writesLostBeyondReported(report: OperationReport): number {
  const m = report.measuredLoss;
  if (!m || report.outcome !== 'succeeded') return 0;
  if (report.mode === 'planned') return m.writes;
  return m.windowMs > (report.rpo?.windowMs ?? 0) ? m.writes : 0;
}

/**
 * No step's effect applied twice: per site, one PV per replicated volume and one claim per runbook
 * claim, no fence left behind by a planned move, and the epoch advanced exactly once by a move
 * that completed (not at all by one that changed nothing).
 */
export async function appliedOnce(
  sites: Record<string, SiteApi>,
  report: OperationReport,
  epochBefore: number,
  epochNow: number,
  /** Advances made by others during the operation (a rival the scenario plays). */
  othersAdvanced = 0,
): Promise<Invariant> {
  const violations: string[] = [];
  const handles = new Set((await appVolumes()).map((v) => v.handle));
  for (const [name, api] of Object.entries(sites)) {
    const pvs = (await api.core.listPersistentVolume()).items.filter((pv) =>
      handles.has(pv.spec?.csi?.volumeHandle ?? ''),
    );
    const perHandle = new Map<string, number>();
    for (const pv of pvs) {
      const h = pv.spec!.csi!.volumeHandle;
      perHandle.set(h, (perHandle.get(h) ?? 0) + 1);
    }
    for (const [h, n] of perHandle) if (n > 1) violations.push(`${name}: ${n} PVs for volume ${h}`);
    const claims = (await api.core.listNamespacedPersistentVolumeClaim({ namespace: NS })).items.map(
      (c) => c.metadata!.name!,
    );
    const extra = claims.filter((c) => !CLAIMS.includes(c));
    if (extra.length > 0) violations.push(`${name}: claims not in the runbook: ${extra.join(', ')}`);
    if (report.mode === 'planned') {
      const fences = (await api.custom.listClusterCustomObject({ ...CRD.networkFence })) as {
        items: unknown[];
      };
      if (fences.items.length > 0)
        violations.push(`${name}: ${fences.items.length} NetworkFence(s) after a planned move`);
    }
  }
  const advanced = epochNow - epochBefore - othersAdvanced;
  const expected = report.outcome === 'succeeded' ? 1 : report.pointOfNoReturnPassed ? 1 : 0;
  if (advanced !== expected) {
    violations.push(`the epoch advanced ${advanced} time(s) for an operation that ended ${report.outcome}`);
  }
  return { name: 'no effect applied twice', violations };
}

const ACTIONABLE = new Set(['succeeded', 'rolled-back', 'refused', 'aborted', 'needs-attention']);

/**
 * The operation ended in a state an operator can act on, and the application is served from
 * exactly one site: its workloads run there and nowhere else, and its volumes are primary there
 * and nowhere else.
 */
export async function servedFromOneSite(
  sites: Record<string, SiteApi>,
  report: OperationReport,
): Promise<Invariant & { site?: string }> {
  const violations: string[] = [];
  if (!ACTIONABLE.has(report.outcome)) violations.push(`ended ${report.outcome}`);
  if (report.outcome !== 'succeeded' && !report.suggestion && report.outcome !== 'refused') {
    violations.push(`ended ${report.outcome} without saying what to do next`);
  }
  const serving: string[] = [];
  const primary: string[] = [];
  // A copy the storage fences accepts no write: an old primary kept behind its fence is not one.
  const volumes = await appVolumes();
  const fencedOn = (site: string) =>
    volumes.length > 0 && volumes.every((v) => v.copies.find((c) => c.site === site)?.fenced === true);
  for (const [name, api] of Object.entries(sites)) {
    if (
      (await workloads(api)).some((w) => (w.status?.readyReplicas ?? 0) > 0 || (w.spec?.replicas ?? 0) > 0)
    ) {
      serving.push(name);
    }
    const vrs = (await api.custom.listNamespacedCustomObject({
      ...CRD.volumeReplication,
      namespace: NS,
    })) as {
      items: Array<{ status?: { state?: string } }>;
    };
    if (vrs.items.some((v) => v.status?.state === 'Primary') && !fencedOn(name)) primary.push(name);
  }
  if (serving.length !== 1)
    violations.push(`workloads run on ${serving.length} sites (${serving.join(', ')})`);
  if (primary.length !== 1)
    violations.push(`volumes primary and unfenced on ${primary.length} sites (${primary.join(', ')})`);
  if (serving.length === 1 && primary.length === 1 && serving[0] !== primary[0]) {
    violations.push(`workloads run on ${serving[0]} but the volumes are primary on ${primary[0]}`);
  }
  return {
    name: 'an actionable end, served from one site',
    violations,
    ...(serving.length === 1 ? { site: serving[0]! } : {}),
  };
}

/** The application's StatefulSets and Deployments on a site. */
async function workloads(api: SiteApi): Promise<Array<k8s.V1StatefulSet | k8s.V1Deployment>> {
  const sts = (await api.apps.listNamespacedStatefulSet({ namespace: NS })).items;
  const deps = (await api.apps.listNamespacedDeployment({ namespace: NS })).items;
  return [...sts, ...deps];
}

/** What a stale operation could change on a site: its volumes' roles, its claims, its workloads. */
export async function siteFootprint(api: SiteApi): Promise<string> {
  const vrs = (await api.custom.listNamespacedCustomObject({ ...CRD.volumeReplication, namespace: NS })) as {
    items: Array<{ metadata?: { name?: string }; spec?: { replicationState?: string } }>;
  };
  const claims = (await api.core.listNamespacedPersistentVolumeClaim({ namespace: NS })).items;
  return JSON.stringify({
    volumes: vrs.items.map((v) => `${v.metadata?.name}:${v.spec?.replicationState}`).sort(),
    claims: claims.map((c) => c.metadata?.name).sort(),
    workloads: (await workloads(api)).map((w) => `${w.metadata?.name}:${w.spec?.replicas ?? 0}`).sort(),
  });
}

/**
 * A stale operation never acts: from the moment a rival moved the epoch on, nothing the operation
 * could change on the target (volume roles, claims, replica counts) changes.
 */
export async function staleOperationStill(
  target: SiteApi,
  site: string,
  atRival: string,
): Promise<Invariant> {
  const now = await siteFootprint(target);
  return {
    name: 'a stale operation never acts',
    violations: now === atRival ? [] : [`a stale operation acted on ${site}: ${atRival} became ${now}`],
  };
}

/**
 * An old primary that returns after a failover accepts no write and stays down: its workloads are
 * kept at zero (its site guard), and its copies, fenced or demoted, take no write for a while.
 */
export async function oldPrimaryStaysDown(api: SiteApi, site: string): Promise<Invariant> {
  const violations: string[] = [];
  const running = async () =>
    (await workloads(api))
      .filter((w) => (w.spec?.replicas ?? 0) > 0)
      .map((w) => `${w.metadata?.name}:${w.spec?.replicas}`);
  try {
    await waitUntil(
      `the site guard to keep ${site} down`,
      async () => {
        const up = await running();
        return up.length === 0 || up.join(', ');
      },
      { timeoutMs: 60_000 },
    );
  } catch {
    violations.push(`${site} runs ${(await running()).join(', ')} after it returned`);
  }
  const accepted = async () =>
    (await appVolumes()).map((v) => v.copies.find((c) => c.site === site)?.acceptedWrites ?? 0);
  const before = await accepted();
  await sleep(3000);
  const after = await accepted();
  const taken = after.reduce((n, a, i) => n + a - (before[i] ?? 0), 0);
  if (taken > 0) violations.push(`the old primary on ${site} accepted ${taken} write(s) after it returned`);
  for (const v of await appVolumes()) {
    const copy = v.copies.find((c) => c.site === site);
    if (copy?.role === 'primary' && !copy.fenced) {
      violations.push(`${v.origin.claim ?? v.handle} on ${site} is a writable primary`);
    }
  }
  return { name: 'the old primary stays down', violations };
}
