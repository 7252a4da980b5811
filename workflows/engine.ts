/**
 * What every per-application operation shares: its input, its progress query and its Updates
 * (approve, abort, retry, skip, each with a validator), the named activity profiles, the witness
 * lock, the approval gate, saga compensation before the point of no return, and after it a
 * "needs attention" state that waits for an operator's decision instead of rolling back.
 *
 * A workflow builds one OperationRun, declares its steps (the plan's step ids), and runs its body
 * through `execute`; the run turns whatever happens into one OperationReport.
 */
import {
  CancellationScope,
  condition,
  defineQuery,
  defineUpdate,
  isCancellation,
  metricMeter,
  proxyActivities,
  setHandler,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { ControlActivities, SiteActivities } from '../activities/index.ts';
import { NON_RETRYABLE } from '../activities/failures.ts';
import type { StepContext } from '../activities/types.ts';
import type { FenceInput } from '../config/fence.ts';
import { CONTROL_TASK_QUEUE, siteTaskQueue } from '../common/task-queues.ts';
import { APPROVAL_DEFAULTS } from '../runbook/defaults.ts';
import type { Operation, Runbook } from '../runbook/types.ts';
import { OperationTracker, type Decision, type OperationReport } from './progress.ts';

export interface OperationInput {
  runbook: Runbook;
  from: string;
  to: string;
  requestedBy: string;
  reason: string;
  /** Who or what triggered it: cli, api, alert, schedule, or the site operation's workflow id. */
  trigger?: string;
  storageClassMap: Array<Record<string, string>>;
  /** How long a storage refusal may last before a step gives up on an attempt (default 10 s). */
  refusalGraceMs?: number;
  /** The approval was given to the site operation that started this one. */
  preApproved?: boolean;
  /**
   * Unplanned failover: the client networks of the site to fence at the storage, and how the
   * target's cluster creates a NetworkFence (its site configuration).
   */
  fence?: FenceInput;
  /** The approver of this operation must not be its requester (the API's two-person rule). */
  twoPersonRule?: boolean;
  /** How long to wait for an approval (default 1 h) or an operator's decision (default 24 h). */
  approvalTimeoutMs?: number;
  decisionTimeoutMs?: number;
}

/** What an operator sends with an Update. */
export interface DecisionRequest {
  by: string;
  reason?: string;
  /** skip: the step to skip (must be the failed one); retry: optional, the same. */
  step?: string;
}

export const progressQuery = defineQuery<OperationReport>('progress');
export const approveUpdate = defineUpdate<OperationReport, [DecisionRequest]>('approve');
export const abortUpdate = defineUpdate<OperationReport, [DecisionRequest]>('abort');
export const retryUpdate = defineUpdate<OperationReport, [DecisionRequest]>('retry');
export const skipUpdate = defineUpdate<OperationReport, [DecisionRequest]>('skip');

/** Named timeout and retry profiles; the non-retryable error types are declared, not inferred. */
export const PROFILES = {
  k8sMutation: {
    startToCloseTimeout: '1 minute',
    scheduleToCloseTimeout: '5 minutes',
    retry: { initialInterval: '1 second', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
  },
  storageWait: {
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: '30 seconds',
    retry: { initialInterval: '2 seconds', maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE },
  },
  /** A site that may be gone (the source of an unplanned failover): one short attempt. */
  bestEffort: {
    startToCloseTimeout: '10 seconds',
    scheduleToCloseTimeout: '10 seconds',
    retry: { maximumAttempts: 1 },
  },
} satisfies Record<string, ActivityOptions>;

export type Profile = keyof typeof PROFILES;

export function siteActivities(name: string, profile: Profile) {
  return proxyActivities<SiteActivities>({ taskQueue: siteTaskQueue(name), ...PROFILES[profile] });
}

export function controlActivities() {
  return proxyActivities<ControlActivities>({ taskQueue: CONTROL_TASK_QUEUE, ...PROFILES.k8sMutation });
}

/** The approval policy of an operation for this runbook (DESIGN.md: failover needs one by default). */
export function approvalRequired(runbook: Runbook, operation: Operation): boolean {
  return (runbook.spec.approval[operation] ?? APPROVAL_DEFAULTS[operation]) === 'required';
}

/** An operator aborted the operation (or Temporal cancelled it). */
class Aborted extends Error {
  constructor(by: string, reason?: string) {
    super(`aborted by ${by}${reason ? `: ${reason}` : ''}`);
    this.name = 'Aborted';
  }
}

/** A step failed after the point of no return and nobody asked to retry or skip it. */
class Unresolved extends Error {
  constructor(readonly failure: unknown) {
    super('unresolved');
  }
}

export interface RunOptions {
  operation: Operation;
  mode: 'planned' | 'unplanned';
  steps: Array<[id: string, title: string, site: string]>;
  /** The step during which an abort is refused: once it starts, the point of no return is near. */
  pointOfNoReturnStep: string;
  /** What to do when a step fails after the point of no return. */
  attention: string;
  /** What to do when the operation changed nothing (refused) or was rolled back. */
  refusal: string;
}

export class OperationRun {
  readonly tracker: OperationTracker;
  readonly app: string;
  readonly operationId = workflowInfo().workflowId;
  readonly namespace: string;
  private readonly compensations: Array<{ what: string; run: () => Promise<unknown> }> = [];
  private locked = false;
  private scope?: CancellationScope;
  private abortRequest?: Decision;
  private approval?: Decision;
  private decision?: Decision;
  private readonly control = controlActivities();

  constructor(
    readonly input: OperationInput,
    private readonly options: RunOptions,
  ) {
    this.app = input.runbook.metadata.name;
    this.namespace = input.runbook.spec.namespaces[0] ?? 'default';
    this.tracker = new OperationTracker(
      {
        app: this.app,
        operation: options.operation,
        from: input.from,
        to: input.to,
        requestedBy: input.requestedBy,
        reason: input.reason,
        ...(input.trigger ? { trigger: input.trigger } : {}),
        mode: options.mode,
      },
      options.steps,
    );
    setHandler(progressQuery, () => this.tracker.report());
    setHandler(
      approveUpdate,
      (r) => {
        this.approval = this.record('approve', r);
        return this.tracker.report();
      },
      {
        validator: (r: DecisionRequest) => {
          this.validateRequest(r);
          if (this.tracker.report().waiting?.for !== 'approval') {
            throw new Error(`the ${options.operation} of ${this.app} is not waiting for an approval`);
          }
          if (input.twoPersonRule && r.by === input.requestedBy) {
            throw new Error(
              `two-person rule: ${r.by} requested this ${options.operation} and cannot approve it`,
            );
          }
        },
      },
    );
    setHandler(
      abortUpdate,
      (r) => {
        this.abortRequest = this.record('abort', r);
        this.scope?.cancel();
        return this.tracker.report();
      },
      { validator: (r: DecisionRequest) => this.validateAbort(r) },
    );
    setHandler(
      retryUpdate,
      (r) => {
        this.decision = this.record('retry', r);
        return this.tracker.report();
      },
      { validator: (r: DecisionRequest) => this.validateDecision(r, false) },
    );
    setHandler(
      skipUpdate,
      (r) => {
        this.decision = this.record('skip', r);
        return this.tracker.report();
      },
      { validator: (r: DecisionRequest) => this.validateDecision(r, true) },
    );
  }

  private record(action: Decision['action'], r: DecisionRequest): Decision {
    const d: Decision = {
      action,
      by: r.by,
      at: new Date(Date.now()).toISOString(),
      ...(r.step ? { step: r.step } : {}),
      ...(r.reason ? { reason: r.reason } : {}),
    };
    this.tracker.decisions.push(d);
    return d;
  }

  private validateRequest(r: DecisionRequest): void {
    if (typeof r?.by !== 'string' || r.by.trim() === '') throw new Error('say who decides (by)');
    if (this.tracker.finished) throw new Error(`the ${this.options.operation} of ${this.app} has ended`);
  }

  private validateAbort(r: DecisionRequest): void {
    this.validateRequest(r);
    const report = this.tracker.report();
    if (report.waiting?.for === 'decision') return; // closes it, as it stands
    if (this.tracker.pointOfNoReturnPassed) {
      throw new Error(
        `the ${this.options.operation} of ${this.app} is past the point of no return: it cannot be rolled back; wait for it to end, or retry or skip a failed step`,
      );
    }
    const current = this.tracker.current;
    if (current?.id === this.options.pointOfNoReturnStep && current.state === 'running') {
      throw new Error(`step ${current.id} is under way: too late to abort`);
    }
  }

  private validateDecision(r: DecisionRequest, isSkip: boolean): void {
    this.validateRequest(r);
    const report = this.tracker.report();
    if (report.waiting?.for !== 'decision') {
      throw new Error(
        `the ${this.options.operation} of ${this.app} has no failed step waiting for a decision`,
      );
    }
    if (r.step !== undefined && r.step !== report.currentStep) {
      throw new Error(`the failed step is ${report.currentStep}, not ${r.step}`);
    }
    if (isSkip && (typeof r.reason !== 'string' || r.reason.trim() === '')) {
      throw new Error('a skip needs a reason: it is recorded in the report');
    }
  }

  private throwIfAborted(): void {
    const a = this.abortRequest;
    if (a) throw new Aborted(a.by, a.reason);
  }

  /** Registers a compensation (run newest first if the operation fails before the point of no return). */
  compensate(what: string, run: () => Promise<unknown>): void {
    this.compensations.unshift({ what, run });
  }

  passPointOfNoReturn(): void {
    this.tracker.pointOfNoReturnPassed = true;
  }

  /**
   * Takes the witness lock and returns the fencing context the operation starts from, after
   * checking the witness agrees: `active` is the active site (or none is recorded yet), and
   * `unfenced` (the site the application moves to) is not fenced by an earlier failover.
   */
  async begin(expect: { active: string; unfenced?: string }): Promise<{ ctx: StepContext }> {
    const witness = await this.control.beginOperation(this.app, this.operationId);
    this.locked = true;
    this.tracker.epochBefore = witness.epoch;
    if (witness.activeSite && witness.activeSite !== expect.active) {
      throw new Error(
        `the witness records ${witness.activeSite} as the active site of ${this.app}, not ${expect.active}`,
      );
    }
    if (expect.unfenced && witness.fencedSites.includes(expect.unfenced)) {
      throw new Error(
        `${expect.unfenced} is fenced since an unplanned failover: reprotect it before ${this.app} can be active there`,
      );
    }
    return { ctx: { app: this.app, operationId: this.operationId, epoch: witness.epoch } };
  }

  /**
   * A step before the point of no return: an abort cancels it; a failure ends the operation
   * (compensated). After the point of no return, use `act`.
   */
  async step<T>(id: string, run: () => Promise<T>): Promise<T> {
    this.throwIfAborted();
    const scope = new CancellationScope({ cancellable: true });
    this.scope = scope;
    try {
      return await scope.run(() => this.tracker.step(id, run));
    } catch (err) {
      this.throwIfAborted();
      throw err;
    } finally {
      this.scope = undefined;
    }
  }

  /**
   * A step that may run after the point of no return: if it fails there, the operation needs
   * attention and waits for an operator to retry it, skip it (with a reason), or close it.
   */
  async act(id: string, run: () => Promise<unknown>): Promise<void> {
    if (!this.tracker.pointOfNoReturnPassed) {
      await this.step(id, run);
      return;
    }
    for (;;) {
      try {
        await this.tracker.step(id, run);
        return;
      } catch (err) {
        const d = await this.awaitDecision(id, err);
        if (d.action === 'skip') {
          this.tracker.skip(id, d.reason ?? '');
          this.tracker.note(`step ${id} skipped by ${d.by}: ${d.reason ?? ''}`);
          return;
        }
        this.tracker.note(`step ${id} retried by ${d.by}`);
      }
    }
  }

  private async awaitDecision(id: string, err: unknown): Promise<Decision> {
    this.tracker.needsAttention(err, this.options.attention);
    this.tracker.wait({
      for: 'decision',
      detail: `step ${id} failed: retry it (pivot retry ${this.app}), skip it with a reason (pivot skip ${this.app} --step ${id} --reason ...), or close the operation as it stands (pivot abort ${this.app})`,
    });
    this.decision = undefined;
    await condition(
      () => this.decision !== undefined || this.abortRequest !== undefined,
      this.input.decisionTimeoutMs ?? 24 * 3600_000,
    );
    this.tracker.wait(undefined);
    const d = this.decision;
    this.decision = undefined;
    if (!d) throw new Unresolved(err);
    this.tracker.resume();
    return d;
  }

  /** The approval gate: waits for `pivot approve` unless the runbook's policy needs none. */
  async approvalGate(): Promise<void> {
    if (!approvalRequired(this.input.runbook, this.options.operation)) return;
    await this.step('approval', async () => {
      if (this.input.preApproved) {
        this.tracker.note(`approved with the site operation (${this.input.trigger ?? 'parent'})`);
        return;
      }
      this.tracker.wait({
        for: 'approval',
        detail: `approve with \`pivot approve ${this.app}\`, or abort with \`pivot abort ${this.app}\``,
      });
      this.pendingApproval(true);
      const got = await condition(
        () => this.approval !== undefined || this.abortRequest !== undefined,
        this.input.approvalTimeoutMs ?? 3600_000,
      );
      this.tracker.wait(undefined);
      this.pendingApproval(false);
      this.throwIfAborted();
      if (!got) throw new Error('nobody approved the operation in time');
      this.tracker.note(`approved by ${this.approval!.by}`);
    });
  }

  /** Emits the operation's metrics through the worker's Temporal runtime (Prometheus). */
  private emitMetrics(): void {
    const report = this.tracker.report();
    const attrs = { operation: report.operation, app: report.app };
    metricMeter
      // The exporter adds `_total` to counters: this is pivot_operations_total.
      .createCounter('pivot_operations', '1', 'operations ended, by operation, application and outcome')
      .add(1, { ...attrs, outcome: report.outcome });
    if (report.rtoMs !== undefined) {
      metricMeter
        .createHistogram(
          'pivot_operation_duration_seconds',
          'float',
          's',
          'trigger to verified (RTO), or to the end',
        )
        .record(report.rtoMs / 1000, { ...attrs, outcome: report.outcome });
    }
    const steps = metricMeter.createHistogram(
      'pivot_step_duration_seconds',
      'float',
      's',
      'duration of each step',
    );
    for (const step of report.steps) {
      if (step.durationMs !== undefined)
        steps.record(step.durationMs / 1000, { ...attrs, step: step.id, state: step.state });
    }
  }

  /** 1 while the operation waits for an approval, else 0 (a gauge per application). */
  private pendingApproval(waiting: boolean): void {
    metricMeter
      .createGauge('pivot_pending_approvals', 'int', '1', 'operations waiting for an approval')
      .set(waiting ? 1 : 0, { operation: this.options.operation, app: this.app });
  }

  /** Runs the operation's body and turns its outcome into the report. */
  async execute(body: () => Promise<void>): Promise<OperationReport> {
    try {
      await body();
      this.tracker.finish('succeeded');
    } catch (caught) {
      const err = caught instanceof Unresolved ? caught.failure : caught;
      const aborted = this.abortRequest !== undefined || caught instanceof Aborted || isCancellation(caught);
      if (this.tracker.pointOfNoReturnPassed) {
        this.tracker.finish('needs-attention', err, this.options.attention);
      } else {
        await CancellationScope.nonCancellable(async () => {
          for (const c of this.compensations) {
            try {
              await c.run();
              this.tracker.note(`compensated: ${c.what}`);
            } catch (compErr) {
              this.tracker.note(`compensation failed: ${c.what}: ${String(compErr)}`);
            }
          }
        });
        const outcome = aborted ? 'aborted' : this.compensations.length > 0 ? 'rolled-back' : 'refused';
        this.tracker.finish(
          outcome,
          err,
          this.compensations.length > 0
            ? `the source ${this.input.from} serves again as before; ${this.options.refusal}`
            : `nothing was changed; ${this.options.refusal}`,
        );
      }
    } finally {
      this.emitMetrics();
      if (this.locked) {
        await CancellationScope.nonCancellable(() =>
          this.control.endOperation(this.app, this.operationId, this.tracker.report().outcome),
        );
      }
    }
    return this.tracker.report();
  }
}
