/**
 * The plan (`pivot plan`): what an operation would do, step by step, per application and in waves,
 * with the objects each step creates or changes, the preconditions it checks, and the data it may
 * lose, printed before anything changes. It refuses an operation that would break a safety
 * invariant (DESIGN.md section 3) and says why. Pure: (operation, runbooks, live state, config).
 *
 * The step ids are the contract with the failover workflows: each workflow runs these steps, in
 * this order, under these names.
 */
import type { PivotConfig } from '../config/types.ts';
import { APPROVAL_DEFAULTS } from '../runbook/defaults.ts';
import { parseDuration } from '../runbook/duration.ts';
import type { Operation, Runbook } from '../runbook/types.ts';
import { checkDrift, type DriftIssue } from './drift.ts';
import type { LiveState } from './live-state.ts';
import {
  activeSite,
  defaultNamespace,
  mapStorageClass,
  resolveVolumes,
  type ResolvedVolume,
} from './resolve.ts';
import { planWaves } from './waves.ts';

export interface ObjectChange {
  site: string;
  action: 'create' | 'patch' | 'scale' | 'delete' | 'wait' | 'run';
  kind: string;
  namespace?: string;
  name: string;
  /** What changes, e.g. "replicas 3 → 0" or "replicationState secondary → primary". */
  change: string;
}

export interface PlanStep {
  id: string;
  title: string;
  /** Where it runs: a site name, or "control" (the workflow, the witness). */
  site: string;
  preconditions: string[];
  objects: ObjectChange[];
  /** Undone (in reverse order) if a later step fails before the point of no return. */
  compensation?: string;
  /** The first step after which Pivot never rolls back on its own. */
  pointOfNoReturn?: boolean;
}

export interface DataLossEstimate {
  /** Upper bound of the data-loss window, in ms; 0 for planned operations. */
  windowMs: number;
  basis: string;
  rpoObjectiveMs: number;
  withinObjective: boolean;
}

export interface AppPlan {
  app: string;
  operation: Operation;
  from: string;
  to: string;
  approval: 'none' | 'required';
  estimatedDataLoss: DataLossEstimate;
  steps: PlanStep[];
}

export interface Refusal {
  app: string;
  reasons: string[];
}

export interface Plan {
  operation: Operation;
  to?: string;
  waves: Array<{ wave: number; apps: AppPlan[] }>;
  refused: Refusal[];
  /** Warnings from the drift check that do not block the operation. */
  warnings: DriftIssue[];
}

export interface PlanRequest {
  operation: Operation;
  /** The site the applications should end up active on (not used by drill and reprotect). */
  to?: string;
}

/** Drift rules an unplanned failover tolerates: the source is expected to be gone. */
const FAILOVER_TOLERATED = new Set<DriftIssue['rule']>([
  'site-unreachable',
  'replication-lag',
  'replication-unhealthy',
  'crd-missing',
]);

export function buildPlan(
  request: PlanRequest,
  runbooks: Runbook[],
  live: LiveState,
  config: Pick<PivotConfig, 'storageClassMap'>,
): Plan {
  const refused: Refusal[] = [];
  const warnings: DriftIssue[] = [];
  const plans = new Map<string, AppPlan>();
  for (const runbook of runbooks) {
    const result = planApp(request, runbook, live, config);
    if ('reasons' in result) refused.push(result);
    else {
      plans.set(runbook.metadata.name, result.plan);
      warnings.push(...result.warnings);
    }
  }
  const waves = planWaves(runbooks.filter((r) => plans.has(r.metadata.name))).map((names, i) => ({
    wave: i + 1,
    apps: names.map((n) => plans.get(n)!),
  }));
  return {
    operation: request.operation,
    ...(request.to ? { to: request.to } : {}),
    waves,
    refused,
    warnings,
  };
}

function planApp(
  request: PlanRequest,
  runbook: Runbook,
  live: LiveState,
  config: Pick<PivotConfig, 'storageClassMap'>,
): Refusal | { plan: AppPlan; warnings: DriftIssue[] } {
  const app = runbook.metadata.name;
  const { operation } = request;
  const { primary, secondary } = runbook.spec.sites;
  const active = activeSite(runbook, live);
  if (active.kind !== 'known') {
    return {
      app,
      reasons: [
        active.kind === 'split'
          ? `split brain: ${active.sites.join(' and ')} both report Primary; reprotect first`
          : active.reason,
      ],
    };
  }
  const current = active.site;
  const other = current === primary ? secondary : primary;
  const reasons: string[] = [];
  let from = current;
  let to = other;
  switch (operation) {
    case 'switchover':
    case 'failover':
      to = request.to ?? other;
      if (to === current) reasons.push(`${app} is already active on ${to}`);
      else if (to !== other)
        reasons.push(`${to} is not a site of ${app} (its sites are ${primary} and ${secondary})`);
      break;
    case 'failback':
      to = request.to ?? primary;
      if (to === current) reasons.push(`${app} is already active on ${to}: nothing to fail back`);
      break;
    case 'reprotect':
      // Reprotect works on the old primary (the site that is not active) and keeps the active one.
      from = current;
      to = other;
      break;
    case 'drill':
      from = current;
      to = request.to ?? other;
      break;
  }
  const drift = checkDrift(runbook, live, config);
  const sourceReachable = live.sites[from]?.reachable ?? false;
  const targetReachable = live.sites[to]?.reachable ?? false;
  const blocking = drift.filter((d) => {
    if (d.severity !== 'error') return false;
    if (operation === 'failover' && d.site === from && FAILOVER_TOLERATED.has(d.rule)) return false;
    // What reprotect repairs: the old primary diverged, and the active site sees two primaries until it is resynced.
    if (operation === 'reprotect' && d.rule === 'replication-unhealthy') return false;
    if (operation === 'drill' && d.site === from) return false; // a drill never touches the active site
    return true;
  });
  if (!targetReachable) reasons.push(`${to} cannot be reached: nothing can be started there`);
  if (
    (operation === 'switchover' || operation === 'failback' || operation === 'reprotect') &&
    !sourceReachable
  ) {
    reasons.push(`${from} cannot be reached: a planned ${operation} needs both sites; use failover`);
  }
  for (const d of blocking) {
    if (d.rule === 'site-unreachable') continue; // said above, in the operation's terms
    reasons.push(`${d.rule} on ${d.site}: ${d.object}: ${d.message}`);
  }
  if (operation === 'reprotect' && targetReachable) {
    const replicas = resolveVolumes(runbook, live, current).map((v) => v.replication[to]);
    const healthy = replicas.every(
      (r) => r?.state === 'Secondary' && r.conditions['Degraded']?.status !== 'True',
    );
    if (replicas.length > 0 && healthy)
      reasons.push(`nothing to reprotect: the replicas on ${to} are healthy secondaries`);
  }
  if (reasons.length > 0) return { app, reasons: [...new Set(reasons)] };

  const volumes = resolveVolumes(runbook, live, current);
  const rpoMs = parseDuration(runbook.spec.objectives.rpo) ?? 0;
  const estimatedDataLoss = estimateLoss(operation, volumes, live, from, rpoMs);
  const approval = runbook.spec.approval[operation] ?? APPROVAL_DEFAULTS[operation];
  const steps = stepsFor(operation, { runbook, live, config, from, to, volumes, approval, sourceReachable });
  return {
    plan: { app, operation, from, to, approval, estimatedDataLoss, steps },
    warnings: drift.filter((d) => d.severity === 'warning'),
  };
}

function estimateLoss(
  operation: Operation,
  volumes: ResolvedVolume[],
  live: LiveState,
  from: string,
  rpoMs: number,
): DataLossEstimate {
  if (operation === 'switchover' || operation === 'failback') {
    return {
      windowMs: 0,
      basis: 'planned: the source is quiesced and its last writes synced before promotion',
      rpoObjectiveMs: rpoMs,
      withinObjective: true,
    };
  }
  if (operation === 'reprotect') {
    return {
      windowMs: 0,
      basis: 'the active site keeps serving; only the old primary is resynced',
      rpoObjectiveMs: rpoMs,
      withinObjective: true,
    };
  }
  let windowMs = 0;
  let unknown = false;
  for (const v of volumes) {
    const last = v.replication[from]?.lastSyncTime;
    if (!last) unknown = true;
    else windowMs = Math.max(windowMs, live.takenAt - Date.parse(last));
  }
  return unknown
    ? {
        windowMs: Infinity,
        basis: 'a volume has never reported a sync: the loss is unbounded',
        rpoObjectiveMs: rpoMs,
        withinObjective: false,
      }
    : {
        windowMs,
        basis:
          operation === 'drill'
            ? `production is untouched; the drill copy is as old as the replicas' oldest last sync`
            : `writes since the oldest last sync of the ${volumes.length} volumes (replication lag at planning time)`,
        rpoObjectiveMs: rpoMs,
        withinObjective: windowMs <= rpoMs,
      };
}

interface StepContext {
  runbook: Runbook;
  live: LiveState;
  config: Pick<PivotConfig, 'storageClassMap'>;
  from: string;
  to: string;
  volumes: ResolvedVolume[];
  approval: 'none' | 'required';
  sourceReachable: boolean;
}

/** Workloads in start order (stop order is the reverse), with their live replica counts on `site`. */
function workloads(
  ctx: StepContext,
  site: string,
): Array<{ kind: string; namespace: string; name: string; replicas: number; startOrder: number }> {
  const ns = defaultNamespace(ctx.runbook);
  const snap = ctx.live.sites[site];
  return [...ctx.runbook.spec.workloads]
    .sort((a, b) => a.startOrder - b.startOrder || a.name.localeCompare(b.name))
    .map((w) => {
      const wns = w.namespace ?? ns;
      const liveW = snap?.workloads.find(
        (x) => x.kind === w.kind && x.namespace === wns && x.name === w.name,
      );
      return {
        kind: w.kind,
        namespace: wns,
        name: w.name,
        replicas: liveW?.replicas ?? 0,
        startOrder: w.startOrder,
      };
    });
}

function vrChange(site: string, v: ResolvedVolume, from: string, to: string, extra = ''): ObjectChange {
  return {
    site,
    action: 'patch',
    kind: 'VolumeReplication',
    namespace: v.namespace,
    name: v.claim,
    change: `replicationState ${from} → ${to}${extra}`,
  };
}

function vrWait(site: string, v: ResolvedVolume, until: string): ObjectChange {
  return {
    site,
    action: 'wait',
    kind: 'VolumeReplication',
    namespace: v.namespace,
    name: v.claim,
    change: until,
  };
}

function hookSteps(
  ctx: StepContext,
  phase: 'pre-fence' | 'post-promote' | 'post-failover',
  site: string,
): PlanStep[] {
  const hooks = ctx.runbook.spec.hooks.filter((h) => h.phase === phase);
  if (hooks.length === 0) return [];
  return [
    {
      id: `hooks-${phase}`,
      title: `run ${phase} hooks`,
      site,
      preconditions: [],
      objects: hooks.map((h) => ({
        site,
        action: 'run',
        kind: h.job ? 'Job' : 'Pod exec',
        namespace: h.job?.namespace ?? h.exec?.namespace ?? defaultNamespace(ctx.runbook),
        name: h.name,
        change: `timeout ${h.timeout}, on error ${h.onError}`,
      })),
    },
  ];
}

function rebindStep(ctx: StepContext, site: string, source: string): PlanStep {
  return {
    id: 'rebind-claims',
    title: `bind the replica volumes to their claims on ${site}`,
    site,
    preconditions: [
      'no conflicting claim or PV exists (a stale one bound elsewhere stops the step)',
      'every PV is created with reclaim policy Retain and the source access modes',
    ],
    objects: ctx.volumes.flatMap((v) => [
      {
        site,
        action: 'create',
        kind: 'PersistentVolume',
        name: `pivot-${v.namespace}-${v.claim}`,
        change: `volumeHandle ${v.pv?.volumeHandle ?? '?'}, Retain, ${v.accessModes.join(',')}, claimRef ${v.namespace}/${v.claim}`,
      } satisfies ObjectChange,
      {
        site,
        action: 'create',
        kind: 'PersistentVolumeClaim',
        namespace: v.namespace,
        name: v.claim,
        change: `volumeName pivot-${v.namespace}-${v.claim}, class ${mapStorageClass(ctx.config.storageClassMap, source, site, v.storageClassName ?? '')}`,
      } satisfies ObjectChange,
    ]),
  };
}

function startSteps(ctx: StepContext, site: string, replicasFrom: string): PlanStep[] {
  const ws = workloads(ctx, replicasFrom);
  return [
    {
      id: 'scale-up-target',
      title: `start the workloads on ${site} in start order and wait until Ready`,
      site,
      preconditions: ['the claims are Bound'],
      objects: ws.map((w) => ({
        site,
        action: 'scale',
        kind: w.kind,
        namespace: w.namespace,
        name: w.name,
        change: `replicas 0 → ${w.replicas} (order ${w.startOrder})`,
      })),
    },
    ...hookSteps(ctx, 'post-promote', site),
    ...(ctx.runbook.spec.traffic.length
      ? [
          {
            id: 'repoint-traffic',
            title: `repoint traffic to ${site}`,
            site,
            preconditions: [],
            objects: ctx.runbook.spec.traffic.map((t) => ({
              site,
              action: 'patch' as const,
              kind: t.kind === 'ServiceSelector' || t.kind === 'ServiceExternalName' ? 'Service' : t.kind,
              namespace: t.namespace ?? defaultNamespace(ctx.runbook),
              name: t.name,
              change: t.kind === 'ServiceSelector' ? 'selector on' : `point at ${site}`,
            })),
          },
        ]
      : []),
    {
      id: 'verify',
      title: 'run the health checks',
      site,
      preconditions: [],
      objects: ctx.runbook.spec.healthChecks.map((h) => ({
        site,
        action: 'wait' as const,
        kind: h.kind,
        name: h.name,
        change: h.kind === 'WorkloadsReady' ? `within ${h.timeout}` : `hook ${h.hook}`,
      })),
    },
  ];
}

function recordStep(to: string, advanceEpoch: boolean): PlanStep {
  return {
    id: 'record-active-site',
    title: `record ${to} as the active site${advanceEpoch ? ' and advance the fencing epoch' : ''}, in the witness and on both sites`,
    site: 'control',
    preconditions: ['the fencing epoch still matches the one this operation holds'],
    objects: [
      {
        site: 'witness',
        action: 'patch',
        kind: 'Witness',
        name: 'active site, epoch',
        change: advanceEpoch ? `active → ${to}, epoch +1` : `active → ${to}`,
      },
    ],
  };
}

function stepsFor(operation: Operation, ctx: StepContext): PlanStep[] {
  const { from, to, volumes } = ctx;
  const preflight: PlanStep = {
    id: 'preflight',
    title: 'preflight checks',
    site: 'control',
    preconditions: [
      operation === 'failover' ? `${to} reachable (${from} may be lost)` : `${from} and ${to} reachable`,
      'the runbook matches the live objects (drift check clean)',
      ...(operation === 'switchover' || operation === 'failback'
        ? ['replication healthy and lag within the RPO objective']
        : []),
    ],
    objects: [],
  };
  const approval: PlanStep[] =
    ctx.approval === 'required'
      ? [
          {
            id: 'approval',
            title: `wait for approval of the ${operation}`,
            site: 'control',
            preconditions: [],
            objects: [],
          },
        ]
      : [];
  const stopSource = (site: string, bestEffort: boolean): PlanStep => ({
    id: 'quiesce-source',
    title: `${bestEffort ? 'best effort: ' : ''}scale the workloads on ${site} to 0 (reverse start order) and wait until their pods are gone and volumes released`,
    site,
    preconditions: bestEffort ? ['only if the site answers'] : [],
    objects: workloads(ctx, site)
      .reverse()
      .map((w) => ({
        site,
        action: 'scale' as const,
        kind: w.kind,
        namespace: w.namespace,
        name: w.name,
        change: `replicas ${w.replicas} → 0 (recorded)`,
      })),
    ...(bestEffort ? {} : { compensation: 'scale the workloads back to their recorded replica counts' }),
  });

  switch (operation) {
    case 'switchover':
    case 'failback':
      return [
        preflight,
        ...approval,
        ...hookSteps(ctx, 'pre-fence', from),
        stopSource(from, false),
        {
          id: 'demote-source',
          title: `demote the volumes on ${from}`,
          site: from,
          preconditions: ['no pod uses the volumes'],
          objects: volumes.map((v) => vrChange(from, v, 'primary', 'secondary')),
          compensation: 'promote them back',
        },
        {
          id: 'final-sync',
          title: `wait until ${to} has every write made before the quiesce`,
          site: to,
          preconditions: [],
          objects: volumes.map((v) => vrWait(to, v, 'lastSyncTime after the quiesce')),
        },
        {
          id: 'promote-target',
          title: `promote the volumes on ${to}`,
          site: to,
          preconditions: [`${from} is demoted`, 'the fencing epoch is current'],
          objects: volumes.map((v) => vrChange(to, v, 'secondary', 'primary')),
          pointOfNoReturn: true,
        },
        rebindStep(ctx, to, from),
        ...startSteps(ctx, to, from),
        recordStep(to, true),
      ];
    case 'failover':
      return [
        preflight,
        ...approval,
        {
          id: 'fence-witness',
          title: `advance the fencing epoch and mark ${from} fenced in the witness`,
          site: 'control',
          preconditions: [],
          objects: [
            {
              site: 'witness',
              action: 'patch',
              kind: 'Witness',
              name: 'epoch',
              change: `epoch +1, ${from} fenced`,
            },
          ],
        },
        {
          id: 'fence-storage',
          title: `fence ${from}'s clients at the storage`,
          site: to,
          preconditions: [],
          objects: [
            {
              site: to,
              action: 'create',
              kind: 'NetworkFence',
              name: `pivot-fence-${from}`,
              change: `Fenced, ${from}'s client CIDRs`,
            },
          ],
        },
        stopSource(from, true),
        {
          id: 'promote-target',
          title: `force-promote the volumes on ${to}`,
          site: to,
          preconditions: [`${from} fenced in the witness and at the storage`],
          objects: volumes.map((v) => vrChange(to, v, 'secondary', 'primary', ', forced')),
          pointOfNoReturn: true,
        },
        rebindStep(ctx, to, from),
        ...startSteps(ctx, to, from),
        ...hookSteps(ctx, 'post-failover', to),
        recordStep(to, false),
      ];
    case 'reprotect':
      return [
        preflight,
        ...approval,
        {
          id: 'keep-old-primary-down',
          title: `make sure the workloads on ${to} (the old primary) stay at 0`,
          site: to,
          preconditions: [],
          objects: workloads(ctx, to).map((w) => ({
            site: to,
            action: 'scale' as const,
            kind: w.kind,
            namespace: w.namespace,
            name: w.name,
            change: 'replicas → 0',
          })),
        },
        {
          id: 'demote-old-primary',
          title: `demote the old primary's volumes on ${to} and resync them from ${from}`,
          site: to,
          preconditions: [`${from} is the active site (epoch current)`],
          objects: volumes.map((v) => vrChange(to, v, 'primary', 'resync')),
        },
        {
          id: 'wait-resync',
          title: 'wait until the replicas are resynced and replicating',
          site: to,
          preconditions: [],
          objects: volumes.map((v) => vrWait(to, v, 'Completed, not Degraded')),
        },
        {
          id: 'unfence',
          title: `lift the storage fence of ${to}`,
          site: from,
          preconditions: ['every replica on the old primary is secondary'],
          objects: [
            {
              site: from,
              action: 'delete',
              kind: 'NetworkFence',
              name: `pivot-fence-${to}`,
              change: 'Unfenced, then removed',
            },
          ],
        },
      ];
    case 'drill': {
      const drillNs = `${defaultNamespace(ctx.runbook)}-drill`;
      return [
        preflight,
        ...approval,
        {
          id: 'isolate',
          title: `create the isolated namespace ${drillNs} on ${to}`,
          site: to,
          preconditions: ['production objects are never changed'],
          objects: [
            {
              site: to,
              action: 'create',
              kind: 'Namespace',
              name: drillNs,
              change: 'labelled pivot.dev/drill',
            },
            {
              site: to,
              action: 'create',
              kind: 'NetworkPolicy',
              namespace: drillNs,
              name: 'isolate',
              change: 'deny ingress from outside the namespace',
            },
          ],
        },
        {
          id: 'clone-replicas',
          title: `snapshot the replica volumes on ${to} and clone them into ${drillNs}`,
          site: to,
          preconditions: ['the replicas are never promoted'],
          objects: volumes.flatMap((v) => [
            {
              site: to,
              action: 'create' as const,
              kind: 'VolumeSnapshotContent',
              name: `pivot-drill-${v.namespace}-${v.claim}`,
              change: `from volumeHandle ${v.pv?.volumeHandle ?? '?'}`,
            },
            {
              site: to,
              action: 'create' as const,
              kind: 'PersistentVolumeClaim',
              namespace: drillNs,
              name: v.claim,
              change: 'cloned from the snapshot',
            },
          ]),
        },
        ...startSteps(ctx, to, from)
          .map((s) => ({
            ...s,
            objects: s.objects.map((o) => ({ ...o, namespace: o.namespace ? drillNs : o.namespace })),
          }))
          .filter((s) => s.id !== 'repoint-traffic'),
        {
          id: 'cleanup',
          title: `delete ${drillNs} and the snapshots, always`,
          site: to,
          preconditions: [],
          objects: [
            { site: to, action: 'delete', kind: 'Namespace', name: drillNs, change: 'with everything in it' },
          ],
        },
      ];
    }
  }
}
