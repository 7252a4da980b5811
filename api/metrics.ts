/**
 * The API's Prometheus metrics (prom-client), units in their names: requests and their duration,
 * operations started by type and trigger, replication lag against the RPO objective per
 * application, the last drill per application (read from the kept evidence at each scrape), and
 * the process's own figures.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DrillSummary } from './contract.ts';

export class ApiMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'pivot_api_requests_total',
    help: 'API requests by method, route and status code',
    labelNames: ['method', 'route', 'code'],
    registers: [this.registry],
  });
  private readonly requestSeconds = new Histogram({
    name: 'pivot_api_request_duration_seconds',
    help: 'API request duration',
    labelNames: ['method', 'route'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly operations = new Counter({
    name: 'pivot_operations_requested_total',
    help: 'Operations requested, by workflow type, trigger, and whether the request attached to a running one',
    labelNames: ['type', 'trigger', 'attached'],
    registers: [this.registry],
  });
  private readonly lagSeconds = new Gauge({
    name: 'pivot_replication_lag_seconds',
    help: 'Replication lag of the application (oldest replica last sync), when last observed',
    labelNames: ['app'],
    registers: [this.registry],
  });
  private readonly rpoObjectiveSeconds = new Gauge({
    name: 'pivot_rpo_objective_seconds',
    help: "The application's RPO objective from its runbook",
    labelNames: ['app'],
    registers: [this.registry],
  });

  private readonly deliveries = new Counter({
    name: 'pivot_alert_deliveries_total',
    help: 'Alert hook deliveries by source and outcome (routed, unmatched, or the refusal)',
    labelNames: ['source', 'outcome'],
    registers: [this.registry],
  });

  // Refreshed in the background by api/monitor.ts, never by a scrape.
  private readonly siteReachable = new Gauge({
    name: 'pivot_site_reachable',
    help: "1 if the site's Kubernetes API answered Pivot's last read of it, else 0",
    labelNames: ['site'],
    registers: [this.registry],
  });
  private readonly dependencyUp = new Gauge({
    name: 'pivot_dependency_up',
    help: '1 if the dependency (witness, temporal) answered the last check, else 0',
    labelNames: ['dependency'],
    registers: [this.registry],
  });
  private readonly running = new Gauge({
    name: 'pivot_operations_running',
    help: 'Operations running now, by operation',
    labelNames: ['operation'],
    registers: [this.registry],
  });
  private readonly operationAge = new Gauge({
    name: 'pivot_operation_age_seconds',
    help: 'How long each running operation has run, with what it waits for (none, approval, decision)',
    labelNames: ['operation', 'app', 'waiting'],
    registers: [this.registry],
  });
  private readonly attention = new Gauge({
    name: 'pivot_operation_needs_attention',
    help: '1 for each running operation that failed past its point of no return and waits for a person',
    labelNames: ['operation', 'app'],
    registers: [this.registry],
  });
  private readonly refreshed = new Gauge({
    name: 'pivot_status_refresh_timestamp_seconds',
    help: 'When the background refresh of these status gauges last completed (Unix time)',
    registers: [this.registry],
  });

  /**
   * The kept drills the drill gauges show, as the status monitor last read them (api/monitor.ts):
   * a scrape reads no witness.
   */
  private drillSummaries: DrillSummary[] = [];

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'pivot_api_' });
    const perApp = (name: string, help: string, pick: (latest: DrillSummary[]) => number | undefined) => {
      const source = () => this.drillSummaries;
      return new Gauge({
        name,
        help,
        labelNames: ['app'],
        registers: [this.registry],
        collect() {
          this.reset();
          const drills = source();
          for (const app of new Set(drills.map((d) => d.app))) {
            const value = pick(drills.filter((d) => d.app === app)); // newest first
            if (value !== undefined) this.set({ app }, value);
          }
        },
      });
    };
    const seconds = (iso: string | undefined) => (iso ? Date.parse(iso) / 1000 : undefined);
    perApp(
      'pivot_drill_last_success_timestamp_seconds',
      'When the last passing drill of the application ended (Unix time)',
      (ds) => seconds(ds.find((d) => d.verdict === 'pass')?.endedAt),
    );
    perApp(
      'pivot_drill_last_run_timestamp_seconds',
      'When the last drill of the application ended, whatever its verdict (Unix time)',
      (ds) => seconds(ds[0]?.endedAt),
    );
    perApp('pivot_drill_last_passed', '1 if the last drill of the application passed, else 0', (ds) =>
      ds[0] ? (ds[0].verdict === 'pass' ? 1 : 0) : undefined,
    );
    perApp(
      'pivot_drill_last_rto_seconds',
      'The would-be RTO the last drill of the application measured',
      (ds) => (ds[0]?.achieved.rtoMs !== undefined ? ds[0].achieved.rtoMs / 1000 : undefined),
    );
  }

  /** The kept drills, newest first, as the status monitor read them. */
  drills(summaries: DrillSummary[]): void {
    this.drillSummaries = summaries;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  request(method: string, route: string, code: number, seconds: number): void {
    this.requests.inc({ method, route, code: String(code) });
    this.requestSeconds.observe({ method, route }, seconds);
  }

  started(type: string, trigger: string, attached: boolean): void {
    this.operations.inc({ type, trigger, attached: String(attached) });
  }

  delivery(source: string, outcome: string): void {
    this.deliveries.inc({ source, outcome });
  }

  site(site: string, reachable: boolean): void {
    this.siteReachable.set({ site }, reachable ? 1 : 0);
  }

  dependency(dependency: 'witness' | 'temporal', up: boolean): void {
    this.dependencyUp.set({ dependency }, up ? 1 : 0);
  }

  /** The running operations, replacing the previous set (an ended one leaves no series behind). */
  operationsRunning(
    ops: Array<{
      operation: string;
      app: string;
      ageSeconds: number;
      waiting: string;
      needsAttention: boolean;
    }>,
  ): void {
    this.running.reset();
    this.operationAge.reset();
    this.attention.reset();
    for (const op of ops) {
      this.running.inc({ operation: op.operation });
      this.operationAge.set({ operation: op.operation, app: op.app, waiting: op.waiting }, op.ageSeconds);
      if (op.needsAttention) this.attention.set({ operation: op.operation, app: op.app }, 1);
    }
  }

  statusRefreshed(at: number): void {
    this.refreshed.set(at / 1000);
  }

  lag(app: string, lagSeconds: number, rpoSeconds: number): void {
    this.lagSeconds.set({ app }, lagSeconds);
    this.rpoObjectiveSeconds.set({ app }, rpoSeconds);
  }
}
