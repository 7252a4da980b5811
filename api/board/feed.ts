/**
 * What the board shows, pushed to every open board as server-sent events: the estate, the running
 * and recent operations with their steps, and the drills kept. One poller per API process builds
 * it every two seconds while at least one board is open (never per viewer), and sends it only when
 * it changed. Closed operations are read once and kept (their reports no longer change).
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { Logger } from '../../common/logging.ts';
import type { DrillReport } from '../../workflows/drill.ts';
import type { OperationReport } from '../../workflows/progress.ts';
import type { SiteOperationReport } from '../../workflows/site.ts';
import type { Witness } from '../../witness/witness.ts';
import { drillSummary, type AppsResponse, type DrillSummary } from '../contract.ts';

/** The workflow types that are operations a person follows (not alert triggers, schedules, probes). */
export const OPERATION_TYPES = new Set([
  'switchover',
  'failback',
  'failover',
  'reprotect',
  'siteSwitchover',
  'siteFailover',
  'drill',
  'switchoverDrill',
]);

/** At most this many running operations are shown with their steps (a site operation's children beyond are counted). */
export const MAX_RUNNING = 60;
/** The most recent closed operations shown. */
export const MAX_RECENT = 20;
/** How far back recent operations go. */
const RECENT_MS = 24 * 3600_000;
const TICK_MS = 2000;

export interface BoardOperation {
  workflowId: string;
  runId: string;
  type: string;
  running: boolean;
  startedAt: string;
  closedAt?: string;
  /** The operation's workflow in the Temporal web UI, when configured. */
  temporalUrl?: string;
  report?: OperationReport | SiteOperationReport;
  /** Why the report could not be read (e.g. no worker answered its query). */
  unreadable?: string;
}

export interface BoardState {
  observedAt: string;
  estate: AppsResponse;
  operations: BoardOperation[];
  /** Running operations beyond MAX_RUNNING, not shown one by one. */
  moreRunning: number;
  drills: DrillSummary[];
}

export interface FeedDeps {
  client: Client;
  witness: Witness;
  estate: () => Promise<AppsResponse>;
  temporalUiUrl?: string;
  log: Logger;
}

export class BoardFeed {
  private readonly subscribers = new Set<(state: BoardState) => void>();
  private readonly closed = new Map<string, BoardOperation>();
  private timer: NodeJS.Timeout | undefined;
  private last: { json: string; state: BoardState } | undefined;
  private building: Promise<BoardState> | undefined;

  constructor(private readonly deps: FeedDeps) {}

  /** Calls `send` with the current state at once, then whenever it changes; returns the unsubscribe. */
  subscribe(send: (state: BoardState) => void): () => void {
    this.subscribers.add(send);
    if (this.last) send(this.last.state);
    this.timer ??= setInterval(() => void this.tick(), TICK_MS);
    void this.tick();
    return () => {
      this.subscribers.delete(send);
      if (this.subscribers.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
        this.last = undefined;
      }
    };
  }

  /** The state now, shared by concurrent callers. */
  snapshot(): Promise<BoardState> {
    this.building ??= this.build().finally(() => (this.building = undefined));
    return this.building;
  }

  private async tick(): Promise<void> {
    try {
      const state = await this.snapshot();
      const json = JSON.stringify({ ...state, observedAt: undefined });
      if (json === this.last?.json) return;
      this.last = { json, state };
      for (const send of this.subscribers) send(state);
    } catch (err) {
      this.deps.log.warn({ err: String(err) }, 'the board could not be refreshed');
    }
  }

  private async build(): Promise<BoardState> {
    const [estate, listed, drills] = await Promise.all([
      this.deps.estate(),
      this.listOperations(),
      this.deps.witness.drills(100),
    ]);
    return {
      observedAt: new Date().toISOString(),
      estate,
      ...listed,
      drills: drills.map((json) => drillSummary(JSON.parse(json) as DrillReport)),
    };
  }

  private async listOperations(): Promise<{ operations: BoardOperation[]; moreRunning: number }> {
    const since = new Date(Date.now() - RECENT_MS).toISOString();
    const running: WorkflowExecutionInfo[] = [];
    const recent: WorkflowExecutionInfo[] = [];
    let moreRunning = 0;
    const query = `ExecutionStatus = "Running" OR CloseTime > "${since}"`;
    for await (const info of this.deps.client.workflow.list({ query, pageSize: 200 })) {
      if (!OPERATION_TYPES.has(info.type)) continue;
      if (info.status.name === 'RUNNING') {
        if (running.length < MAX_RUNNING) running.push(info);
        else moreRunning += 1;
      } else if (recent.length < MAX_RECENT) {
        recent.push(info);
      }
    }
    recent.sort((a, b) => (b.closeTime?.getTime() ?? 0) - (a.closeTime?.getTime() ?? 0));
    const operations = await Promise.all([
      ...running.map((info) => this.read(info)),
      ...recent.map((info) => this.read(info)),
    ]);
    // Forget closed operations no longer listed.
    const listed = new Set(recent.map((i) => `${i.workflowId}/${i.runId}`));
    for (const key of this.closed.keys()) if (!listed.has(key)) this.closed.delete(key);
    return { operations, moreRunning };
  }

  private async read(info: WorkflowExecutionInfo): Promise<BoardOperation> {
    const key = `${info.workflowId}/${info.runId}`;
    const kept = this.closed.get(key);
    if (kept) return kept;
    const running = info.status.name === 'RUNNING';
    const ui = this.deps.temporalUiUrl?.replace(/\/+$/, '');
    const op: BoardOperation = {
      workflowId: info.workflowId,
      runId: info.runId,
      type: info.type,
      running,
      startedAt: info.startTime.toISOString(),
      ...(info.closeTime ? { closedAt: info.closeTime.toISOString() } : {}),
      ...(ui
        ? {
            temporalUrl: `${ui}/namespaces/${encodeURIComponent(this.deps.client.options.namespace)}/workflows/${encodeURIComponent(info.workflowId)}/${encodeURIComponent(info.runId)}`,
          }
        : {}),
    };
    const handle = this.deps.client.workflow.getHandle(info.workflowId, info.runId);
    try {
      op.report =
        info.status.name === 'COMPLETED'
          ? ((await handle.result()) as OperationReport | SiteOperationReport)
          : await handle.query<OperationReport | SiteOperationReport>('progress');
    } catch (err) {
      op.unreadable = err instanceof Error ? err.message : String(err);
    }
    if (!running && op.report) this.closed.set(key, op);
    return op;
  }
}
