/**
 * The fencing epoch is checked at each write, not only when a step starts (hole 14 of the safety
 * review; docs/safety.md, invariant 5). A scale-up starts its workloads one start-order group at a
 * time and waits for each group to be Ready: another operation that moves the epoch on while it
 * waits must stop it before it starts the next group.
 */
import type * as k8s from '@kubernetes/client-node';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Redis } from 'ioredis';
import { FAILURE } from '../../activities/failures.ts';
import type { WorkloadRef } from '../../activities/types.ts';
import { createWorkloadActivities } from '../../activities/workloads.ts';
import { mergePatch } from '../../common/k8s.ts';
import { waitUntil } from '../../common/wait.ts';
import { Witness } from '../../witness/witness.ts';
import { deleteNamespace, site, status, uniqueName } from './helpers.ts';

const dcA = site('dc-a');
const ns = uniqueName('epoch-guard');
const app = ns;
let redis: Redis;
let witness: Witness;

/** No node of the lab carries this label: a pod that asks for it stays Pending. */
const NOWHERE = { 'pivot.dev/test-node': 'nowhere' };

/** A Deployment at 0 replicas; an unschedulable one's pods stay Pending until the test lets them run. */
function deployment(name: string, schedulable: boolean): k8s.V1Deployment {
  const labels = { 'app.kubernetes.io/name': name };
  return {
    metadata: { name, namespace: ns, labels },
    spec: {
      replicas: 0,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          ...(schedulable ? {} : { nodeSelector: NOWHERE }),
          containers: [{ name, image: 'busybox' }],
        },
      },
    },
  };
}

const workloads: WorkloadRef[] = [
  { kind: 'Deployment', namespace: ns, name: 'first', startOrder: 1 },
  { kind: 'Deployment', namespace: ns, name: 'second', startOrder: 2 },
];

async function replicas(name: string): Promise<number> {
  return (await dcA.apps.readNamespacedDeployment({ name, namespace: ns })).spec?.replicas ?? 0;
}

beforeAll(async () => {
  redis = new Redis((await status()).redis.url, { maxRetriesPerRequest: 1 });
  witness = new Witness(redis, { prefix: uniqueName('epoch-guard') });
  await dcA.core.createNamespace({ body: { metadata: { name: ns } } });
  // The first group cannot become Ready until the test lets it: the step waits there.
  await dcA.apps.createNamespacedDeployment({ namespace: ns, body: deployment('first', false) });
  await dcA.apps.createNamespacedDeployment({ namespace: ns, body: deployment('second', true) });
});

afterAll(async () => {
  await deleteNamespace(dcA, ns);
  await redis?.quit();
});

describe('the fencing epoch', () => {
  it('stops a step at its first write after another operation moved the epoch on', async () => {
    const epoch = await witness.advanceEpoch(app, {
      expectEpoch: 0,
      activeSite: 'dc-a',
      actor: 'test',
      reason: 'initial',
    });
    const ctx = { app, operationId: 'op-stale', epoch };
    const step = new MockActivityEnvironment().run(() =>
      createWorkloadActivities(dcA, witness, 100).scaleUpWorkloads(ctx, workloads, {
        [`Deployment/${ns}/first`]: 1,
        [`Deployment/${ns}/second`]: 1,
      }),
    );
    const outcome = step.then(
      () => 'completed',
      (err: unknown) => err,
    );
    await waitUntil('the first group to be scaled up', async () => (await replicas('first')) === 1);

    // Another operation takes over the application while the step waits for the first group.
    await witness.advanceEpoch(app, {
      expectEpoch: epoch,
      activeSite: 'dc-b',
      actor: 'op-other',
      reason: 'failover',
    });
    await dcA.apps.patchNamespacedDeployment(
      {
        name: 'first',
        namespace: ns,
        body: { spec: { template: { spec: { nodeSelector: null } } } },
      },
      mergePatch,
    );

    const err = await outcome;
    expect(err).toMatchObject({ type: FAILURE.staleEpoch });
    expect(await replicas('second')).toBe(0);
  });
});
