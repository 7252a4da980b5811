/**
 * Reachability of one site's Kubernetes API, as its site worker sees it: the first preflight
 * check of every operation (DESIGN.md section 2, step 1).
 */
import * as k8s from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import type { SiteApi } from '../common/k8s.ts';

export interface SiteProbe {
  site: string;
  /** The API server's version (gitVersion). */
  serverVersion: string;
  readyNodes: number;
  checkedAt: string;
}

/** Error types the activities raise, set explicitly so that retry policies can name them. */
export const SITE_ERRORS = {
  /** The site's API did not answer (connection refused, timeout, TLS failure). Retryable. */
  unreachable: 'SiteUnreachable',
} as const;

export function createSiteProbeActivities(api: SiteApi) {
  return {
    async probeSite(): Promise<SiteProbe> {
      try {
        const version = await api.kubeConfig.makeApiClient(k8s.VersionApi).getCode();
        const nodes = await api.core.listNode();
        const readyNodes = nodes.items.filter((n) =>
          n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        ).length;
        return {
          site: api.site,
          serverVersion: version.gitVersion,
          readyNodes,
          checkedAt: new Date().toISOString(),
        };
      } catch (err) {
        throw ApplicationFailure.create({
          type: SITE_ERRORS.unreachable,
          message: `site ${api.site}: Kubernetes API not reachable: ${err instanceof Error ? err.message : String(err)}`,
          details: [{ site: api.site, next: 'check the site, or fail over without it' }],
          cause: err instanceof Error ? err : undefined,
        });
      }
    },
  };
}

export type SiteProbeActivities = ReturnType<typeof createSiteProbeActivities>;
