/**
 * The plan (`pivot plan`): what an operation would do, step by step, per application and in waves,
 * with the objects each step creates or changes, the preconditions it checks, and the data it may
 * lose, printed before anything changes. It refuses an operation that would break a safety
 * invariant (docs/safety.md) and says why. Pure: (operation, runbooks, live state, config).
 *
 * The step ids are the contract with the failover workflows: each workflow runs these steps, in
 * this order, under these names.
 */
import type { PivotConfig } from '../config/types.ts';
import { APPROVAL_DEFAULTS } from '../runbook/defaults.ts';
import { formatDuration, parseDuration } from '../runbook/duration.ts';
import type { HookPhase, Operation, Runbook } from '../runbook/types.ts';
import { checkDrift, type DriftIssue } from './drift.ts';
import type { LiveState } from './live-state.ts';
import {
  activeSite,
  defaultNamespace,
  mapStorageClass,
  resolveVolumes,
  type ResolvedVolume,
} from './resolve.ts';
import { operationSteps, type StepGuard } from './step-catalog.ts';
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
  /** What an operator may do if it fails after the point of no return (absent: skippable). */
  guard?: StepGuard;
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
    // A failover that fenced the application alone left healthy secondaries behind, but the
    // witness still fences the site for it: lifting that is the reprotect's work.
    const fencedThere = live.witness?.[app]?.fencedSites.includes(to) ?? false;
    if (replicas.length > 0 && healthy && !fencedThere)
      reasons.push(`nothing to reprotect: the replicas on ${to} are healthy secondaries`);
  }
  if (reasons.length > 0) return { app, reasons: [...new Set(reasons)] };

  const volumes = resolveVolumes(runbook, live, current);
  const rpoMs = parseDuration(runbook.spec.objectives.rpo) ?? 0;
  const estimatedDataLoss = estimateLoss(operation, volumes, live, from, rpoMs);
  const approval = runbook.spec.approval[operation] ?? APPROVAL_DEFAULTS[operation];
  const steps = stepsFor(operation, {
    runbook,
    live,
    config,
    from,
    to,
    volumes,
    approval,
    sourceReachable,
    loss: estimatedDataLoss,
  });
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
  loss: DataLossEstimate;
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

type StepDetail = Pick<PlanStep, 'preconditions' | 'objects' | 'compensation'>;

const detail = (
  preconditions: string[],
  objects: ObjectChange[] = [],
  compensation?: string,
): StepDetail => ({
  preconditions,
  objects,
  ...(compensation ? { compensation } : {}),
});

function hookDetail(ctx: StepContext, phase: HookPhase, site: string): StepDetail {
  return detail(
    [],
    ctx.runbook.spec.hooks
      .filter((h) => h.phase === phase)
      .map((h) => ({
        site,
        action: 'run',
        kind: h.job ? 'Job' : 'Pod exec',
        namespace: h.job?.namespace ?? h.exec?.namespace ?? defaultNamespace(ctx.runbook),
        name: h.name,
        change: `timeout ${h.timeout}, on error ${h.onError}`,
      })),
  );
}

function rebindDetail(ctx: StepContext, site: string, source: string): StepDetail {
  return detail(
    [
      'no conflicting claim or PV exists (a stale one bound elsewhere stops the step)',
      "every PV is created with reclaim policy Retain and the source PV's access modes, volume mode, capacity and CSI attributes and secret refs",
    ],
    ctx.volumes.flatMap((v) => [
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
  );
}

/** What the steps that start the application on `site` change (in a drill, in its own namespace). */
function startDetails(ctx: StepContext, site: string, replicasFrom: string): Record<string, StepDetail> {
  const ws = workloads(ctx, replicasFrom);
  const start = detail(
    ['the claims are Bound'],
    ws.map((w) => ({
      site,
      action: 'scale',
      kind: w.kind,
      namespace: w.namespace,
      name: w.name,
      change: `replicas 0 → ${w.replicas} (order ${w.startOrder})`,
    })),
  );
  return {
    'scale-up-target': start,
    'start-workloads': start,
    'hooks-post-promote': hookDetail(ctx, 'post-promote', site),
    'repoint-traffic': detail(
      [],
      ctx.runbook.spec.traffic.map((t) => ({
        site,
        action: 'patch' as const,
        kind: t.kind === 'ServiceSelector' || t.kind === 'ServiceExternalName' ? 'Service' : t.kind,
        namespace: t.namespace ?? defaultNamespace(ctx.runbook),
        name: t.name,
        change: t.kind === 'ServiceSelector' ? 'selector on' : `point at ${site}`,
      })),
    ),
    verify: detail(
      [],
      ctx.runbook.spec.healthChecks.map((h) => ({
        site,
        action: 'wait' as const,
        kind: h.kind,
        name: h.name,
        change: h.kind === 'WorkloadsReady' ? `within ${h.timeout}` : `hook ${h.hook}`,
      })),
    ),
  };
}

function recordDetail(to: string, advanceEpoch: boolean): StepDetail {
  return detail(
    ['the fencing epoch still matches the one this operation holds'],
    [
      {
        site: 'witness',
        action: 'patch',
        kind: 'Witness',
        name: 'active site, epoch',
        change: advanceEpoch ? `active → ${to}, epoch +1` : `active → ${to}`,
      },
    ],
  );
}

/**
 * A failover's fence: the application alone while its source answers; otherwise the source's
 * client networks at the storage, which cuts off every other application active there too.
 */
function fenceDetail(ctx: StepContext): StepDetail {
  const { from, to, runbook } = ctx;
  const app = runbook.metadata.name;
  const others = Object.entries(ctx.live.witness ?? {})
    .filter(([name, w]) => name !== app && w.activeSite === from)
    .map(([name]) => name)
    .sort();
  const siteFence = `if ${from} does not answer: a NetworkFence on ${to} cuts ${from}'s client networks off the storage${
    others.length > 0
      ? `, and with them ${others.join(', ')} (fail the site over to move them too: pivot failover --site ${from})`
      : ''
  }`;
  if (!ctx.sourceReachable) {
    return detail(
      [siteFence],
      [
        {
          site: to,
          action: 'create',
          kind: 'NetworkFence',
          name: `pivot-fence-${from}`,
          change: `Fenced, ${from}'s client CIDRs${others.length ? `; also cuts off ${others.join(', ')}` : ''}`,
        },
      ],
    );
  }
  return detail(
    [`${from} answers: only ${app} is fenced there`, siteFence],
    [
      ...workloads(ctx, from)
        .reverse()
        .map((w) => ({
          site: from,
          action: 'scale' as const,
          kind: w.kind,
          namespace: w.namespace,
          name: w.name,
          change: `replicas ${w.replicas} → 0 (recorded), pods gone`,
        })),
      ...ctx.volumes.map((v) => vrChange(from, v, 'primary', 'secondary')),
    ],
  );
}

/** The preconditions and object changes of each step `operation` runs, by step id. */
function stepDetails(operation: Operation, ctx: StepContext): Record<string, StepDetail> {
  const { from, to, volumes } = ctx;
  const common: Record<string, StepDetail> = {
    preflight: detail([
      operation === 'failover' ? `${to} reachable (${from} may be lost)` : `${from} and ${to} reachable`,
      'the runbook matches the live objects (drift check clean)',
      ...(operation === 'switchover' || operation === 'failback'
        ? ['replication healthy and lag within the RPO objective']
        : []),
    ]),
    approval: detail(
      operation !== 'failover'
        ? []
        : ctx.loss.withinObjective
          ? [
              `the policy asks for it (${ctx.approval}), or the expected loss grows past the RPO objective (${formatDuration(ctx.loss.rpoObjectiveMs)}) before it runs`,
            ]
          : [
              `the expected loss (${formatDuration(ctx.loss.windowMs)} and growing) exceeds the RPO objective (${formatDuration(ctx.loss.rpoObjectiveMs)}): an approver must accept it (pivot approve ${ctx.runbook.metadata.name} --accept-data-loss <duration>)`,
            ],
    ),
  };
  const stopSource = (site: string, bestEffort: boolean): StepDetail =>
    detail(
      bestEffort ? ['only if the site answers'] : [],
      workloads(ctx, site)
        .reverse()
        .map((w) => ({
          site,
          action: 'scale' as const,
          kind: w.kind,
          namespace: w.namespace,
          name: w.name,
          change: `replicas ${w.replicas} → 0 (recorded)`,
        })),
      bestEffort ? undefined : 'scale the workloads back to their recorded replica counts',
    );
  const bringUp = { 'rebind-claims': rebindDetail(ctx, to, from), ...startDetails(ctx, to, from) };

  switch (operation) {
    case 'switchover':
    case 'failback':
      return {
        ...common,
        'hooks-pre-fence': hookDetail(ctx, 'pre-fence', from),
        'quiesce-source': stopSource(from, false),
        'demote-source': detail(
          ['no pod uses the volumes'],
          volumes.map((v) => vrChange(from, v, 'primary', 'secondary')),
          'promote them back',
        ),
        'final-sync': detail(
          [],
          volumes.map((v) => vrWait(to, v, 'lastSyncTime after the quiesce')),
        ),
        'promote-target': detail(
          [`${from} is demoted`, 'the fencing epoch is current'],
          volumes.map((v) => vrChange(to, v, 'secondary', 'primary')),
        ),
        ...bringUp,
        'record-active-site': recordDetail(to, true),
      };
    case 'failover':
      return {
        ...common,
        'fence-witness': detail(
          [],
          [
            {
              site: 'witness',
              action: 'patch',
              kind: 'Witness',
              name: 'epoch',
              change: `epoch +1, ${from} fenced`,
            },
          ],
        ),
        'fence-storage': fenceDetail(ctx),
        'quiesce-source': stopSource(from, true),
        'promote-target': detail(
          [`${from} fenced in the witness and at the storage`],
          volumes.map((v) => vrChange(to, v, 'secondary', 'primary', ', forced')),
        ),
        ...bringUp,
        'hooks-post-failover': hookDetail(ctx, 'post-failover', to),
        'record-active-site': recordDetail(to, false),
      };
    case 'reprotect':
      return {
        ...common,
        'keep-old-primary-down': detail(
          [],
          workloads(ctx, to).map((w) => ({
            site: to,
            action: 'scale' as const,
            kind: w.kind,
            namespace: w.namespace,
            name: w.name,
            change: 'replicas → 0',
          })),
        ),
        'demote-old-primary': detail(
          [`${from} is the active site (epoch current)`],
          volumes.map((v) => vrChange(to, v, 'primary', 'resync')),
        ),
        'wait-resync': detail(
          [],
          volumes.map((v) => vrWait(to, v, 'Completed, not Degraded')),
        ),
        unfence: detail(
          ['every replica on the old primary is secondary'],
          [
            {
              site: from,
              action: 'delete',
              kind: 'NetworkFence',
              name: `pivot-fence-${to}`,
              change: 'Unfenced, then removed',
            },
          ],
        ),
      };
    case 'drill': {
      const drillNs = `${defaultNamespace(ctx.runbook)}-drill`;
      const inDrill = (d: StepDetail): StepDetail => ({
        ...d,
        objects: d.objects.map((o) => ({ ...o, namespace: o.namespace ? drillNs : o.namespace })),
      });
      return {
        ...common,
        isolate: detail(
          ['production objects are never changed'],
          [
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
        ),
        'clone-replicas': detail(
          ['the replicas are never promoted'],
          volumes.flatMap((v) => [
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
        ),
        ...Object.fromEntries(Object.entries(startDetails(ctx, to, from)).map(([id, d]) => [id, inDrill(d)])),
        cleanup: detail(
          [],
          [{ site: to, action: 'delete', kind: 'Namespace', name: drillNs, change: 'with everything in it' }],
        ),
      };
    }
  }
}

/**
 * The plan's steps: the catalog's (the very list the workflow runs), each with what it checks and
 * changes.
 */
function stepsFor(operation: Operation, ctx: StepContext): PlanStep[] {
  const details = stepDetails(operation, ctx);
  return operationSteps(operation, {
    runbook: ctx.runbook,
    from: ctx.from,
    to: ctx.to,
    approval: ctx.approval === 'required',
  }).map((s) => ({
    id: s.id,
    title: s.title,
    site: s.site,
    ...(s.guard !== 'skippable' ? { guard: s.guard } : {}),
    ...(s.pointOfNoReturn ? { pointOfNoReturn: true } : {}),
    ...(details[s.id] ?? detail([])),
  }));
}
