/**
 * Progress and reports as data: an operation's phase, its steps with state and timings, and its
 * outcome. The workflow keeps one OperationTracker; the progress query, the CLI and the final
 * report all read the same structure. Deterministic: time is the workflow's clock.
 */
import { TimeoutFailure } from '@temporalio/common';
import type { CatalogStep, StepGuard } from '../planner/step-catalog.ts';

export const STEP_STATES = ['pending', 'running', 'succeeded', 'failed', 'skipped'] as const;
export type StepState = (typeof STEP_STATES)[number];

/**
 * running; succeeded; refused (stopped before changing anything, e.g. another operation holds the
 * lock); rolled-back (failed before the point of no return, compensations ran); needs-attention
 * (failed after it: never rolled back automatically; the operation waits for an operator's retry,
 * skip or abort, and ends in this state if none comes); aborted (an operator aborted it before the
 * point of no return: compensations ran, the source serves as before); failed (drills).
 */
export type Outcome =
  | 'running'
  | 'succeeded'
  | 'refused'
  | 'rolled-back'
  | 'needs-attention'
  | 'aborted'
  /** Drills only: a step or an objective failed (production is unchanged either way). */
  | 'failed';

/** What an operation waits for, when it waits for a person. */
export interface Waiting {
  for: 'approval' | 'decision';
  since: string;
  /** What to do, e.g. "approve with `pivot approve orders`". */
  detail: string;
  /**
   * An unplanned operation's expected data loss: it grows from the replicas' oldest last sync
   * (absent: unknown, an unbounded loss) until writes stop, against the RPO objective; beyond it
   * the approver must accept the loss.
   */
  loss?: { lastSyncTime?: string; objectiveMs: number; mustAccept: boolean };
  /** Other applications a storage fence on the source's networks would cut off. */
  cutsOff?: string[];
}

/** An operator's decision sent to a running operation (approve, abort, retry, skip). */
export interface Decision {
  action: 'approve' | 'abort' | 'retry' | 'skip';
  by: string;
  at: string;
  step?: string;
  reason?: string;
  /** approve: the data loss (ms) the approver accepted, beyond the RPO objective. */
  acceptDataLossMs?: number;
  /** skip of a storage fence: how the approver attests the old primary was fenced instead. */
  attestation?: string;
}

/** The data-loss window the operation reports, from the replication status (RPO). */
export interface RpoReport {
  windowMs: number;
  /** The oldest last sync of the promoted replicas, when known. */
  lastSyncTime?: string;
  /** When writes on the old primary provably stopped: where the window ends (unplanned). */
  writesStoppedAt?: string;
  /** The runbook's RPO objective (ms). */
  objectiveMs?: number;
  /** The loss an approver accepted beyond the objective (ms). */
  acceptedLossMs?: number;
  basis: string;
}

/** On the lab: the loss counted by the simulated array's write sequences. */
export interface MeasuredLoss {
  writes: number;
  /** From the last write the new primary received to the last write the old one accepted. */
  windowMs: number;
  volumes: Array<{ handle: string; claim?: string; writes: number }>;
}

export interface StepProgress {
  id: string;
  title: string;
  site: string;
  /** What an operator may do if it fails after the point of no return (absent: skippable). */
  guard?: StepGuard;
  /** The operation's point of no return. */
  pointOfNoReturn?: true;
  state: StepState;
  startedAt?: string;
  endedAt?: string;
  durationMs?: number;
  error?: string;
}

/** What an operation is, who asked and why: fixed when it starts. */
export interface OperationHeader {
  app: string;
  operation: string;
  from: string;
  to: string;
  requestedBy: string;
  reason: string;
  /** What asked for it: cli, api, alert:<rule>, schedule, or the site operation's workflow id. */
  trigger?: string;
  /** planned (no data loss) or unplanned (forced, loss reported). */
  mode: 'planned' | 'unplanned';
}

export interface OperationReport extends OperationHeader {
  outcome: Outcome;
  waiting?: Waiting;
  decisions: Decision[];
  rpo?: RpoReport;
  measuredLoss?: MeasuredLoss;
  startedAt: string;
  endedAt?: string;
  /** Trigger to verified (or to the end, if it was not verified), in ms. */
  rtoMs?: number;
  currentStep?: string;
  pointOfNoReturnPassed: boolean;
  epochBefore?: number;
  epochAfter?: number;
  steps: StepProgress[];
  error?: string;
  /** What the operator should do next, when it did not succeed. */
  suggestion?: string;
  notes: string[];
}

/** A step as the operation declares it: the catalog's entry, or a drill's own. */
export type StepDeclaration = Pick<CatalogStep, 'id' | 'title' | 'site'> & Partial<CatalogStep>;

const iso = (ms: number): string => new Date(ms).toISOString();

/** An error and its causes as one line, without repeats (ActivityFailure wraps the activity's error). */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  while (e instanceof Error) {
    parts.push(e.message);
    // Said in the operator's terms: a task no worker took is a site, or its worker, gone.
    if (e instanceof TimeoutFailure && e.timeoutType === 'SCHEDULE_TO_START') {
      parts.push("no worker took the task in time: the site, or Pivot's worker there, is down");
    }
    e = (e as { cause?: unknown }).cause;
  }
  return [...new Set(parts.filter(Boolean))].join(': ') || String(err);
}

export class OperationTracker {
  private readonly steps: StepProgress[];
  private readonly startedMs = Date.now();
  private outcome: Outcome = 'running';
  private endedMs?: number;
  private error?: string;
  private suggestion?: string;
  private waiting?: Waiting;
  private readonly notes: string[] = [];
  readonly decisions: Decision[] = [];
  pointOfNoReturnPassed = false;
  epochBefore?: number;
  epochAfter?: number;
  rpo?: RpoReport;
  measuredLoss?: MeasuredLoss;

  constructor(
    private readonly header: OperationHeader,
    steps: StepDeclaration[],
  ) {
    this.steps = steps.map((s) => ({
      id: s.id,
      title: s.title,
      site: s.site,
      ...(s.guard && s.guard !== 'skippable' ? { guard: s.guard } : {}),
      ...(s.pointOfNoReturn ? { pointOfNoReturn: true as const } : {}),
      state: 'pending',
    }));
  }

  get finished(): boolean {
    return this.endedMs !== undefined;
  }

  /** The step running now, or the failed one an operator must decide about. */
  get current(): StepProgress | undefined {
    return this.steps.find((s) => s.state === 'running' || s.state === 'failed');
  }

  private find(id: string): StepProgress {
    const s = this.steps.find((x) => x.id === id);
    if (!s) throw new Error(`unknown step ${id}`);
    return s;
  }

  /** Runs one named step, recording its state and timings. */
  async step<T>(id: string, run: () => Promise<T>): Promise<T> {
    const s = this.find(id);
    const started = Date.now();
    Object.assign(s, { state: 'running', startedAt: iso(started) });
    delete s.error;
    try {
      const result = await run();
      const ended = Date.now();
      Object.assign(s, { state: 'succeeded', endedAt: iso(ended), durationMs: ended - started });
      return result;
    } catch (err) {
      const ended = Date.now();
      Object.assign(s, {
        state: 'failed',
        endedAt: iso(ended),
        durationMs: ended - started,
        error: describeError(err),
      });
      throw err;
    }
  }

  /** Marks a failed (or pending) step skipped by an operator, with the reason recorded. */
  skip(id: string, reason: string): void {
    const s = this.find(id);
    s.state = 'skipped';
    s.error = `${s.error ? `${s.error}; ` : ''}skipped: ${reason}`;
  }

  wait(waiting: Omit<Waiting, 'since'> | undefined): void {
    if (waiting) this.waiting = { ...waiting, since: iso(Date.now()) };
    else delete this.waiting;
  }

  /** After the point of no return a failed step leaves the operation needing attention, still open. */
  needsAttention(err: unknown, suggestion: string): void {
    this.outcome = 'needs-attention';
    this.error = describeError(err);
    this.suggestion = suggestion;
  }

  resume(): void {
    this.outcome = 'running';
    delete this.error;
    delete this.suggestion;
  }

  note(text: string): void {
    this.notes.push(text);
  }

  finish(outcome: Exclude<Outcome, 'running'>, err?: unknown, suggestion?: string): void {
    this.outcome = outcome;
    this.endedMs = Date.now();
    delete this.waiting;
    if (err !== undefined) this.error = describeError(err);
    if (suggestion) this.suggestion = suggestion;
  }

  report(): OperationReport {
    const current = this.current;
    const verified = this.steps.find((s) => s.id === 'verify' && s.state === 'succeeded');
    const rtoEnd = verified?.endedAt ? Date.parse(verified.endedAt) : this.endedMs;
    return {
      ...this.header,
      outcome: this.outcome,
      ...(this.waiting ? { waiting: { ...this.waiting } } : {}),
      decisions: this.decisions.map((d) => ({ ...d })),
      ...(this.rpo ? { rpo: { ...this.rpo } } : {}),
      ...(this.measuredLoss ? { measuredLoss: this.measuredLoss } : {}),
      startedAt: iso(this.startedMs),
      ...(this.endedMs !== undefined ? { endedAt: iso(this.endedMs) } : {}),
      ...(rtoEnd !== undefined ? { rtoMs: rtoEnd - this.startedMs } : {}),
      ...(current ? { currentStep: current.id } : {}),
      pointOfNoReturnPassed: this.pointOfNoReturnPassed,
      ...(this.epochBefore !== undefined ? { epochBefore: this.epochBefore } : {}),
      ...(this.epochAfter !== undefined ? { epochAfter: this.epochAfter } : {}),
      steps: this.steps.map((s) => ({ ...s })),
      ...(this.error ? { error: this.error } : {}),
      ...(this.suggestion ? { suggestion: this.suggestion } : {}),
      notes: [...this.notes],
    };
  }
}
