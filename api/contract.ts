/**
 * The shapes the API answers with (api/openapi.yaml is their documentation; the lab tests check
 * every response against it). The server (api/app.ts) builds them and the CLI (cli/api-client.ts)
 * reads them, so both sides compile against the same types.
 */
import type { Plan } from '../planner/plan.ts';
import type { DrillReport } from '../workflows/drill.ts';
import type { OperationReport } from '../workflows/progress.ts';
import type { SiteOperationReport } from '../workflows/site.ts';
import type { AppOperation, StartedOperation } from './operations.ts';

/**
 * The most applications a site operation moves at once within a wave, and how many unless asked.
 * A datacenter's loss moves every application: two at a time (the first default), a wave of a
 * hundred takes fifty rounds of a whole application's RTO. Twenty at a time keeps a wave's load on
 * a site's API server below what the benchmark ran at (34 at once, docs/performance.md); an on-call
 * engineer may ask for more.
 */
export const MAX_CONCURRENCY = 500;
export const DEFAULT_CONCURRENCY = 20;

export interface AppStatus {
  app: string;
  activeSite: string | null;
  epoch: number;
  fencedSites: string[];
  /** The workflow id holding the application's lock, if any. */
  operationRunning: string | null;
  replicationLagMs: number | null;
  rpoObjectiveMs: number;
  withinRpo: boolean;
  drift: { errors: number; warnings: number };
}

export interface AppsResponse {
  apps: AppStatus[];
  /** When both sites were read: a snapshot every caller shares, at most 10 s old. */
  observedAt: string;
}

export interface OperationRequestBody {
  operation: AppOperation | 'drill';
  apps?: string[];
  site?: string;
  to?: string;
  reason: string;
  dryRun?: boolean;
  /** Site operations: applications moved at once within a wave (1 to MAX_CONCURRENCY, default DEFAULT_CONCURRENCY). */
  concurrency?: number;
  /** Drills: on clones (default), or a real switchover and failback (needs approval). */
  mode?: 'clone' | 'switchover';
}

export interface DryRunResponse {
  dryRun: true;
  plan: Plan;
}

export interface StartedResponse {
  operations: StartedOperation[];
  refused: Plan['refused'];
}

export type AnyReport = OperationReport | SiteOperationReport;

export interface OperationResponse {
  /** The operation is still under way (the report is its progress so far). */
  running: boolean;
  report: AnyReport;
}

export interface DecisionBody {
  reason?: string;
  step?: string;
  /** approve: the data loss accepted beyond the RPO objective, a duration ("2m") or "unbounded". */
  acceptDataLoss?: string;
  /** skip of a storage fence (approvers only): how the old primary was fenced instead. */
  attestation?: string;
}

export interface DecisionResponse {
  report: AnyReport;
}

export interface ErrorBody {
  error: string;
  message: string;
  hint?: string;
  plan?: Plan;
}

/** The User-Agent the CLI sends: the API records such operations as triggered by `cli`. */
export const CLI_USER_AGENT = 'pivot-cli/1';

/** A kept drill, in a list. */
export interface DrillSummary {
  id: string;
  app: string;
  site: string;
  outcome: string;
  verdict: 'pass' | 'fail';
  reasons: string[];
  startedAt: string;
  endedAt?: string;
  achieved: { rtoMs?: number; rpoMs?: number };
  objectives: { rtoMs: number; rpoMs: number };
}

export function drillSummary(r: DrillReport): DrillSummary {
  return {
    id: r.drill.id,
    app: r.app,
    site: r.drill.site,
    outcome: r.outcome,
    verdict: r.drill.verdict,
    reasons: r.drill.reasons,
    startedAt: r.startedAt,
    ...(r.endedAt ? { endedAt: r.endedAt } : {}),
    achieved: r.drill.achieved,
    objectives: r.drill.objectives,
  };
}

export interface DrillsResponse {
  drills: DrillSummary[];
}

export interface DrillResponse {
  report: DrillReport;
}
