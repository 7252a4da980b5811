/**
 * The chaos suite's harness: it moves the lab's sample application from site to site while it
 * injects faults at step boundaries, checks the invariants (invariants.ts) after every operation,
 * and keeps the count the suite ends with (docs/reliability.md):
 *
 *   chaos: S scenarios, F faults injected, O operations completed, V invariant violations, L writes lost beyond reported RPO
 *
 * plus a JSON file beside it listing every fault, its step, the outcome and the invariants checked.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { SiteApi } from '../../common/k8s.ts';
import { sleep, waitUntil } from '../../common/wait.ts';
import { REPO_ROOT } from '../../lab/layout.ts';
import type { OperationReport } from '../../workflows/progress.ts';
import { site } from '../lab/helpers.ts';
import type { LabPivot } from '../lab/temporal.ts';
import type { SplitBrainWatch } from './invariants.ts';
import {
  APP,
  appliedOnce,
  lossWithinReported,
  servedFromOneSite,
  writesLostBeyondReported,
  type Invariant,
} from './invariants.ts';

export const SITES: Record<string, SiteApi> = { 'dc-a': site('dc-a'), 'dc-b': site('dc-b') };

/** How much of the fault matrix a run covers: `ci` in `npm test`, `full` with `npm run test:chaos`. */
export const PROFILE: 'ci' | 'full' = process.env['PIVOT_CHAOS_PROFILE'] === 'full' ? 'full' : 'ci';

export interface FaultRecord {
  scenario: string;
  /** A self-check: a safety mechanism was switched off on purpose, and the invariants must catch it. */
  selfCheck?: { mechanismOff: string; caught: boolean };
  fault: string;
  /** The step the fault hit (its boundary or its middle). */
  step?: string;
  /** An operation the scenario runs after its fault (a reprotect, a failback): checked, not a fault. */
  followUp?: boolean;
  operation: string;
  outcome: string;
  rtoMs?: number;
  invariants: Invariant[];
}

export class ChaosRecorder {
  readonly scenarios = new Set<string>();
  readonly faults: FaultRecord[] = [];
  operationsCompleted = 0;
  violations = 0;
  writesLost = 0;

  record(r: FaultRecord, lost: number): void {
    this.faults.push(r);
    // A self-check's violations are what it looks for: they are reported, not counted.
    if (r.selfCheck) return;
    this.scenarios.add(r.scenario);
    if (r.outcome === 'succeeded') this.operationsCompleted += 1;
    this.violations += r.invariants.reduce((n, i) => n + (i.notApplicable ? 0 : i.violations.length), 0);
    this.writesLost += lost;
  }

  /** The self-checks: each safety mechanism switched off, and whether the invariants caught it. */
  selfChecks(): Array<{ mechanismOff: string; scenario: string; caught: boolean }> {
    return this.faults.flatMap((f) => (f.selfCheck ? [{ ...f.selfCheck, scenario: f.scenario }] : []));
  }

  /** The faults injected: every record but the follow-up operations. */
  injected(): number {
    return this.faults.filter((f) => !f.followUp).length;
  }

  summary(): string {
    return `chaos: ${this.scenarios.size} scenarios, ${this.injected()} faults injected, ${this.operationsCompleted} operations completed, ${this.violations} invariant violations, ${this.writesLost} writes lost beyond reported RPO`;
  }

  /** Writes the JSON report and returns its path. */
  write(): string {
    const dir = join(REPO_ROOT, 'artifacts', 'chaos');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'chaos-report.json');
    writeFileSync(
      file,
      JSON.stringify(
        {
          profile: PROFILE,
          summary: this.summary(),
          scenarios: this.scenarios.size,
          faultsInjected: this.injected(),
          operationsCompleted: this.operationsCompleted,
          invariantViolations: this.violations,
          writesLostBeyondReportedRpo: this.writesLost,
          selfChecks: this.selfChecks(),
          faults: this.faults,
        },
        null,
        2,
      ),
    );
    return file;
  }
}

/** Where the application is active now, by the witness (the lab seeds it on dc-a). */
export async function activeSite(pivot: LabPivot): Promise<{ from: string; to: string; epoch: number }> {
  const s = await pivot.witness.state(APP);
  const from = s.activeSite ?? 'dc-a';
  return { from, to: from === 'dc-a' ? 'dc-b' : 'dc-a', epoch: s.epoch };
}

/** Waits until the operation reaches `step` (running, or past it), and returns its progress then. */
export async function reachStep(
  handle: WorkflowHandle,
  step: string,
  timeoutMs = 120_000,
): Promise<OperationReport> {
  let last: OperationReport | undefined;
  await waitUntil(
    `the operation to reach ${step}`,
    async () => {
      last = await handle.query<OperationReport>('progress');
      const s = last.steps.find((x) => x.id === step);
      if (!s) throw new Error(`the operation has no step ${step}`);
      return s.state !== 'pending' || `at ${last.currentStep ?? '-'} (${last.outcome})`;
    },
    { timeoutMs, intervalMs: 100 },
  );
  return last!;
}

/**
 * Checks every invariant after an operation the scenario disturbed, records the fault with them,
 * and returns the violations (the scenario's test fails on any).
 */
export async function checkAfter(
  recorder: ChaosRecorder,
  pivot: LabPivot,
  fault: Omit<FaultRecord, 'invariants' | 'outcome' | 'rtoMs' | 'operation'>,
  report: OperationReport,
  watch: SplitBrainWatch,
  epochBefore: number,
  options: {
    othersAdvanced?: number;
    notApplicable?: Record<string, string>;
    /** Invariants particular to the scenario. */
    extra?: () => Promise<Invariant[]>;
    /** The safety mechanism switched off for a self-check. */
    mechanismOff?: string;
    followUp?: boolean;
  } = {},
): Promise<string[]> {
  const epochNow = (await pivot.witness.state(APP)).epoch;
  const invariants: Invariant[] = [
    ...(options.extra ? await options.extra() : []),
    await watch.check(),
    lossWithinReported(report),
    await appliedOnce(SITES, report, epochBefore, epochNow, options.othersAdvanced ?? 0),
    await servedFromOneSite(SITES, report),
  ].map((i) => {
    const why = options.notApplicable?.[i.name];
    return why ? { ...i, notApplicable: why } : i;
  });
  const found = invariants
    .filter((i) => !i.notApplicable)
    .flatMap((i) => i.violations.map((v) => `${i.name}: ${v}`));
  recorder.record(
    {
      ...fault,
      ...(options.mechanismOff
        ? { selfCheck: { mechanismOff: options.mechanismOff, caught: found.length > 0 } }
        : {}),
      ...(options.followUp ? { followUp: true } : {}),
      operation: `${report.operation} ${report.from} → ${report.to}`,
      outcome: report.outcome,
      ...(report.rtoMs !== undefined ? { rtoMs: report.rtoMs } : {}),
      invariants,
    },
    writesLostBeyondReported(report),
  );
  return found;
}

/** Approves the operation (a failover's) once it asks, accepting a loss of up to 10 minutes. */
export async function approveWhenAsked(handle: WorkflowHandle): Promise<void> {
  await askedForApproval(handle);
  await handle.executeUpdate('approve', { args: [{ by: 'chaos-approver', acceptDataLossMs: 600_000 }] });
}

/** Waits until the operation asks for its approval. */
export async function askedForApproval(handle: WorkflowHandle): Promise<void> {
  await waitUntil(
    'the operation to ask for approval',
    async () => {
      const now = await handle.query<OperationReport>('progress');
      return now.waiting?.for === 'approval' || `at ${now.currentStep ?? '-'} (${now.outcome})`;
    },
    { timeoutMs: 120_000, intervalMs: 200 },
  );
}

/**
 * The operation's end. One that waits for a decision after its point of no return (it would wait
 * 24 h) is closed as it stands with an abort, as on-call would, and that is its end.
 */
export async function settle(handle: WorkflowHandle): Promise<OperationReport> {
  let closed = false;
  const result = handle.result() as Promise<OperationReport>;
  for (;;) {
    const done = await Promise.race([result.then(() => true), sleep(500).then(() => false)]);
    if (done) return result;
    const now = await handle.query<OperationReport>('progress');
    if (!closed && now.waiting?.for === 'decision') {
      closed = true;
      await handle.executeUpdate('abort', { args: [{ by: 'chaos', reason: 'chaos: closed as it stands' }] });
    }
  }
}
