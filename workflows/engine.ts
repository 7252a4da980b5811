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
  patched,
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
import { pointOfNoReturnStep, type CatalogStep } from '../planner/step-catalog.ts';
import { APPROVAL_DEFAULTS } from '../runbook/defaults.ts';
import { formatDuration } from '../runbook/duration.ts';
import type { Operation, Runbook } from '../runbook/types.ts';
import { validateApprover } from './approval.ts';
import { describeError, OperationTracker, type Decision, type OperationReport } from './progress.ts';

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
   * The data loss (ms) the approver of the site operation that started this one accepted: a
   * failover whose expected loss is larger still waits for an approval of its own.
   */
  acceptedDataLossMs?: number;
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
  /**
   * approve: the data loss (ms) the approver accepts, needed when the expected loss exceeds the
   * runbook's RPO objective.
   */
  acceptDataLossMs?: number;
  /**
   * skip of a storage fence: the approver's statement that the old primary was fenced by other
   * means ("fenced by hand: ..."). Only an approver other than the requester may give it.
   */
  attestation?: string;
}

/** The expected data loss of an unplanned failover, measured before its point of no return. */
export interface LossGate {
  /** The replicas' oldest last sync: the loss grows from here until writes stop. */
  lastSyncMs: number;
  objectiveMs: number;
}

export const progressQuery = defineQuery<OperationReport>('progress');
export const approveUpdate = defineUpdate<OperationReport, [DecisionRequest]>('approve');
export const abortUpdate = defineUpdate<OperationReport, [DecisionRequest]>('abort');
export const retryUpdate = defineUpdate<OperationReport, [DecisionRequest]>('retry');
export const skipUpdate = defineUpdate<OperationReport, [DecisionRequest]>('skip');

/** patched() id: waits for a person renew the operation's lock (recorded histories waited without). */
const LOCK_RENEWAL = 'lock-renewal';
/**
 * patched() id: the lock is held by this run (`<workflow id>/<run id>`), not by the workflow id
 * that every operation of the application shares: a run that follows a terminated one no longer
 * re-enters its lock at once, while a step of the terminated run may still be in flight.
 */
const LOCK_PER_RUN = 'lock-per-run';
/** begin() compares the witness's epoch with the one the target site recorded. */
const WITNESS_RECORD_CHECK = 'witness-record-check';
/** How often a waiting operation renews its lock: well within the lock's TTL (activities/control.ts). */
const LOCK_RENEW_EVERY_MS = 3600_000;

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
    // A site whose worker takes no task for this long is gone: the step fails (and says so)
    // rather than wait for it for ever.
    scheduleToStartTimeout: '2 minutes',
    retry: { initialInterval: '2 seconds', maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE },
  },
  /**
   * Fencing one application on a source that answered at preflight but may go at any moment:
   * short, so that a source that stops answering falls back to the storage fence quickly.
   */
  sourceFence: {
    startToCloseTimeout: '1 minute',
    scheduleToCloseTimeout: '2 minutes',
    heartbeatTimeout: '15 seconds',
    retry: { initialInterval: '1 second', maximumAttempts: 2, nonRetryableErrorTypes: NON_RETRYABLE },
  },
  /**
   * Asking a source that may be gone: three short attempts within 12 s, so that one 5xx, 429 or
   * slow answer is not taken for a lost site, while a lost site costs the RTO little more than the
   * single 10 s attempt it used to (the demo's failover preflight took 20 s with four 5 s tries).
   */
  sourceProbe: {
    startToCloseTimeout: '4 seconds',
    scheduleToCloseTimeout: '12 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 3 },
  },
  /**
   * Asking a site that a planned operation needs (or the target of any): the answer is quick, but
   * during a site operation the worker's queue holds a datacenter's worth of steps, so the wait
   * for a free slot is bounded apart, and a slow answer (an API server on a saturated machine) is
   * waited for and asked once more. At N = 300 a single 10 s bound on both together refused five
   * applications whose sites answered; with the queue wait apart, two 10 s answers still did not
   * come in time for one. A site that is gone costs a planned operation a minute before it is
   * refused; an unplanned one never waits on its source this way (sourceProbe).
   */
  siteProbe: {
    scheduleToStartTimeout: '1 minute',
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', maximumAttempts: 2 },
  },
  /** A site that may be gone (the source of an unplanned failover): one short attempt. */
  bestEffort: {
    startToCloseTimeout: '10 seconds',
    scheduleToCloseTimeout: '10 seconds',
    retry: { maximumAttempts: 1 },
  },
} satisfies Record<string, ActivityOptions>;

export type Profile = keyof typeof PROFILES;

export function siteActivities(name: string, profile: Profile, extra: ActivityOptions = {}) {
  return proxyActivities<SiteActivities>({ taskQueue: siteTaskQueue(name), ...PROFILES[profile], ...extra });
}

export function controlActivities() {
  return proxyActivities<ControlActivities>({ taskQueue: CONTROL_TASK_QUEUE, ...PROFILES.k8sMutation });
}

/** The approval policy of an operation for this runbook (docs/operations.md: failover needs one by default). */
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
  /** The operation's steps, from the step catalog (its point of no return and guards included). */
  steps: CatalogStep[];
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
  /** Who holds the witness lock for this operation (set by begin). */
  private lockHolder: string = this.operationId;
  private scope?: CancellationScope;
  private abortRequest?: Decision;
  private approval?: Decision;
  private decision?: Decision;
  private readonly control = controlActivities();
  private readonly pointOfNoReturnStep: string | undefined;
  private notice?: string;
  private lossGate?: LossGate;
  /** The loss an unplanned operation expects (armed or not), shown with the approval it waits for. */
  private lossBasis?: LossGate;
  private cutsOff?: string[];

  constructor(
    readonly input: OperationInput,
    private readonly options: RunOptions,
  ) {
    this.app = input.runbook.metadata.name;
    this.pointOfNoReturnStep = pointOfNoReturnStep(options.steps);
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
          validateApprover(r, {
            requestedBy: input.requestedBy,
            ...(input.twoPersonRule ? { twoPersonRule: true } : {}),
            what: `the ${options.operation} of ${this.app}`,
          });
          this.validateLossAcceptance(r);
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
      ...(r.acceptDataLossMs !== undefined ? { acceptDataLossMs: r.acceptDataLossMs } : {}),
      ...(r.attestation ? { attestation: r.attestation } : {}),
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
    if (current && current.id === this.pointOfNoReturnStep && current.state === 'running') {
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
    if (!isSkip) return;
    if (typeof r.reason !== 'string' || r.reason.trim() === '') {
      throw new Error('a skip needs a reason: it is recorded in the report');
    }
    const failed = report.steps.find((s) => s.id === report.currentStep);
    if (failed?.guard === 'never-skip') {
      throw new Error(
        `step ${failed.id} keeps ${this.app} from having two writers (or records the epoch that does): it cannot be skipped; retry it once the cause is fixed`,
      );
    }
    if (failed?.guard === 'attest') {
      if (typeof r.attestation !== 'string' || r.attestation.trim() === '') {
        throw new Error(
          `step ${failed.id} fences ${this.input.from} at the storage: it can be passed only with an approver's attestation that ${this.input.from} was fenced by other means (attestation: "fenced by hand: ...")`,
        );
      }
      if (r.by === this.input.requestedBy) {
        throw new Error(
          `two-person rule: ${r.by} requested this ${this.options.operation} and cannot attest its fence`,
        );
      }
    } else if (r.attestation !== undefined) {
      throw new Error(`step ${failed?.id ?? '?'} takes no attestation`);
    }
  }

  /** The expected loss now: from the replicas' oldest last sync until now (writes have not stopped yet). */
  private expectedLossMs(gate: LossGate): number {
    // An unknown last sync is an unbounded loss: only "unbounded" (MAX_SAFE_INTEGER) accepts it.
    return Math.min(Number.MAX_SAFE_INTEGER, Math.max(0, Date.now() - gate.lastSyncMs));
  }

  /**
   * Beyond the RPO objective an approval must state the loss it accepts, at least the loss expected
   * at the moment of the approval.
   */
  private validateLossAcceptance(r: DecisionRequest): void {
    const gate = this.lossGate;
    if (!gate) return;
    const expected = this.expectedLossMs(gate);
    const accepted = r.acceptDataLossMs;
    if (typeof accepted !== 'number' || !Number.isFinite(accepted) || accepted < expected) {
      throw new Error(
        `the expected data loss of ${this.app} is ${formatDuration(expected)}, beyond its RPO objective of ${formatDuration(gate.objectiveMs)}: approve with the loss you accept, at least ${formatDuration(expected)} (pivot approve ${this.app} --accept-data-loss ${expected >= Number.MAX_SAFE_INTEGER ? 'unbounded' : `${Math.ceil(expected / 60_000) + 1}m`})`,
      );
    }
  }

  /**
   * Arms the data-loss gate: the replicas' oldest last sync is older than the RPO objective allows
   * (or unknown: lastSyncMs -Infinity), so the approval must accept the loss, whatever the policy.
   */
  requireLossAcceptance(gate: LossGate): void {
    this.lossGate = gate;
    this.lossBasis = gate;
  }

  /** The loss expected within the objective: shown to the approver, no acceptance needed. */
  expectLoss(basis: LossGate): void {
    this.lossBasis = basis;
  }

  /**
   * Something the approver must read before approving (shown with the wait, kept in the notes),
   * with the applications a storage fence would also cut off.
   */
  approvalNotice(text: string, cutsOff?: string[]): void {
    this.notice = text;
    if (cutsOff) this.cutsOff = cutsOff;
    this.tracker.note(text);
  }

  /** The loss the approval accepted (ms), when the data-loss gate was armed. */
  get acceptedDataLossMs(): number | undefined {
    return this.approval?.acceptDataLossMs ?? (this.lossGate ? this.input.acceptedDataLossMs : undefined);
  }

  private throwIfAborted(): void {
    const a = this.abortRequest;
    if (a) throw new Aborted(a.by, a.reason);
  }

  /**
   * Waits for a person (up to `timeoutMs`), renewing the operation's lock as it goes: the lock
   * lives as long as the operation, however long a decision takes (its TTL only frees the lock of
   * an operation that was terminated).
   */
  private async waitHoldingLock(done: () => boolean, timeoutMs: number): Promise<boolean> {
    if (!patched(LOCK_RENEWAL)) return condition(done, timeoutMs);
    const end = Date.now() + timeoutMs;
    for (;;) {
      const left = end - Date.now();
      if (await condition(done, Math.max(1, Math.min(left, LOCK_RENEW_EVERY_MS)))) return true;
      if (Date.now() >= end) return false;
      if (this.locked) await this.control.renewLock(this.app, this.lockHolder);
    }
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
    if (patched(LOCK_PER_RUN)) this.lockHolder = `${this.operationId}/${workflowInfo().runId}`;
    const witness = await this.control.beginOperation(this.app, this.lockHolder);
    this.locked = true;
    this.tracker.epochBefore = witness.epoch;
    if (patched(WITNESS_RECORD_CHECK)) {
      // A witness that lost its data reads epoch 0: never act on that.
      // The target must answer whatever the operation: it is where the application goes.
      const seen = await siteActivities(this.input.to, 'siteProbe').recordedEpoch(
        this.input.runbook.spec.namespaces,
      );
      if (seen > witness.epoch) {
        throw new Error(
          `the witness holds epoch ${witness.epoch} for ${this.app} but ${this.input.to} recorded epoch ${seen}: the witness lost its record; restore it (from its replicas or a backup) before any operation`,
        );
      }
    }
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
          if (d.attestation) {
            this.tracker.note(`${d.by} attests in place of step ${id}: ${d.attestation}`);
            await this.control.auditDecision(this.app, {
              actor: d.by,
              action: 'attest',
              detail: `${this.operationId} step ${id} (requested by ${this.input.requestedBy}): ${d.attestation}`,
            });
          }
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
    await this.waitHoldingLock(
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

  /**
   * The approval gate: waits for `pivot approve` unless the runbook's policy needs none and no
   * data-loss gate is armed. A data loss beyond the objective is never accepted on anyone's behalf:
   * not by an alert, nor by a site operation's approval that accepted less.
   */
  async approvalGate(): Promise<void> {
    const gate = this.lossGate;
    const declared = this.options.steps.some((s) => s.id === 'approval');
    if (!declared) return;
    await this.step('approval', async () => {
      if (gate) {
        this.tracker.note(
          `the expected data loss (${formatDuration(this.expectedLossMs(gate))}) is beyond the RPO objective (${formatDuration(gate.objectiveMs)}): an approver must accept it`,
        );
      }
      const parentAccepted = !gate || (this.input.acceptedDataLossMs ?? -1) >= this.expectedLossMs(gate);
      if (this.input.preApproved && parentAccepted) {
        this.tracker.note(`approved with the site operation (${this.input.trigger ?? 'parent'})`);
        return;
      }
      if (!gate && !approvalRequired(this.input.runbook, this.options.operation)) {
        this.tracker.note(
          'no approval needed: the policy asks for none and the loss is within the objective',
        );
        return;
      }
      const basis = this.lossBasis;
      this.tracker.wait({
        for: 'approval',
        detail: `${this.notice ? `${this.notice}. ` : ''}approve with \`pivot approve ${this.app}\`${gate ? ' --accept-data-loss <duration>' : ''}, or abort with \`pivot abort ${this.app}\``,
        ...(basis
          ? {
              loss: {
                ...(Number.isFinite(basis.lastSyncMs)
                  ? { lastSyncTime: new Date(basis.lastSyncMs).toISOString() }
                  : {}),
                objectiveMs: basis.objectiveMs,
                mustAccept: gate !== undefined,
              },
            }
          : {}),
        ...(this.cutsOff?.length ? { cutsOff: this.cutsOff } : {}),
      });
      this.pendingApproval(true);
      const got = await this.waitHoldingLock(
        () => this.approval !== undefined || this.abortRequest !== undefined,
        this.input.approvalTimeoutMs ?? 3600_000,
      );
      this.tracker.wait(undefined);
      this.pendingApproval(false);
      this.throwIfAborted();
      if (!got) throw new Error('nobody approved the operation in time');
      const accepted = this.approval!.acceptDataLossMs;
      this.tracker.note(
        `approved by ${this.approval!.by}${accepted !== undefined ? `, accepting a data loss of up to ${formatDuration(accepted)}` : ''}`,
      );
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
        // Newest first; each one undoes what the ones before it left, so the first that fails stops
        // the roll-back and everything from it on is left for a person.
        const left: string[] = [];
        await CancellationScope.nonCancellable(async () => {
          for (const c of this.compensations) {
            if (left.length > 0) {
              left.push(c.what);
              continue;
            }
            try {
              await c.run();
              this.tracker.note(`compensated: ${c.what}`);
            } catch (compErr) {
              this.tracker.note(`compensation failed: ${c.what}: ${describeError(compErr)}`);
              left.push(c.what);
            }
          }
        });
        if (left.length > 0) {
          this.tracker.finish(
            'needs-attention',
            err,
            `the roll-back did not finish: ${this.input.from} does not serve as before. Left to do, in order: ${left.join('; ')}`,
          );
        } else {
          const outcome = aborted ? 'aborted' : this.compensations.length > 0 ? 'rolled-back' : 'refused';
          this.tracker.finish(
            outcome,
            err,
            this.compensations.length > 0
              ? `the source ${this.input.from} serves again as before; ${this.options.refusal}`
              : `nothing was changed; ${this.options.refusal}`,
          );
        }
      }
    } finally {
      this.emitMetrics();
      if (this.locked) {
        // The outcome stands whatever happens to the lock: a witness that cannot be written now
        // leaves the lock to expire (or to be renewed by nobody), never a rewritten report.
        await CancellationScope.nonCancellable(async () => {
          try {
            await this.control.endOperation(this.app, this.lockHolder, this.tracker.report().outcome);
          } catch (err) {
            this.tracker.note(
              `the witness did not record the end of this operation (${describeError(err)}): its lock on ${this.app} expires on its own; ask the witness's operators before starting another`,
            );
          }
        });
      }
    }
    return this.tracker.report();
  }
}
