/**
 * The active site and epoch written into each site (a ConfigMap per application namespace), so a
 * site can tell on its own, even cut off from the witness, whether it is the active one.
 */
import { isNotFound, serverSideApply, type SiteApi } from '../common/k8s.ts';
import type * as k8s from '@kubernetes/client-node';

export const SITE_STATE_CONFIGMAP = 'pivot-active-site';

export function createSiteStateActivities(api: SiteApi) {
  return {
    /**
     * The highest fencing epoch this site recorded for the application (0 if none): the witness
     * can never be behind it, unless it lost its data.
     */
    async recordedEpoch(namespaces: string[]): Promise<number> {
      let highest = 0;
      for (const namespace of namespaces) {
        try {
          const cm = await api.core.readNamespacedConfigMap({ name: SITE_STATE_CONFIGMAP, namespace });
          highest = Math.max(highest, Number(cm.data?.['epoch'] ?? 0) || 0);
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
      return highest;
    },

    async recordSiteState(
      app: string,
      namespaces: string[],
      activeSite: string,
      epoch: number,
    ): Promise<void> {
      for (const namespace of namespaces) {
        await serverSideApply(api, {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: {
            name: SITE_STATE_CONFIGMAP,
            namespace,
            labels: { 'app.kubernetes.io/managed-by': 'pivot' },
          },
          data: {
            app,
            activeSite,
            epoch: String(epoch),
            thisSite: api.site,
            fenced: String(activeSite !== api.site),
          },
        } as k8s.KubernetesObject);
      }
    },
  };
}
