/**
 * Traffic steps: point clients at the site that now serves, on every site (each site's clients
 * must reach the serving one). ServiceSelector targets get their selector on the serving site and
 * a selector that matches nothing elsewhere; ServiceExternalName targets get the serving site's
 * name; EndpointSlice targets (a selectorless Service) get a Pivot-managed slice with the serving
 * site's addresses; DNSEndpoint targets (external-dns) get the serving site's record targets.
 * Each is written whole, so a re-run converges.
 */
import type * as k8s from '@kubernetes/client-node';
import { CRD, mergePatch, serverSideApply, type SiteApi } from '../common/k8s.ts';
import type { TrafficTarget } from '../runbook/types.ts';
import type { Witness } from '../witness/witness.ts';
import { FAILURE, failure } from './failures.ts';
import { guardEpoch } from './guard.ts';
import type { StepContext } from './types.ts';

/** The EndpointSlice Pivot manages for a selectorless Service. */
export function endpointSliceName(service: string): string {
  return `${service}-pivot`.slice(0, 253);
}

function noAddresses(site: string, t: TrafficTarget, namespace: string, servingSite: string) {
  return failure(
    FAILURE.precondition,
    site,
    `${t.kind} ${namespace}/${t.name}`,
    `the runbook gives no address for ${servingSite}`,
    `add ${servingSite}'s addresses to the runbook's traffic target, or repoint by hand and skip the step`,
  );
}

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
        await guardEpoch(witness, ctx, api.site, `traffic target ${namespace}/${t.name}`);
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
        } else if (t.kind === 'EndpointSlice') {
          const addresses = t.addresses[servingSite] ?? [];
          if (addresses.length === 0) throw noAddresses(api.site, t, namespace, servingSite);
          await serverSideApply(api, {
            apiVersion: 'discovery.k8s.io/v1',
            kind: 'EndpointSlice',
            metadata: {
              name: endpointSliceName(t.name),
              namespace,
              labels: {
                'kubernetes.io/service-name': t.name,
                'endpointslice.kubernetes.io/managed-by': 'pivot.dev',
                'pivot.dev/serving-site': servingSite,
              },
            },
            addressType: addresses.every((a) => a.includes(':')) ? 'IPv6' : 'IPv4',
            endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
            ports: [{ name: '', port: t.port, protocol: 'TCP' }],
          } as k8s.KubernetesObject);
        } else {
          const targetsHere = t.targets[servingSite] ?? [];
          if (targetsHere.length === 0) throw noAddresses(api.site, t, namespace, servingSite);
          await serverSideApply(api, {
            apiVersion: `${CRD.dnsEndpoint.group}/${CRD.dnsEndpoint.version}`,
            kind: 'DNSEndpoint',
            metadata: {
              name: t.name,
              namespace,
              labels: { 'app.kubernetes.io/managed-by': 'pivot', 'pivot.dev/serving-site': servingSite },
            },
            spec: {
              endpoints: [
                { dnsName: t.dnsName, recordType: t.recordType, targets: targetsHere, recordTTL: 30 },
              ],
            },
          } as k8s.KubernetesObject);
        }
      }
    },
  };
}
