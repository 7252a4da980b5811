/**
 * What `lab up` installs on the sites: our CRDs (lab/crds), the simulated array's driver and
 * classes (seed/site-storage.yaml), and the sample application `orders` (seed/orders.yaml), active
 * on dc-a with every volume replicated to dc-b, where the namespace stands by at 0 replicas with
 * secondary VolumeReplications.
 */
import * as k8s from '@kubernetes/client-node';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CRD, serverSideApply, type SiteApi } from '../common/k8s.ts';
import { waitUntil } from '../common/wait.ts';
import { REPO_ROOT } from './layout.ts';

const SEED_DIR = join(REPO_ROOT, 'lab', 'seed');
const CRD_DIR = join(REPO_ROOT, 'lab', 'crds');

export const SAMPLE_APP = {
  namespace: 'orders',
  /** The claims the StatefulSets' templates create on the active site. */
  claims: ['data-mysql-0', 'data-mysql-1', 'data-mysql-2', 'data-redis-0'],
  workloads: [
    { kind: 'StatefulSet', name: 'mysql', replicas: 3 },
    { kind: 'StatefulSet', name: 'redis', replicas: 1 },
    { kind: 'Deployment', name: 'orders-api', replicas: 2 },
  ],
} as const;

/**
 * Parses manifests into the client's typed models (loadAllYaml), not plain objects: the client
 * serializes known kinds through their models, which would drop keys it does not recognise, such
 * as a CRD schema's `x-kubernetes-*` extensions in their YAML spelling.
 */
export function loadManifests(file: string): k8s.KubernetesObject[] {
  return (k8s.loadAllYaml(readFileSync(file, 'utf8')) as Array<k8s.KubernetesObject | null>).filter(
    (o): o is k8s.KubernetesObject => !!o,
  );
}

export async function apply(api: SiteApi, objects: k8s.KubernetesObject[]): Promise<void> {
  for (const obj of objects) await serverSideApply(api, obj);
}

export async function installCrds(api: SiteApi): Promise<void> {
  const crds = readdirSync(CRD_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => loadManifests(join(CRD_DIR, f)));
  await apply(api, crds);
  const ext = api.kubeConfig.makeApiClient(k8s.ApiextensionsV1Api);
  for (const crd of crds) {
    const name = crd.metadata!.name!;
    await waitUntil(
      `CRD ${name} to be established on ${api.site}`,
      async () => {
        const got = await ext.readCustomResourceDefinition({ name });
        return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
      },
      { timeoutMs: 60_000 },
    );
  }
}

export async function installSiteStorage(api: SiteApi): Promise<void> {
  await apply(api, loadManifests(join(SEED_DIR, 'site-storage.yaml')));
}

function withReplicas(objects: k8s.KubernetesObject[], replicas: number | undefined): k8s.KubernetesObject[] {
  if (replicas === undefined) return objects;
  return objects.map((o) =>
    o.kind === 'StatefulSet' || o.kind === 'Deployment'
      ? ({ ...o, spec: { ...(o as { spec: object }).spec, replicas } } as k8s.KubernetesObject)
      : o,
  );
}

function volumeReplication(
  namespace: string,
  partOf: string,
  claim: string,
  state: 'primary' | 'secondary',
  handle?: string,
): k8s.KubernetesObject {
  return {
    apiVersion: `${CRD.volumeReplication.group}/${CRD.volumeReplication.version}`,
    kind: 'VolumeReplication',
    metadata: { name: claim, namespace, labels: { 'app.kubernetes.io/part-of': partOf } },
    spec: {
      volumeReplicationClass: 'sim-replication',
      replicationState: state,
      dataSource: { kind: 'PersistentVolumeClaim', name: claim },
      autoResync: false,
      ...(handle ? { replicationHandle: handle } : {}),
    },
  } as k8s.KubernetesObject;
}

export interface ReplicatedApp {
  namespace: string;
  /** The app.kubernetes.io/part-of label of its objects. */
  partOf: string;
  objects: k8s.KubernetesObject[];
  /** The claims to replicate (each gets a VolumeReplication named after it). */
  claims: string[];
}

/**
 * Seeds a replicated application: its objects running on `active` and at 0 replicas on
 * `standby`, its claims bound on `active`, and VolumeReplications primary there and secondary on
 * `standby` (naming the replica by its volume handle). Returns once the claims are replicated.
 */
export async function seedReplicatedApp(
  active: SiteApi,
  standby: SiteApi,
  app: ReplicatedApp,
): Promise<void> {
  await apply(active, app.objects);
  await apply(standby, withReplicas(app.objects, 0));
  const handles = new Map<string, string>();
  await waitUntil(
    `the ${app.claims.length} claims of ${app.namespace} to be bound on ${active.site}`,
    async () => {
      const pvcs = await active.core.listNamespacedPersistentVolumeClaim({ namespace: app.namespace });
      for (const pvc of pvcs.items) {
        if (pvc.status?.phase !== 'Bound' || !pvc.spec?.volumeName) continue;
        const pv = await active.core.readPersistentVolume({ name: pvc.spec.volumeName });
        if (pv.spec?.csi?.volumeHandle) handles.set(pvc.metadata!.name!, pv.spec.csi.volumeHandle);
      }
      return app.claims.every((c) => handles.has(c)) || `${handles.size} bound`;
    },
    { timeoutMs: 120_000 },
  );
  await apply(
    active,
    app.claims.map((c) => volumeReplication(app.namespace, app.partOf, c, 'primary')),
  );
  await apply(
    standby,
    app.claims.map((c) => volumeReplication(app.namespace, app.partOf, c, 'secondary', handles.get(c))),
  );
}

/** Seeds `orders`: active on `active`, standing by on `standby`. Returns when the app is Ready. */
export async function seedSampleApp(active: SiteApi, standby: SiteApi): Promise<void> {
  await seedReplicatedApp(active, standby, {
    namespace: SAMPLE_APP.namespace,
    partOf: 'orders',
    objects: loadManifests(join(SEED_DIR, 'orders.yaml')),
    claims: [...SAMPLE_APP.claims],
  });
  await waitForWorkloadsReady(active, 180_000);
}

export async function waitForWorkloadsReady(api: SiteApi, timeoutMs: number): Promise<void> {
  const ns = SAMPLE_APP.namespace;
  await waitUntil(
    `the ${ns} workloads to be Ready on ${api.site}`,
    async () => {
      const pending: string[] = [];
      for (const w of SAMPLE_APP.workloads) {
        const obj =
          w.kind === 'StatefulSet'
            ? await api.apps.readNamespacedStatefulSet({ name: w.name, namespace: ns })
            : await api.apps.readNamespacedDeployment({ name: w.name, namespace: ns });
        const ready = obj.status?.readyReplicas ?? 0;
        if (ready < (obj.spec?.replicas ?? 0)) pending.push(`${w.name} ${ready}/${obj.spec?.replicas}`);
      }
      return pending.length === 0 || pending.join(', ');
    },
    { timeoutMs, intervalMs: 1000 },
  );
}
