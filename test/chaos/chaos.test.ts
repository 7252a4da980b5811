/**
 * The chaos suite (docs/reliability.md): the lab's sample application moves from site to site
 * while workers crash, the witness and Temporal restart, the sites' APIs fail, triggers race and a
 * rival operation moves the epoch on. After every operation the invariants are checked through both
 * sites' APIs and the simulated array; the suite ends with its count and a JSON report.
 *
 * `npm test` runs the `ci` profile (a few step boundaries per fault); `npm run test:chaos` runs
 * `full` (every boundary of the switchover, and the failover).
 */
import type { WorkflowHandle } from '@temporalio/client';
import { createSiteActivities } from '../../activities/index.ts';
import { workloadRefs } from '../../activities/types.ts';
import { CRD } from '../../common/k8s.ts';
import { CONTROL_TASK_QUEUE } from '../../common/task-queues.ts';
import { SAMPLE_APP } from '../../lab/seed.ts';
import { sleep } from '../../common/wait.ts';
import { fenceFor } from '../../config/fence.ts';
import { loadConfig } from '../../config/load.ts';
import type { CrashablePart } from '../../lab/lab.ts';
import { REPO_ROOT } from '../../lab/layout.ts';
import { loadRunbookDir } from '../../planner/inputs.ts';
import type { Runbook } from '../../runbook/types.ts';
import type { OperationInput } from '../../workflows/engine.ts';
import { operationWorkflowId } from '../../workflows/ids.ts';
import type { OperationReport } from '../../workflows/progress.ts';
import { apiProxy, lab, resetSim, status } from '../lab/helpers.ts';
import { connectPivot, type LabPivot } from '../lab/temporal.ts';
import { activeSite, ChaosRecorder, checkAfter, PROFILE, reachStep, settle, SITES } from './harness.ts';
import { APP, siteFootprint, SplitBrainWatch, staleOperationStill } from './invariants.ts';
import { join } from 'node:path';

const recorder = new ChaosRecorder();
let pivot: LabPivot;
let runbook: Runbook;

beforeAll(async () => {
  pivot = await connectPivot();
  [runbook] = loadRunbookDir(join(REPO_ROOT, 'runbooks'), ['dc-a', 'dc-b']) as [Runbook];
  await resetSim();
});

afterAll(async () => {
  await apiProxy.clear().catch(() => undefined);
  await lab.up(); // whatever a scenario left down comes back
  const file = recorder.write();
  process.stdout.write(`${recorder.summary()}\n(details: ${file})\n`);
  try {
    // The other suites start from orders active on dc-a, as the lab seeds it.
    const { from } = await activeSite(pivot);
    if (from !== 'dc-a') {
      const home = await settle(await startSwitchover(from, 'dc-a'));
      if (home.outcome !== 'succeeded') {
        throw new Error(`orders could not be moved back to dc-a: ${home.error ?? home.outcome}`);
      }
    }
  } finally {
    await pivot?.close();
  }
}, 300_000);

function input(from: string, to: string): OperationInput {
  const config = loadConfig(lab.layout.configFile);
  return {
    runbook,
    from,
    to,
    requestedBy: 'chaos',
    reason: 'chaos suite',
    storageClassMap: config.storageClassMap,
    fence: fenceFor(config, from, to),
  };
}

function startSwitchover(from: string, to: string): Promise<WorkflowHandle> {
  return pivot.client.workflow.start('switchover', {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId: operationWorkflowId(APP),
    workflowIdConflictPolicy: 'USE_EXISTING',
    args: [input(from, to)],
  });
}

/** The switchover's steps, in order; `ci` takes a few, `full` every one. */
const SWITCHOVER_STEPS = [
  'preflight',
  'quiesce-source',
  'demote-source',
  'final-sync',
  'promote-target',
  'rebind-claims',
  'scale-up-target',
  'repoint-traffic',
  'verify',
  'record-active-site',
];
const pick = (all: string[], ci: string[]): string[] => (PROFILE === 'full' ? all : ci);

/**
 * One switchover of the application to the other site with `inject` run when it reaches `step`;
 * then every invariant. Returns the violations and the report.
 */
async function disturbedSwitchover(
  scenario: string,
  fault: string,
  step: string,
  inject: () => Promise<void>,
  heal: () => Promise<void> = () => Promise.resolve(),
  options: Parameters<typeof checkAfter>[6] = {},
): Promise<{ violations: string[]; report: OperationReport }> {
  const { from, to, epoch } = await activeSite(pivot);
  const watch = await SplitBrainWatch.start();
  const handle = await startSwitchover(from, to);
  await reachStep(handle, step);
  await inject();
  await heal();
  const report = await settle(handle);
  const violations = await checkAfter(
    recorder,
    pivot,
    { scenario, fault, step },
    report,
    watch,
    epoch,
    options,
  );
  return { violations, report };
}

/**
 * Starts again what a crash took down. Twice, a few seconds apart: a worker that lost Temporal
 * while it was down exits, and the second pass starts it again.
 */
async function recover(): Promise<void> {
  await lab.up();
  await sleep(3000);
  await lab.up();
}

/**
 * A switchover that a rival overtakes at `step`: it moves the application's epoch on in the
 * witness, as another operation would. With `mechanismOff`, the workers run with the epoch guard
 * switched off, and the invariants must catch the stale operation acting.
 */
async function staleEpochScenario(
  step: string,
  mechanismOff?: string,
): Promise<{ violations: string[]; report: OperationReport }> {
  // For the self-check the target's writes are slowed (through the API proxy), so that the
  // operation still has writes to make after the rival moves the epoch on.
  // The switchover's target (the witness names it active once it is promoted).
  const { to: target } = await activeSite(pivot);
  if (mechanismOff) {
    await apiProxy.setFaults(target, { latencyMs: SLOW_WRITE_MS, match: '^(POST|PUT|PATCH|DELETE) ' });
  }
  let atRival = '';
  try {
    return await disturbedSwitchover(
      mechanismOff ? 'self-check: stale epoch' : 'stale epoch',
      'epoch advanced by a rival',
      step,
      async () => {
        const now = await pivot.witness.state(APP);
        await pivot.witness.advanceEpoch(APP, {
          expectEpoch: now.epoch,
          actor: 'chaos-rival',
          reason: 'chaos: a rival operation',
        });
        // A write already on its way when the epoch moved lands (the guard checks before each write,
        // not during one): the footprint is taken once it has.
        if (mechanismOff) await sleep(SLOW_WRITE_MS + 1000);
        atRival = await siteFootprint(SITES[target]!);
      },
      undefined,
      {
        othersAdvanced: 1,
        notApplicable: {
          'an actionable end, served from one site':
            'the rival took the application over and left it stopped; the stale operation must not restart it',
          ...(mechanismOff
            ? { 'no effect applied twice': 'the stale operation is let loose on purpose' }
            : {}),
        },
        extra: async () => [await staleOperationStill(SITES[target]!, target, atRival)],
        ...(mechanismOff ? { mechanismOff } : {}),
      },
    );
  } finally {
    await apiProxy.clear();
  }
}

const SLOW_WRITE_MS = 1500;

/** The states the application's VolumeReplications report on a site. */
async function vrStates(site: string): Promise<string[]> {
  const list = (await SITES[site]!.custom.listNamespacedCustomObject({
    ...CRD.volumeReplication,
    namespace: APP,
  })) as { items: Array<{ status?: { state?: string } }> };
  return [...new Set(list.items.map((v) => v.status?.state ?? 'Unknown'))];
}

/** Promotes the application's volumes on `site` and starts it there, at the current epoch. */
async function restoreSource(site: string): Promise<void> {
  const acts = createSiteActivities(SITES[site]!, pivot.witness);
  const ctx = { app: APP, operationId: 'chaos-by-hand', epoch: (await pivot.witness.state(APP)).epoch };
  const claims = SAMPLE_APP.claims.map((name) => ({ namespace: APP, name }));
  await acts.ensureReplicationState(ctx, claims, 'primary');
  const workloads = workloadRefs(runbook);
  await acts.scaleUpWorkloads(ctx, workloads, await acts.currentReplicas(workloads));
}

describe('chaos', () => {
  describe('a worker crashes (SIGKILL) and comes back', () => {
    const cases: Array<[CrashablePart, string]> = [
      ...pick(SWITCHOVER_STEPS, ['quiesce-source', 'final-sync', 'rebind-claims']).map(
        (s) => ['worker-control', s] as [CrashablePart, string],
      ),
      ...pick(['quiesce-source', 'demote-source', 'rebind-claims', 'scale-up-target'], ['rebind-claims']).map(
        (s) => ['worker-dc-b', s] as [CrashablePart, string],
      ),
    ];
    it.each(cases)('%s at %s: the switchover resumes and completes', async (part, step) => {
      // The target worker is the one the moving steps run on; crash whichever side is the target.
      const { to } = await activeSite(pivot);
      const victim: CrashablePart = part === 'worker-control' ? part : (`worker-${to}` as CrashablePart);
      const { violations, report } = await disturbedSwitchover(
        'worker crash',
        `SIGKILL ${victim}`,
        step,
        () => lab.crash(victim),
        recover,
      );
      expect(violations).toEqual([]);
      expect(report.outcome).toBe('succeeded');
    });
  });

  describe('the witness and Temporal restart', () => {
    it.each([
      ['witness', 'final-sync'],
      ['temporal', 'rebind-claims'],
    ] as Array<[CrashablePart, string]>)(
      '%s killed at %s and restarted with its data',
      async (part, step) => {
        const { violations, report } = await disturbedSwitchover(
          'restart',
          `SIGKILL ${part}, restart`,
          step,
          () => lab.crash(part),
          async () => {
            await lab.up();
          },
        );
        expect(violations).toEqual([]);
        expect(report.outcome).toBe('succeeded');
      },
    );
  });

  describe("the sites' APIs fail", () => {
    it.each([
      ['503 on 20% of requests, 50 ms latency', { errorRate: 0.2, status: 503 as const, latencyMs: 50 }],
      ['429 on 20% of requests', { errorRate: 0.2, status: 429 as const }],
      ['10% of connections cut', { dropRate: 0.1 }],
    ])('%s on both sites, polling waits included: the switchover completes', async (what, faults) => {
      const before = await apiProxy.report();
      const { violations, report } = await disturbedSwitchover('flaky API', what, 'preflight', async () => {
        await apiProxy.setFaults('dc-a', faults);
        await apiProxy.setFaults('dc-b', faults);
      });
      const after = await apiProxy.report();
      await apiProxy.clear();
      const injected = (['dc-a', 'dc-b'] as const).reduce(
        (n, s) =>
          n +
          after[s]!.counters.errors -
          before[s]!.counters.errors +
          after[s]!.counters.drops -
          before[s]!.counters.drops,
        0,
      );
      expect(violations).toEqual([]);
      expect(report.outcome).toBe('succeeded');
      // The faults reached Pivot: otherwise this scenario proves nothing.
      expect(injected).toBeGreaterThan(0);
    });
  });

  describe('a rival operation moves the epoch on', () => {
    it.each(pick(['quiesce-source', 'demote-source', 'final-sync'], ['final-sync']))(
      'at %s: every later mutating step refuses, and the operation says what is left',
      async (step) => {
        const { from, to } = await activeSite(pivot);
        const { violations, report } = await staleEpochScenario(step);
        // The stale operation refused to act, its compensations included: the application stays
        // as the rival left it (here: stopped), which the report says, with what is left to do.
        expect(violations).toEqual([]);
        expect(report.outcome).toBe('needs-attention');
        expect(report.suggestion).toContain('Left to do');
        expect(report.steps.some((s) => s.error?.includes('is stale'))).toBe(true);
        expect(await vrStates(to)).toEqual(['Secondary']);
        // The rival's part, done by hand at the current epoch: the source serves again.
        await restoreSource(from);
      },
    );
  });

  describe('racing triggers', () => {
    it('50 concurrent starts through the API: exactly one operation runs', async () => {
      const s = await status();
      const token = s.api.tokens.operator!;
      const { from, to, epoch } = await activeSite(pivot);
      const watch = await SplitBrainWatch.start();
      const answers = await Promise.all(
        Array.from({ length: 50 }, () =>
          fetch(`${s.api.url}/v1/operations`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({
              operation: 'switchover',
              apps: [APP],
              to,
              reason: 'chaos: racing triggers',
            }),
          }).then(async (r) => ({
            status: r.status,
            body: (await r.json()) as { operations?: Array<{ runId?: string }> },
          })),
        ),
      );
      const accepted = answers.filter((a) => a.status === 202);
      const runs = new Set(accepted.flatMap((a) => (a.body.operations ?? []).map((o) => o.runId)));
      expect(runs.size).toBe(1);
      const report = (await pivot.client.workflow
        .getHandle(operationWorkflowId(APP))
        .result()) as OperationReport;
      expect(report.from).toBe(from);
      const violations = await checkAfter(
        recorder,
        pivot,
        { scenario: 'racing triggers', fault: '50 concurrent API starts' },
        report,
        watch,
        epoch,
      );
      expect(violations).toEqual([]);
      expect(report.outcome).toBe('succeeded');
    });
  });

  // Last: it leaves the application where the stale operation took it.
  describe('the checks can fail', () => {
    it('with the epoch guard switched off (a test-only switch), the stale operation acts and the suite says so', async () => {
      const { to } = await activeSite(pivot);
      await lab.restartWorkers({ PIVOT_LAB_UNSAFE: 'no-epoch-guard' });
      let violations: string[];
      try {
        // After the promotion (whose witness write would refuse a stale epoch by itself): the guard alone stands.
        ({ violations } = await staleEpochScenario('rebind-claims', 'the fencing epoch guard'));
      } finally {
        await lab.restartWorkers();
      }
      expect(violations).toContainEqual(expect.stringContaining('a stale operation acted'));
      expect(recorder.selfChecks().at(-1)).toMatchObject({ caught: true });
      // What the stale operation did stands (dc-b promoted and serving): the witness records it.
      const now = await pivot.witness.state(APP);
      await pivot.witness.advanceEpoch(APP, {
        expectEpoch: now.epoch,
        activeSite: to,
        actor: 'chaos',
        reason: 'chaos: after the self-check',
      });
    });
  });
});
