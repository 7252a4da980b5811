/**
 * siteSwitchover and siteFailover: every application active on a site, moved in waves (tiers and
 * `dependsOn`, planner/waves.ts), one child workflow per application under the application's own
 * workflow id (so a site operation and a per-application trigger never run rival operations), at
 * most `concurrency` at a time. One failed application does not stop the independent ones; an
 * application whose dependency did not succeed is not started. The approval, when any runbook
 * asks for one, is given once, to the site operation.
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  CancellationScope,
  condition,
  defineQuery,
  defineUpdate,
  patched,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import { planWaves } from '../planner/waves.ts';
import type { Runbook } from '../runbook/types.ts';
import { approvalRequired, type DecisionRequest, type OperationInput } from './engine.ts';
import { validateApprover } from './approval.ts';
import { operationWorkflowId } from './ids.ts';
import { describeError, type OperationReport } from './progress.ts';

export interface SiteOperationInput {
  operation: 'switchover' | 'failover';
  from: string;
  to: string;
  runbooks: Runbook[];
  /** How many applications move at once within a wave (default 2). */
  concurrency?: number;
  requestedBy: string;
  reason: string;
  storageClassMap: Array<Record<string, string>>;
  fence?: OperationInput['fence'];
  refusalGraceMs?: number;
  approvalTimeoutMs?: number;
  /** The approver must not be the requester (the API's two-person rule). */
  twoPersonRule?: boolean;
}

export type AppOutcome = OperationReport['outcome'] | 'not-started' | 'pending';

export interface SiteAppSummary {
  app: string;
  wave: number;
  workflowId: string;
  outcome: AppOutcome;
  startedAt?: string;
  endedAt?: string;
  error?: string;
  /**
   * What the application's own report says in brief. The whole report stays with its workflow
   * (`pivot report <app>`): hundreds of them in the site's report would outgrow what Temporal
   * carries in one payload (2 MB).
   */
  result?: AppResult;
}

export interface AppResult {
  rtoMs?: number;
  rpoWindowMs?: number;
  epochAfter?: number;
  steps: Array<{ id: string; state: string; durationMs?: number }>;
}

function brief(report: OperationReport): AppResult {
  return {
    ...(report.rtoMs !== undefined ? { rtoMs: report.rtoMs } : {}),
    ...(report.rpo ? { rpoWindowMs: report.rpo.windowMs } : {}),
    ...(report.epochAfter !== undefined ? { epochAfter: report.epochAfter } : {}),
    steps: report.steps.map((s) => ({
      id: s.id,
      state: s.state,
      ...(s.durationMs !== undefined ? { durationMs: s.durationMs } : {}),
    })),
  };
}

export interface SiteOperationReport {
  operation: string;
  from: string;
  to: string;
  requestedBy: string;
  reason: string;
  /**
   * succeeded: every application did; partial: some did; failed: none did; aborted: its approval
   * was refused, or it was cancelled; running.
   */
  outcome: 'running' | 'waiting-approval' | 'succeeded' | 'partial' | 'failed' | 'aborted';
  startedAt: string;
  endedAt?: string;
  waves: string[][];
  apps: SiteAppSummary[];
}

export const siteProgressQuery = defineQuery<SiteOperationReport>('progress');
/** The same Update names as an application's operation, so that `pivot approve` works on both. */
export const siteApproveUpdate = defineUpdate<SiteOperationReport, [DecisionRequest]>('approve');
export const siteAbortUpdate = defineUpdate<SiteOperationReport, [DecisionRequest]>('abort');

export function siteSwitchover(input: Omit<SiteOperationInput, 'operation'>): Promise<SiteOperationReport> {
  return siteOperation({ ...input, operation: 'switchover' });
}

export function siteFailover(input: Omit<SiteOperationInput, 'operation'>): Promise<SiteOperationReport> {
  return siteOperation({ ...input, operation: 'failover' });
}

/**
 * patched() id: once the site operation is cancelled (through Temporal), no further application's
 * operation starts. Those running were asked to stop with it (a child is cancelled with its parent's
 * scope) and end on their own terms: before their point of no return they roll back.
 */
const CANCEL_STARTS_NOTHING = 'site-cancel-starts-nothing';

const cancelled = (): boolean => CancellationScope.current().consideredCancelled;

async function siteOperation(input: SiteOperationInput): Promise<SiteOperationReport> {
  const iso = () => new Date(Date.now()).toISOString();
  const waves = planWaves(input.runbooks);
  const report: SiteOperationReport = {
    operation: input.operation,
    from: input.from,
    to: input.to,
    requestedBy: input.requestedBy,
    reason: input.reason,
    outcome: 'running',
    startedAt: iso(),
    waves,
    apps: waves.flatMap((names, i) =>
      names.map((app) => ({
        app,
        wave: i + 1,
        workflowId: operationWorkflowId(app),
        outcome: 'pending',
      })),
    ),
  };
  setHandler(siteProgressQuery, () => JSON.parse(JSON.stringify(report)) as SiteOperationReport);

  const needsApproval = input.runbooks.some((r) => approvalRequired(r, input.operation));
  let approval: DecisionRequest | undefined;
  let abort: DecisionRequest | undefined;
  setHandler(
    siteApproveUpdate,
    (r) => {
      approval = r;
      return JSON.parse(JSON.stringify(report)) as SiteOperationReport;
    },
    {
      validator: (r: DecisionRequest) => {
        validateApprover(r, {
          requestedBy: input.requestedBy,
          ...(input.twoPersonRule ? { twoPersonRule: true } : {}),
          what: `the ${input.operation} of ${input.from}`,
        });
        if (report.outcome !== 'waiting-approval')
          throw new Error('the site operation is not waiting for an approval');
      },
    },
  );
  setHandler(
    siteAbortUpdate,
    (r) => {
      abort = r;
      return JSON.parse(JSON.stringify(report)) as SiteOperationReport;
    },
    {
      validator: (r: DecisionRequest) => {
        if (!r?.by) throw new Error('say who decides (by)');
        if (report.outcome !== 'waiting-approval') {
          throw new Error(
            'only a site operation waiting for approval can be aborted; abort its applications one by one',
          );
        }
      },
    },
  );
  if (needsApproval) {
    report.outcome = 'waiting-approval';
    const got = await condition(
      () => approval !== undefined || abort !== undefined,
      input.approvalTimeoutMs ?? 3600_000,
    );
    if (!got || abort) {
      report.outcome = 'aborted';
      report.endedAt = iso();
      for (const a of report.apps) a.outcome = 'not-started';
      return report;
    }
    report.outcome = 'running';
  }

  const byName = new Map(input.runbooks.map((r) => [r.metadata.name, r]));
  const limit = Math.max(1, input.concurrency ?? 2);
  for (const names of waves) {
    const queue = [...names];
    const running = new Set<Promise<void>>();
    while (queue.length > 0 || running.size > 0) {
      while (queue.length > 0 && running.size < limit) {
        const name = queue.shift()!;
        const summary = report.apps.find((a) => a.app === name)!;
        const runbook = byName.get(name)!;
        const failedDep = runbook.spec.priority.dependsOn.find((d) => {
          const dep = report.apps.find((a) => a.app === d);
          return dep && dep.outcome !== 'succeeded';
        });
        if (failedDep) {
          summary.outcome = 'not-started';
          summary.error = `its dependency ${failedDep} did not succeed`;
          continue;
        }
        if (cancelled() && patched(CANCEL_STARTS_NOTHING)) {
          summary.outcome = 'not-started';
          summary.error = 'the site operation was cancelled before it started';
          continue;
        }
        const p = runChild(input, runbook, summary, iso, approval).finally(() => running.delete(p));
        running.add(p);
      }
      if (running.size > 0) await Promise.race(running);
    }
  }
  const ok = report.apps.filter((a) => a.outcome === 'succeeded').length;
  report.outcome = cancelled()
    ? 'aborted'
    : ok === report.apps.length
      ? 'succeeded'
      : ok === 0
        ? 'failed'
        : 'partial';
  report.endedAt = iso();
  return report;
}

async function runChild(
  input: SiteOperationInput,
  runbook: Runbook,
  summary: SiteAppSummary,
  iso: () => string,
  approval: DecisionRequest | undefined,
): Promise<void> {
  const args: OperationInput = {
    runbook,
    from: input.from,
    to: input.to,
    requestedBy: input.requestedBy,
    reason: input.reason,
    trigger: workflowInfo().workflowId,
    storageClassMap: input.storageClassMap,
    preApproved: true,
    // A loss beyond an application's objective is accepted only as far as the approver said.
    ...(approval?.acceptDataLossMs !== undefined ? { acceptedDataLossMs: approval.acceptDataLossMs } : {}),
    ...(input.twoPersonRule ? { twoPersonRule: true } : {}),
    ...(input.fence ? { fence: input.fence } : {}),
    ...(input.refusalGraceMs !== undefined ? { refusalGraceMs: input.refusalGraceMs } : {}),
  };
  summary.startedAt = iso();
  summary.outcome = 'running';
  let child;
  try {
    child = await startChild(input.operation, {
      workflowId: summary.workflowId,
      args: [args],
      // Each application's operation holds its own lock and ends on its own terms: terminating the
      // site operation must never kill one in the middle of a step.
      parentClosePolicy: 'ABANDON',
    });
  } catch (err) {
    summary.outcome = 'not-started';
    summary.error =
      err instanceof WorkflowExecutionAlreadyStartedError
        ? `another operation of ${runbook.metadata.name} is running (${summary.workflowId}): it was left to finish`
        : describeError(err);
    summary.endedAt = iso();
    return;
  }
  try {
    const result = (await child.result()) as OperationReport;
    summary.result = brief(result);
    summary.outcome = result.outcome;
    if (result.error) summary.error = result.error;
  } catch (err) {
    // It started, so it may have changed anything: never report it as not started.
    summary.outcome = 'needs-attention';
    summary.error = `the operation of ${runbook.metadata.name} ended without a report (${describeError(err)}): read its progress (pivot report ${runbook.metadata.name}) before anything else`;
  }
  summary.endedAt = iso();
}
