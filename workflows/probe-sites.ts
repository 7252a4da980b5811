/**
 * probeSites: asks every site's worker, on that site's own task queue, whether its Kubernetes API
 * answers. A site whose worker or API is gone is reported unreachable after the probe's
 * schedule-to-close timeout instead of blocking the caller: the same way a failover notices a
 * lost datacenter.
 */
import { ActivityFailure, TimeoutFailure, proxyActivities } from '@temporalio/workflow';
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
        // A site's worker lives with the site: no pickup at all means the site is gone.
        const silent = err instanceof ActivityFailure && err.cause instanceof TimeoutFailure;
        return {
          reachable: false,
          site,
          reason: silent
            ? `${site}: no answer within ${timeoutMs / 1000} s: the site, or its Pivot worker, is down`
            : describeError(err),
        };
      }
    }),
  );
}
