/**
 * Every traffic kind of the runbook format, repointed on both lab sites through their own APIs:
 * ServiceSelector, ServiceExternalName, EndpointSlice (a selectorless Service) and DNSEndpoint
 * (external-dns), there and back; and a target without the serving site's address refused.
 */
import * as k8s from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { CRD, type SiteApi } from '../../common/k8s.ts';
import { createTrafficActivities, endpointSliceName, STANDBY_SELECTOR } from '../../activities/traffic.ts';
import type { TrafficTarget } from '../../runbook/types.ts';
import { Witness } from '../../witness/witness.ts';
import { deleteNamespace, site, status, uniqueName } from './helpers.ts';

const ns = uniqueName('traffic');
const sites: Record<string, SiteApi> = { 'dc-a': site('dc-a'), 'dc-b': site('dc-b') };
let redis: Redis;
let witness: Witness;

const targets: TrafficTarget[] = [
  { kind: 'ServiceSelector', name: 'web', selector: { app: 'web' } },
  {
    kind: 'ServiceExternalName',
    name: 'db',
    externalNames: { 'dc-a': 'db.dc-a.example', 'dc-b': 'db.dc-b.example' },
  },
  {
    kind: 'EndpointSlice',
    name: 'legacy',
    port: 8443,
    addresses: { 'dc-a': ['10.10.1.5', '10.10.1.6'], 'dc-b': ['10.20.1.5'] },
  },
  {
    kind: 'DNSEndpoint',
    name: 'orders-dns',
    dnsName: 'orders.bank.example',
    recordType: 'A',
    targets: { 'dc-a': ['192.0.2.10'], 'dc-b': ['198.51.100.10'] },
  },
];

beforeAll(async () => {
  redis = new Redis((await status()).redis.url, { maxRetriesPerRequest: 1 });
  witness = new Witness(redis, { prefix: uniqueName('traffic') });
  for (const api of Object.values(sites)) {
    await api.core.createNamespace({ body: { metadata: { name: ns } } });
    const services: Array<[string, k8s.V1ServiceSpec]> = [
      ['web', { selector: { app: 'web' }, ports: [{ port: 80 }] }],
      ['db', { type: 'ExternalName', externalName: 'placeholder.example' }],
      ['legacy', { ports: [{ port: 8443 }] }],
    ];
    for (const [name, spec] of services) {
      await api.core.createNamespacedService({ namespace: ns, body: { metadata: { name }, spec } });
    }
  }
});

afterAll(async () => {
  for (const api of Object.values(sites)) await deleteNamespace(api, ns);
  await redis?.quit();
});

async function point(servingSite: string): Promise<void> {
  const ctx = { app: 'traffic-test', operationId: 'test', epoch: 0 };
  for (const [name, api] of Object.entries(sites)) {
    await createTrafficActivities(api, witness).pointTraffic(
      ctx,
      targets,
      ns,
      name === servingSite,
      servingSite,
    );
  }
}

async function expectPointingAt(servingSite: string, addresses: string[], dns: string[]): Promise<void> {
  for (const [name, api] of Object.entries(sites)) {
    const web = await api.core.readNamespacedService({ name: 'web', namespace: ns });
    expect(web.spec?.selector).toEqual(name === servingSite ? { app: 'web' } : STANDBY_SELECTOR);
    const db = await api.core.readNamespacedService({ name: 'db', namespace: ns });
    expect(db.spec?.externalName).toBe(`db.${servingSite}.example`);
    const slice = await api.kubeConfig
      .makeApiClient(k8s.DiscoveryV1Api)
      .readNamespacedEndpointSlice({ name: endpointSliceName('legacy'), namespace: ns });
    expect(slice.metadata?.labels?.['kubernetes.io/service-name']).toBe('legacy');
    expect(slice.endpoints.flatMap((e) => e.addresses)).toEqual(addresses);
    expect(slice.ports?.[0]?.port).toBe(8443);
    const record = (await api.custom.getNamespacedCustomObject({
      ...CRD.dnsEndpoint,
      namespace: ns,
      name: 'orders-dns',
    })) as {
      spec: { endpoints: Array<{ dnsName: string; recordType: string; targets: string[] }> };
    };
    expect(record.spec.endpoints).toEqual([
      expect.objectContaining({ dnsName: 'orders.bank.example', recordType: 'A', targets: dns }),
    ]);
  }
}

describe('traffic repointing', () => {
  it('points every kind at dc-b, then back at dc-a', async () => {
    await point('dc-b');
    await expectPointingAt('dc-b', ['10.20.1.5'], ['198.51.100.10']);
    await point('dc-a');
    await expectPointingAt('dc-a', ['10.10.1.5', '10.10.1.6'], ['192.0.2.10']);
  });

  it('refuses a target that has no address for the serving site, naming it', async () => {
    const ctx = { app: 'traffic-test', operationId: 'test', epoch: 0 };
    const partial: TrafficTarget[] = [
      { kind: 'EndpointSlice', name: 'legacy', port: 8443, addresses: { 'dc-a': ['10.10.1.5'] } },
    ];
    await expect(
      createTrafficActivities(sites['dc-b']!, witness).pointTraffic(ctx, partial, ns, true, 'dc-b'),
    ).rejects.toThrow(/the runbook gives no address for dc-b/);
  });
});
