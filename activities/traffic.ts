/**
 * Traffic steps: point clients at the site that now serves. ServiceSelector targets get their
 * selector on the serving site and a selector that matches nothing elsewhere; ServiceExternalName
 * targets get the serving site's name. (EndpointSlice and DNSEndpoint targets are planned but not
 * yet executed: the step refuses them with a clear message rather than pretending.)
 */
import { mergePatch, type SiteApi } from '../common/k8s.ts';
import type { TrafficTarget } from '../runbook/types.ts';
import type { Witness } from '../witness/witness.ts';
import { FAILURE, failure } from './failures.ts';
import { guardEpoch } from './guard.ts';
import type { StepContext } from './types.ts';

/** A selector that matches no pod: what a standby site's Services carry. */
export const STANDBY_SELECTOR = { 'pivot.dev/standby': 'true' };

export function createTrafficActivities(api: SiteApi, witness: Witness) {
  return {
    /** `serving`: this site serves the application now (true) or stands by (false). */
    async pointTraffic(
      ctx: StepContext,
      targets: TrafficTarget[],
      defaultNamespace: string,
      serving: boolean,
      servingSite: string,
    ): Promise<void> {
      await guardEpoch(witness, ctx, api.site, 'traffic');
      for (const t of targets) {
        const namespace = t.namespace ?? defaultNamespace;
        if (t.kind === 'ServiceSelector') {
          // A merge patch merges selectors; replace the whole selector with a JSON patch instead.
          await api.core.patchNamespacedService({
            name: t.name,
            namespace,
            body: [{ op: 'replace', path: '/spec/selector', value: serving ? t.selector : STANDBY_SELECTOR }],
          });
        } else if (t.kind === 'ServiceExternalName') {
          await api.core.patchNamespacedService(
            {
              name: t.name,
              namespace,
              body: { spec: { type: 'ExternalName', externalName: t.externalNames[servingSite] } },
            },
            mergePatch,
          );
        } else {
          throw failure(
            FAILURE.precondition,
            api.site,
            `${t.kind} ${namespace}/${t.name}`,
            `repointing ${t.kind} targets is not implemented yet`,
            'repoint it by hand, then skip the step',
          );
        }
      }
    },
  };
}
