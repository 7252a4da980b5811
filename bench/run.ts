/**
 * One benchmark run on the lab (docs/performance.md): seed N applications, move a sample of
 * another set of the same applications with the kubectl runbook (the baseline), then move the N
 * with Pivot's site operation through the API while sampling the API's status call, the workers'
 * CPU and memory and the Kubernetes requests; check the end state of both; compute the floor; clean
 * up. Timings are reported, never asserted.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { CRD, type SiteApi } from '../common/k8s.ts';
import { waitUntil } from '../common/wait.ts';
import { loadConfig } from '../config/load.ts';
import type { PivotConfig } from '../config/types.ts';
import { STATUS_AGES } from '../api/app.ts';
import { connectClient } from '../api/operations.ts';
import type { SiteOperationReport } from '../workflows/site.ts';
import { operationWorkflowId } from '../workflows/ids.ts';
import { ApiError, PivotApi } from '../cli/api-client.ts';
import { ApiProxyClient } from '../lab/api-proxy/client.ts';
import type { Lab } from '../lab/lab.ts';
import { REPO_ROOT, SITE_NAMES, type SiteName } from '../lab/layout.ts';
import { StorageSimClient } from '../lab/storage-sim/client.ts';
import { benchApps, removeApps, seedApps, type BenchApp } from './apps.ts';
import {
  delta,
  forwardedRequests,
  pivotRequests,
  quantile,
  sampleProcesses,
  type ProcessFigures,
} from './measure.ts';

const run = promisify(execFile);

export interface BenchOptions {
  apps: number;
  pvcsPerApp: number;
  operation: 'switchover' | 'failover';
  /** Applications the site operation moves at once within a wave. */
  concurrency: number;
  /** How many applications the kubectl runbook moves; its time for N is scaled from them. */
  kubectlSample: number;
  /** Leave the applications on the lab afterwards. */
  keep: boolean;
  /** The runbooks' RPO objective (a duration, e.g. "30s"): the plan refuses a replica older. */
  rpo: string;
  log: (line: string) => void;
}

export interface BenchResult {
  at: string;
  options: Omit<BenchOptions, 'log'>;
  from: string;
  to: string;
  waves: number;
  seedSeconds: number;
  pivot: {
    outcome: string;
    wallSeconds: number;
    rtoSeconds: { p50?: number; p95?: number; max?: number };
    /** Each step's duration across the applications, in seconds: where the RTO goes. */
    steps: Array<{ id: string; p50?: number; p95?: number; max?: number }>;
    /** Kubernetes requests by Pivot's processes during the operation, by site and by component. */
    kubeRequests: { bySite: Record<string, number>; byComponent: Record<string, number> };
    largestHistory: { workflowId: string; events: number; bytes?: number };
    processes: ProcessFigures[];
  };
  kubectl: {
    appsMoved: number;
    measuredSeconds: number;
    /** The measured time scaled to N applications (the runbook moves one after the other). */
    seconds: number;
    perAppSeconds: { p50?: number; max?: number };
  };
  floor: { seconds: number; perWave: Record<string, number>; from: string };
  status: {
    /** GET /v1/apps while the operation ran. */
    latencyMs: { p50?: number; p95?: number; max?: number; samples: number };
    /** Kubernetes requests per read of both sites, measured on a quiet lab before the operation. */
    kubeRequestsPerRead: number;
  };
  endState: { pivot: string[]; kubectl: string[] };
  speedup: number;
  floorRatio: number;
}

export async function runBench(lab: Lab, options: BenchOptions): Promise<BenchResult> {
  const { log } = options;
  const config = loadConfig(lab.layout.configFile);
  const api = new PivotApi();
  const sim = new StorageSimClient(`http://127.0.0.1:${lab.layout.ports.storageSim}`);
  const proxy = new ApiProxyClient(`http://127.0.0.1:${lab.layout.ports.apiProxyAdmin}`);
  const [from, to] = await chooseSites(api);
  const src = lab.site(from);
  const dst = lab.site(to);
  const pivotApps = benchApps('bench', options.apps, options.pvcsPerApp);
  const sample = Math.max(1, Math.min(options.kubectlSample, options.apps));
  const kubectlApps = benchApps('benchk', sample, options.pvcsPerApp);
  const all = [...pivotApps, ...kubectlApps];
  const runbookDir = config.runbooks.dir;
  const redis = new Redis(config.witness.redisUrl ?? '', { lazyConnect: true, maxRetriesPerRequest: 2 });
  await redis.connect();

  try {
    // A run that stopped half-way left its applications: start from none.
    await removeApps([src, dst], all, runbookDir);
    await forgetApps(redis, all);

    log(`seeding ${all.length} applications (${options.pvcsPerApp} claims each) active on ${from}`);
    const seedStart = Date.now();
    await seedApps(src, dst, pivotApps, {
      runbookDir,
      rpo: options.rpo,
      progress: (n) => n % 25 === 0 && log(`  ${n}/${pivotApps.length} seeded`),
    });
    await seedApps(src, dst, kubectlApps);
    await waitUntil(
      'every seeded volume to have replicated once',
      async () => {
        const names = new Set(all.map((a) => a.name));
        const vols = (await sim.volumes()).filter((v) => names.has(v.origin.namespace ?? ''));
        const synced = vols.filter((v) => !!v.lastSyncTime).length;
        return synced >= all.length * options.pvcsPerApp || `${synced} of ${all.length * options.pvcsPerApp}`;
      },
      { timeoutMs: 300_000, intervalMs: 1000 },
    );
    await waitUntil(
      `the API to list the ${pivotApps.length} applications active on ${from} (if it never does, its runbook directory is not ${runbookDir}: restart the lab, npx pivot lab down && npx pivot lab up)`,
      async () => {
        const listed = (await api.apps()).apps.filter((a) => a.app.startsWith('bench-'));
        return (
          (listed.length === pivotApps.length && listed.every((a) => a.activeSite === from)) ||
          `${listed.length} listed`
        );
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    const seedSeconds = (Date.now() - seedStart) / 1000;
    log(`seeded in ${seedSeconds.toFixed(1)} s`);

    // What one read of both sites for the status costs: a call once the shared snapshot is too old
    // to serve waits for a new one (calls in between are served from the snapshot, for nothing).
    await new Promise((r) => setTimeout(r, STATUS_AGES.maxAgeMs + 500));
    const before = await forwardedRequests(proxy);
    await api.apps();
    const perRead = pivotRequests(delta(await forwardedRequests(proxy), before), 'component')['api'] ?? 0;

    log(`kubectl runbook: moving ${sample} application(s) ${from} → ${to}, one after the other`);
    const kubectl = await runKubectl(lab, from, to, kubectlApps, options);
    const kubectlEnd = await endState(src, dst, sim, kubectlApps);

    log(`pivot: site ${options.operation} of ${from} (concurrency ${options.concurrency})`);
    const pivot = await runPivot(lab, api, proxy, config, from, options);
    // Only the applications Pivot moved are checked where they went; the others are named.
    const outcomes = new Map(pivot.report.apps.map((a) => [a.app, a.outcome]));
    const pivotEnd = [
      ...(await endState(
        src,
        dst,
        sim,
        pivotApps.filter((a) => outcomes.get(a.name) === 'succeeded'),
      )),
      ...pivotApps
        .filter((a) => outcomes.get(a.name) !== 'succeeded')
        .map((a) => `${a.name}: not moved (${outcomes.get(a.name) ?? 'not in the report'})`),
    ];

    const floor = floorOf(lab, pivot.report.waves.length, options.operation);
    const kubectlSeconds = (kubectl.measuredSeconds * options.apps) / sample;
    const result: BenchResult = {
      at: new Date().toISOString(),
      options: {
        apps: options.apps,
        pvcsPerApp: options.pvcsPerApp,
        operation: options.operation,
        concurrency: options.concurrency,
        kubectlSample: sample,
        keep: options.keep,
        rpo: options.rpo,
      },
      from,
      to,
      waves: pivot.report.waves.length,
      seedSeconds,
      pivot: {
        outcome: pivot.report.outcome,
        wallSeconds: pivot.wallSeconds,
        rtoSeconds: stats(
          pivot.report.apps.map((a) => (a.result?.rtoMs ?? NaN) / 1000).filter((x) => !Number.isNaN(x)),
        ),
        steps: stepFigures(pivot.report),
        kubeRequests: pivot.kubeRequests,
        largestHistory: pivot.largestHistory,
        processes: pivot.processes,
      },
      kubectl: { ...kubectl, seconds: kubectlSeconds },
      floor,
      status: { latencyMs: pivot.statusLatency, kubeRequestsPerRead: perRead },
      endState: { pivot: pivotEnd, kubectl: kubectlEnd },
      speedup: kubectlSeconds / pivot.wallSeconds,
      floorRatio: pivot.wallSeconds / floor.seconds,
    };
    return result;
  } finally {
    if (!options.keep) {
      log('removing the benchmark applications');
      await removeApps([src, dst], all, runbookDir);
      await forgetApps(redis, all);
    }
    redis.disconnect();
  }
}

/** The site to move: the one where no other application is active, so that only ours move. */
async function chooseSites(api: PivotApi): Promise<[SiteName, SiteName]> {
  const others = (await api.apps()).apps.filter((a) => !a.app.startsWith('bench'));
  const from = [...SITE_NAMES].reverse().find((s) => !others.some((a) => a.activeSite === s)) ?? 'dc-b';
  return [from, SITE_NAMES.find((s) => s !== from)!];
}

/** Drops the witness's records of the applications (their state, lock, audit, volumes). */
async function forgetApps(redis: Redis, apps: BenchApp[]): Promise<void> {
  for (const app of apps) {
    const keys = await redis.keys(`pivot:*:{${app.name}}`);
    if (keys.length > 0) await redis.del(...keys);
  }
}

async function runKubectl(
  lab: Lab,
  from: SiteName,
  to: SiteName,
  apps: BenchApp[],
  options: BenchOptions,
): Promise<Omit<BenchResult['kubectl'], 'seconds'>> {
  const started = Date.now();
  const { stdout } = await run(
    'bash',
    [join(REPO_ROOT, 'bench', 'kubectl-runbook.sh'), ...apps.map((a) => a.name)],
    {
      env: {
        ...process.env,
        KUBECTL: join(process.env['HOME'] ?? '', '.cache', 'pivot', 'tools', 'bin', 'kubectl'),
        // Straight to the API servers, as an SRE's kubectl goes: through the lab's API proxy
        // (HTTP/1.1), a watch's first answer waits for its first event, and every `kubectl wait`
        // on a condition already met would last a minute (docs/performance.md).
        FROM_KUBECONFIG: lab.kubeconfigFile(from),
        TO_KUBECONFIG: lab.kubeconfigFile(to),
        MODE: options.operation,
      },
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  const measuredSeconds = (Date.now() - started) / 1000;
  const perApp = stdout
    .trim()
    .split('\n')
    .map((l) => Number(l.split(' ')[1]) / 1000);
  const s = stats(perApp);
  return {
    appsMoved: apps.length,
    measuredSeconds,
    perAppSeconds: {
      ...(s.p50 !== undefined ? { p50: s.p50 } : {}),
      ...(s.max !== undefined ? { max: s.max } : {}),
    },
  };
}

async function runPivot(
  lab: Lab,
  api: PivotApi,
  proxy: ApiProxyClient,
  config: PivotConfig,
  from: string,
  options: BenchOptions,
): Promise<{
  report: SiteOperationReport;
  wallSeconds: number;
  kubeRequests: BenchResult['pivot']['kubeRequests'];
  largestHistory: BenchResult['pivot']['largestHistory'];
  processes: ProcessFigures[];
  statusLatency: BenchResult['status']['latencyMs'];
}> {
  const status = await lab.status();
  const processes = [
    ...status.workers.filter((w) => w.pid).map((w) => ({ name: w.name, pid: w.pid! })),
    ...(status.api.pid ? [{ name: 'api', pid: status.api.pid }] : []),
  ];
  const sampler = sampleProcesses(processes);
  const before = await forwardedRequests(proxy);
  const started = Date.now();
  const response = await api
    .start({
      operation: options.operation,
      site: from,
      reason: `benchmark: ${options.apps} applications`,
      concurrency: options.concurrency,
    })
    .catch((err: unknown) => {
      // A refused plan: say why in a few lines, not the whole plan.
      const refused = err instanceof ApiError ? (err.body.plan?.refused ?? []) : [];
      if (refused.length === 0) throw err;
      const first = refused[0]!;
      throw new Error(
        `the plan refused the site ${options.operation} of ${refused.length} application(s); ${first.app}: ${first.reasons[0] ?? '?'}`,
      );
    });
  const op = response.operations[0];
  if (!op)
    throw new Error(`the site ${options.operation} started nothing: ${JSON.stringify(response.refused)}`);

  const latencies: number[] = [];
  let done = false;
  const statusLoop = (async () => {
    while (!done) {
      const t = performance.now();
      await api.apps();
      latencies.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  let report: SiteOperationReport;
  let lastLine = '';
  for (;;) {
    const got = await api.operation(op.workflowId);
    report = got.report as SiteOperationReport;
    const counts = report.apps.reduce<Record<string, number>>(
      (acc, a) => ({ ...acc, [a.outcome]: (acc[a.outcome] ?? 0) + 1 }),
      {},
    );
    const line = Object.entries(counts)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    if (line !== lastLine) options.log(`  ${((Date.now() - started) / 1000).toFixed(0)} s: ${line}`);
    lastLine = line;
    if (!got.running) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const wallSeconds = (Date.now() - started) / 1000;
  done = true;
  await statusLoop;
  const processFigures = sampler.stop();
  const counted = delta(await forwardedRequests(proxy), before);
  const kubeRequests = {
    bySite: pivotRequests(counted, 'site'),
    byComponent: pivotRequests(counted, 'component'),
  };

  const temporal = await connectClient(config);
  let largest: BenchResult['pivot']['largestHistory'] = { workflowId: op.workflowId, events: 0 };
  try {
    // An application that never started (its dependency did not succeed) has no workflow.
    const started = report.apps.filter((a) => a.outcome !== 'not-started');
    const ids = [op.workflowId, ...started.map((a) => a.workflowId ?? operationWorkflowId(a.app))];
    for (const id of ids) {
      const d = await temporal.client.workflow.getHandle(id).describe();
      if (d.historyLength > largest.events) {
        largest = {
          workflowId: id,
          events: d.historyLength,
          ...(d.historySize ? { bytes: d.historySize } : {}),
        };
      }
    }
  } finally {
    await temporal.close();
  }
  const s = stats(latencies);
  return {
    report,
    wallSeconds,
    kubeRequests,
    largestHistory: largest,
    processes: processFigures,
    statusLatency: { ...s, samples: latencies.length },
  };
}

/**
 * The end state after a move from `src` to `dst`: each application Ready on dst and stopped on
 * src, its claims on dst bound to the replica of the source's volume, its replications primary on
 * dst and secondary on src, and the array agreeing (dst's copy primary, no split brain).
 */
export async function endState(
  src: SiteApi,
  dst: SiteApi,
  sim: StorageSimClient,
  apps: BenchApp[],
): Promise<string[]> {
  const problems: string[] = [];
  const volumes = await sim.volumes();
  for (const app of apps) {
    try {
      await checkApp(app);
    } catch (err) {
      // A missing object is a wrong end state, not a reason to lose the run's figures.
      problems.push(`${app.name}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
  }
  return problems;

  async function checkApp(app: BenchApp): Promise<void> {
    const ns = app.name;
    const [on, off] = await Promise.all([
      dst.apps.readNamespacedStatefulSet({ name: 'db', namespace: ns }),
      src.apps.readNamespacedStatefulSet({ name: 'db', namespace: ns }),
    ]);
    if ((on.status?.readyReplicas ?? 0) < 1) problems.push(`${ns}: db not ready on ${dst.site}`);
    if ((off.spec?.replicas ?? 0) !== 0)
      problems.push(`${ns}: db still scaled to ${off.spec?.replicas} on ${src.site}`);
    for (const claim of app.claims) {
      // The source's claim still names the volume it wrote to; the replica has the same handle.
      const source = await src.core.readNamespacedPersistentVolumeClaim({ name: claim, namespace: ns });
      const sourcePv = await src.core.readPersistentVolume({ name: source.spec?.volumeName ?? '' });
      const vol = volumes.find((v) => v.handle === sourcePv.spec?.csi?.volumeHandle);
      if (!vol) {
        problems.push(`${ns}/${claim}: no volume ${sourcePv.spec?.csi?.volumeHandle} on the array`);
        continue;
      }
      if (vol.primarySite !== dst.site || vol.splitBrain || vol.multiplePrimaries)
        problems.push(
          `${ns}/${claim}: the array's primary is ${vol.primarySite}, split brain ${vol.splitBrain}`,
        );
      const pvc = await dst.core.readNamespacedPersistentVolumeClaim({ name: claim, namespace: ns });
      const pv = pvc.spec?.volumeName
        ? await dst.core.readPersistentVolume({ name: pvc.spec.volumeName })
        : undefined;
      if (pvc.status?.phase !== 'Bound' || pv?.spec?.csi?.volumeHandle !== vol.handle)
        problems.push(`${ns}/${claim}: not bound to the replica ${vol.handle} on ${dst.site}`);
      for (const [api, want] of [
        [dst, 'Primary'],
        [src, 'Secondary'],
      ] as const) {
        const vr = (await api.custom.getNamespacedCustomObject({
          ...CRD.volumeReplication,
          namespace: ns,
          name: claim,
        })) as { status?: { state?: string } };
        if (vr.status?.state !== want)
          problems.push(
            `${ns}/${claim}: replication ${vr.status?.state ?? 'unknown'} on ${api.site}, not ${want}`,
          );
      }
    }
  }
}

/**
 * The floor: per dependency wave, the mean of the waits the lab configures on the critical path of
 * one application. Pods are deleted and become ready without delay (kwok's stages have none), so
 * what remains is the array: a change of replication state is seen at its next period, and the
 * final sync of a switchover comes with the next replication after the demotion.
 */
function floorOf(lab: Lab, waves: number, operation: BenchOptions['operation']): BenchResult['floor'] {
  const sim = JSON.parse(readFileSync(lab.layout.simConfig, 'utf8')) as {
    periodMs: number;
    replicationIntervalMs: number;
    syncDurationMs: number;
  };
  const perWave: Record<string, number> = {
    'demotion seen by the array (half a period)': sim.periodMs / 2000,
    ...(operation === 'switchover'
      ? {
          'final sync (half an interval, plus the sync)':
            (sim.replicationIntervalMs / 2 + sim.syncDurationMs) / 1000,
        }
      : {}),
    'promotion seen by the array (half a period)': sim.periodMs / 2000,
    'pod termination and readiness (kwok stages)': 0,
  };
  const one = Object.values(perWave).reduce((a, b) => a + b, 0);
  return {
    seconds: one * waves,
    perWave,
    from: `${lab.layout.simConfig} (period ${sim.periodMs} ms, replication every ${sim.replicationIntervalMs} ms, sync ${sim.syncDurationMs} ms), ${waves} wave(s)`,
  };
}

function stepFigures(report: SiteOperationReport): BenchResult['pivot']['steps'] {
  const byStep = new Map<string, number[]>();
  for (const app of report.apps) {
    for (const step of app.result?.steps ?? []) {
      if (step.durationMs === undefined) continue;
      byStep.set(step.id, [...(byStep.get(step.id) ?? []), step.durationMs / 1000]);
    }
  }
  return [...byStep].map(([id, values]) => ({ id, ...stats(values) }));
}

function stats(values: number[]): { p50?: number; p95?: number; max?: number } {
  const p50 = quantile(values, 0.5);
  const p95 = quantile(values, 0.95);
  const max = quantile(values, 1);
  return {
    ...(p50 !== undefined ? { p50 } : {}),
    ...(p95 !== undefined ? { p95 } : {}),
    ...(max !== undefined ? { max } : {}),
  };
}

export function writeResult(result: BenchResult): { json: string; markdown: string; table: string } {
  const dir = join(REPO_ROOT, 'artifacts', 'bench');
  mkdirSync(dir, { recursive: true });
  const stem = `${result.at.replace(/[:.]/g, '-')}-${result.options.operation}-${result.options.apps}`;
  const json = join(dir, `${stem}.json`);
  const markdown = join(dir, `${stem}.md`);
  const table = formatTable(result);
  writeFileSync(json, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(markdown, `${table}\n`);
  return { json, markdown, table };
}

const f1 = (x: number | undefined) => (x === undefined ? '–' : x.toFixed(1));

export function formatTable(r: BenchResult): string {
  const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  const perSite = (o: Record<string, number>) =>
    Object.entries(o)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  const rows: Array<[string, string]> = [
    [
      'applications × claims',
      `${r.options.apps} × ${r.options.pvcsPerApp}, ${r.waves} wave(s), ${r.from} → ${r.to}, RPO objective ${r.options.rpo}`,
    ],
    [
      'pivot: site operation',
      `${r.pivot.outcome}, ${f1(r.pivot.wallSeconds)} s (concurrency ${r.options.concurrency})`,
    ],
    [
      'pivot: RTO per application (p50 / p95 / max)',
      `${f1(r.pivot.rtoSeconds.p50)} / ${f1(r.pivot.rtoSeconds.p95)} / ${f1(r.pivot.rtoSeconds.max)} s`,
    ],
    [
      'pivot: steps, p50 / max (s)',
      r.pivot.steps.map((s) => `${s.id} ${f1(s.p50)} / ${f1(s.max)}`).join(', '),
    ],
    [
      'pivot: Kubernetes requests',
      `${sum(r.pivot.kubeRequests.bySite)} (${perSite(r.pivot.kubeRequests.bySite)}; ${perSite(r.pivot.kubeRequests.byComponent)})`,
    ],
    [
      'pivot: largest workflow history',
      `${r.pivot.largestHistory.events} events${r.pivot.largestHistory.bytes ? `, ${Math.round(r.pivot.largestHistory.bytes / 1024)} KiB` : ''} (${r.pivot.largestHistory.workflowId})`,
    ],
    ...r.pivot.processes.map((p): [string, string] => [
      `pivot: ${p.name}`,
      `${p.cpuSeconds.toFixed(1)} CPU s, peak RSS ${p.peakRssMiB} MiB`,
    ]),
    [
      'GET /v1/apps during the operation (p50 / p95 / max)',
      `${f1(r.status.latencyMs.p50)} / ${f1(r.status.latencyMs.p95)} / ${f1(r.status.latencyMs.max)} ms over ${r.status.latencyMs.samples} calls`,
    ],
    ['GET /v1/apps: Kubernetes requests per read of both sites', String(r.status.kubeRequestsPerRead)],
    [
      'kubectl runbook',
      `${f1(r.kubectl.seconds)} s for ${r.options.apps} (measured ${f1(r.kubectl.measuredSeconds)} s for ${r.kubectl.appsMoved}; per application p50 ${f1(r.kubectl.perAppSeconds.p50)} s)`,
    ],
    ['floor', `${f1(r.floor.seconds)} s (${f1(r.floor.seconds / Math.max(1, r.waves))} s per wave)`],
    ['speedup over kubectl', `${r.speedup.toFixed(1)}×`],
    ['pivot / floor', `${r.floorRatio.toFixed(1)}×`],
    [
      'end state',
      r.endState.pivot.length + r.endState.kubectl.length === 0
        ? 'as expected on both sites and the array (pivot and kubectl)'
        : [...r.endState.pivot, ...r.endState.kubectl].join('; '),
    ],
  ];
  return ['| figure | value |', '| --- | --- |', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
}

export function lastLine(r: BenchResult): string {
  return `bench: ${r.options.apps} apps, pivot ${f1(r.pivot.wallSeconds)}s, kubectl ${f1(r.kubectl.seconds)}s, floor ${f1(r.floor.seconds)}s, speedup ${r.speedup.toFixed(1)}, floor ratio ${r.floorRatio.toFixed(1)}`;
}
