/**
 * Reachability of one site's Kubernetes API, as its site worker sees it: the first preflight
 * check of every operation (docs/operations.md).
 */
import * as k8s from '@kubernetes/client-node';
import { readyNodeCount, type SiteApi } from '../common/k8s.ts';
import { FAILURE, failure } from './failures.ts';

export interface SiteProbe {
  site: string;
  /** The API server's version (gitVersion). */
  serverVersion: string;
  readyNodes: number;
  checkedAt: string;
}

export function createSiteProbeActivities(api: SiteApi) {
  return {
    async probeSite(): Promise<SiteProbe> {
      try {
        const version = await api.client(k8s.VersionApi).getCode();
        const nodes = await api.core.listNode();
        const readyNodes = readyNodeCount(nodes.items);
        return {
          site: api.site,
          serverVersion: version.gitVersion,
          readyNodes,
          checkedAt: new Date().toISOString(),
        };
      } catch (err) {
        throw failure(
          FAILURE.unreachable,
          api.site,
          'Kubernetes API',
          `not reachable: ${err instanceof Error ? err.message : String(err)}`,
          'check the site, or fail over without it',
          err,
        );
      }
    },
  };
}

export type SiteProbeActivities = ReturnType<typeof createSiteProbeActivities>;
