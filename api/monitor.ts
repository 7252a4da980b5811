/**
 * The API's background refresh of the status gauges, so that Prometheus sees replication lag,
 * reachability and stuck operations whether or not anyone calls /v1/apps or opens the board, and a
 * scrape reads only what is already computed (no site, witness or Temporal call per scrape).
 * Every 15 s: the sites' reachability from the shared snapshot, the witness and Temporal answering,
 * the estate (lag against the RPO objective per application) and the running operations.
 */
import type { Client } from '@temporalio/client';
import type { Redis } from 'ioredis';
import type { Logger } from '../common/logging.ts';
import type { PivotConfig } from '../config/types.ts';
import type { Inputs } from '../planner/inputs.ts';
import type { BoardFeed } from './board/feed.ts';
import type { ApiMetrics } from './metrics.ts';
import type { DrillSummary } from './contract.ts';

export const MONITOR_EVERY_MS = 15_000;

export interface MonitorDeps {
  config: PivotConfig;
  client: Client;
  redis: Redis;
  status: () => Promise<Inputs>;
  feed: BoardFeed;
  metrics: ApiMetrics;
  log: Logger;
  /** The kept drills for the drill gauges, read here so that a scrape reads no witness. */
  drills?: () => Promise<DrillSummary[]>;
}

export class StatusMonitor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly deps: MonitorDeps) {}

  start(everyMs = MONITOR_EVERY_MS): void {
    this.timer ??= setInterval(() => void this.refresh(), everyMs);
    void this.refresh();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One refresh; concurrent callers share it. */
  refresh(): Promise<void> {
    this.running ??= this.once().finally(() => (this.running = undefined));
    return this.running;
  }

  private async once(): Promise<void> {
    const { config, client, redis, status, feed, metrics, log } = this.deps;
    const [witnessUp, temporalUp] = await Promise.all([
      redis.ping().then(
        () => true,
        () => false,
      ),
      client.workflowService.getSystemInfo({}).then(
        () => true,
        () => false,
      ),
    ]);
    metrics.dependency('witness', witnessUp);
    metrics.dependency('temporal', temporalUp);
    if (witnessUp && this.deps.drills) {
      await this.deps
        .drills()
        .then((d) => metrics.drills(d))
        .catch((err: unknown) => log.warn({ err }, 'could not read the kept drills for their gauges'));
    }
    try {
      const inputs = await status();
      for (const site of config.sites)
        metrics.site(site.name, inputs.live.sites[site.name]?.reachable ?? false);
      if (!witnessUp || !temporalUp) return;
      // The board's state holds the estate (which sets the lag gauges) and the running operations.
      const board = await feed.snapshot();
      const now = Date.now();
      const ops = new Map<
        string,
        { operation: string; app: string; ageSeconds: number; waiting: string; needsAttention: boolean }
      >();
      for (const op of board.operations.filter((o) => o.running)) {
        const r = op.report;
        const app = r && 'app' in r ? r.app : op.workflowId;
        const waiting =
          r && 'waiting' in r && r.waiting
            ? r.waiting.for
            : r?.outcome === 'waiting-approval'
              ? 'approval'
              : 'none';
        ops.set(op.workflowId, {
          operation: r?.operation ?? op.type,
          app,
          ageSeconds: (now - Date.parse(op.startedAt)) / 1000,
          waiting,
          needsAttention: r?.outcome === 'needs-attention',
        });
        // A site operation's report names its applications that need attention, shown or not.
        if (r && 'apps' in r) {
          for (const a of r.apps.filter((x) => x.outcome === 'needs-attention')) {
            const existing = [...ops.values()].find((o) => o.app === a.app);
            if (existing) existing.needsAttention = true;
            else
              ops.set(a.workflowId, {
                operation: r.operation,
                app: a.app,
                ageSeconds: a.startedAt ? (now - Date.parse(a.startedAt)) / 1000 : 0,
                waiting: 'decision',
                needsAttention: true,
              });
          }
        }
      }
      metrics.operationsRunning([...ops.values()]);
      metrics.statusRefreshed(now);
    } catch (err) {
      log.warn({ err: String(err) }, 'the status gauges could not be refreshed');
    }
  }
}
