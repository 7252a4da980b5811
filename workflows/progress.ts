/**
 * Progress and reports as data: an operation's phase, its steps with state and timings, and its
 * outcome. The workflow keeps one OperationTracker; the progress query, the CLI and the final
 * report all read the same structure. Deterministic: time is the workflow's clock.
 */

export const STEP_STATES = ['pending', 'running', 'succeeded', 'failed'] as const;
export type StepState = (typeof STEP_STATES)[number];

/**
 * running; succeeded; refused (stopped before changing anything, e.g. another operation holds the
 * lock); rolled-back (failed before the point of no return, compensations ran); needs-attention
 * (failed after it: never rolled back automatically).
 */
export type Outcome = 'running' | 'succeeded' | 'refused' | 'rolled-back' | 'needs-attention';

export interface StepProgress {
  id: string;
  title: string;
  site: string;
  state: StepState;
  startedAt?: string;
  endedAt?: string;
  durationMs?: number;
  error?: string;
}

export interface OperationReport {
  app: string;
  operation: string;
  from: string;
  to: string;
  requestedBy: string;
  reason: string;
  outcome: Outcome;
  startedAt: string;
  endedAt?: string;
  /** Trigger to verified (or to the end, if it did not succeed), in ms. */
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

const iso = (ms: number): string => new Date(ms).toISOString();

/** An error and its causes as one line, without repeats (ActivityFailure wraps the activity's error). */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  while (e instanceof Error) {
    parts.push(e.message);
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
  private readonly notes: string[] = [];
  pointOfNoReturnPassed = false;
  epochBefore?: number;
  epochAfter?: number;

  constructor(
    private readonly app: string,
    private readonly operation: string,
    private readonly from: string,
    private readonly to: string,
    private readonly requestedBy: string,
    private readonly reason: string,
    steps: Array<[id: string, title: string, site: string]>,
  ) {
    this.steps = steps.map(([id, title, site]) => ({ id, title, site, state: 'pending' }));
  }

  /** Runs one named step, recording its state and timings. */
  async step<T>(id: string, run: () => Promise<T>): Promise<T> {
    const s = this.steps.find((x) => x.id === id);
    if (!s) throw new Error(`unknown step ${id}`);
    const started = Date.now();
    Object.assign(s, { state: 'running', startedAt: iso(started) });
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

  note(text: string): void {
    this.notes.push(text);
  }

  finish(outcome: Exclude<Outcome, 'running'>, err?: unknown, suggestion?: string): void {
    this.outcome = outcome;
    this.endedMs = Date.now();
    if (err !== undefined) this.error = describeError(err);
    if (suggestion) this.suggestion = suggestion;
  }

  report(): OperationReport {
    const current = this.steps.find((s) => s.state === 'running' || s.state === 'failed');
    return {
      app: this.app,
      operation: this.operation,
      from: this.from,
      to: this.to,
      requestedBy: this.requestedBy,
      reason: this.reason,
      outcome: this.outcome,
      startedAt: iso(this.startedMs),
      ...(this.endedMs !== undefined
        ? { endedAt: iso(this.endedMs), rtoMs: this.endedMs - this.startedMs }
        : {}),
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
