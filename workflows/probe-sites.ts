/**
 * probeSites: asks every site's worker, on that site's own task queue, whether its Kubernetes API
 * answers. A site whose worker or API is gone is reported unreachable after the probe's
 * schedule-to-close timeout instead of blocking the caller: the same way a failover notices a
 * lost datacenter.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { SiteProbe, SiteProbeActivities } from '../activities/site-probe.ts';
import { siteTaskQueue } from '../common/task-queues.ts';
import { describeError } from './progress.ts';

export interface ProbeSitesInput {
  sites: string[];
  /** How long a site may take to answer, in ms (default 15 s). */
  timeoutMs?: number;
}

export type SiteReachability =
  ({ reachable: true } & SiteProbe) | { reachable: false; site: string; reason: string };

export async function probeSites({
  sites,
  timeoutMs = 15_000,
}: ProbeSitesInput): Promise<SiteReachability[]> {
  return Promise.all(
    sites.map(async (site): Promise<SiteReachability> => {
      const { probeSite } = proxyActivities<SiteProbeActivities>({
        taskQueue: siteTaskQueue(site),
        scheduleToCloseTimeout: timeoutMs,
        startToCloseTimeout: Math.min(timeoutMs, 10_000),
        retry: { initialInterval: 500, backoffCoefficient: 2, maximumInterval: 2_000 },
      });
      try {
        return { reachable: true, ...(await probeSite()) };
      } catch (err) {
        return { reachable: false, site, reason: describeError(err) };
      }
    }),
  );
}
