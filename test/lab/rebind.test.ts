/**
 * Rebinding replicas on the target keeps what the source's PVs carry. An application with a Block
 * volume and a Filesystem one, on a ceph-csi-like StorageClass (clusterID, pool, imageFeatures, an
 * fsType, a node-stage secret), whose PVs the simulated array sizes in whole GiB: the volumes are
 * described on dc-a, kept as JSON (as the witness keeps the protection record), and rebound on
 * dc-b. Each PV the rebind creates must carry the source PV's volume mode, CSI source (driver,
 * handle, volumeAttributes, fsType, secret references), capacity and access modes, with reclaim
 * policy Retain, and its claim the source claim's request.
 */
import type * as k8s from '@kubernetes/client-node';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Redis } from 'ioredis';
import { createClaimActivities, replicaPvName } from '../../activities/claims.ts';
import type { VolumeSpec } from '../../activities/types.ts';
import type { SiteApi } from '../../common/k8s.ts';
import { seedReplicatedApp } from '../../lab/seed.ts';
import { SIM_DRIVER } from '../../lab/storage-sim/constants.ts';
import type { Runbook } from '../../runbook/types.ts';
import { validateRunbookText } from '../../runbook/validate.ts';
import { Witness } from '../../witness/witness.ts';
import { deleteNamespace, site, status, uniqueName } from './helpers.ts';

const dcA = site('dc-a');
const dcB = site('dc-b');
const ns = uniqueName('rebind');
const className = uniqueName('sim-ceph');
const CLAIMS = { block: 'block-db-0', fs: 'fs-db-0' };
let redis: Redis;
let witness: Witness;

function cephLikeClass(): k8s.V1StorageClass {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: className },
    provisioner: SIM_DRIVER,
    reclaimPolicy: 'Retain',
    volumeBindingMode: 'Immediate',
    parameters: {
      clusterID: 'b9127830-b0cc-4e34-aa47-9d1a2e9949a8',
      pool: 'replicapool',
      imageFormat: '2',
      imageFeatures: 'layering,exclusive-lock,object-map,fast-diff',
      'csi.storage.k8s.io/fstype': 'xfs',
      'csi.storage.k8s.io/node-stage-secret-name': 'rook-csi-rbd-node',
      'csi.storage.k8s.io/node-stage-secret-namespace': ns,
      'csi.storage.k8s.io/controller-expand-secret-name': 'rook-csi-rbd-provisioner',
      'csi.storage.k8s.io/controller-expand-secret-namespace': ns,
    },
  };
}

function appObjects(): k8s.KubernetesObject[] {
  const labels = { 'app.kubernetes.io/part-of': ns, 'app.kubernetes.io/name': 'db' };
  const template = (name: string, volumeMode: string, storage: string) => ({
    metadata: { name, labels },
    spec: {
      accessModes: ['ReadWriteOnce'],
      storageClassName: className,
      volumeMode,
      resources: { requests: { storage } },
    },
  });
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } },
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'db', namespace: ns, labels },
      spec: {
        replicas: 1,
        serviceName: 'db',
        selector: { matchLabels: { 'app.kubernetes.io/name': 'db' } },
        template: {
          metadata: { labels },
          spec: {
            tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }],
            containers: [
              {
                name: 'db',
                image: 'postgres:17',
                volumeDevices: [{ name: 'block', devicePath: '/dev/xvdb' }],
                volumeMounts: [{ name: 'fs', mountPath: '/data' }],
              },
            ],
          },
        },
        // A Block volume of whole GiB, and a Filesystem one the array rounds up to 2Gi.
        volumeClaimTemplates: [template('block', 'Block', '3Gi'), template('fs', 'Filesystem', '1500Mi')],
      },
    } as k8s.KubernetesObject,
  ];
}

function runbook(): Runbook {
  const text = `apiVersion: pivot.dev/v1alpha1
kind: Runbook
metadata: { name: ${ns} }
spec:
  namespaces: [${ns}]
  sites: { primary: dc-a, secondary: dc-b }
  workloads:
    - { kind: StatefulSet, name: db, startOrder: 1 }
  volumes:
    - name: db-data
      selector: { matchLabels: { app.kubernetes.io/part-of: ${ns} } }
      replication: { provider: csi-addons, volumeReplicationClass: sim-replication }
  healthChecks:
    - { name: ready, kind: WorkloadsReady, timeout: 2m }
  objectives: { rpo: 30s, rto: 10m }
`;
  const v = validateRunbookText(text, 'rebind.yaml', { knownSites: ['dc-a', 'dc-b'] });
  if (!v.runbook) throw new Error(JSON.stringify(v.errors));
  return v.runbook;
}

async function boundPv(api: SiteApi, claim: string): Promise<k8s.V1PersistentVolume> {
  const pvc = await api.core.readNamespacedPersistentVolumeClaim({ name: claim, namespace: ns });
  return api.core.readPersistentVolume({ name: pvc.spec!.volumeName! });
}

beforeAll(async () => {
  redis = new Redis((await status()).redis.url, { maxRetriesPerRequest: 1 });
  witness = new Witness(redis, { prefix: uniqueName('rebind') });
  for (const api of [dcA, dcB]) await api.storage.createStorageClass({ body: cephLikeClass() });
  await seedReplicatedApp(dcA, dcB, {
    namespace: ns,
    partOf: ns,
    objects: appObjects(),
    claims: Object.values(CLAIMS),
  });
});

afterAll(async () => {
  for (const api of [dcA, dcB]) {
    await deleteNamespace(api, ns);
    // Retain keeps the test's PVs after their claims go: remove them so the lab stays tidy.
    for (const pv of (await api.core.listPersistentVolume()).items) {
      if (pv.spec?.claimRef?.namespace === ns)
        await api.core.deletePersistentVolume({ name: pv.metadata!.name! });
    }
    await api.storage.deleteStorageClass({ name: className }).catch(() => undefined);
  }
  await redis?.quit();
});

describe('rebinding replicas on the target', () => {
  it('creates PVs with the source PVs volume mode, CSI source, capacity and access modes', async () => {
    const rb = runbook();
    const described = await createClaimActivities(dcA, witness).describeVolumes(rb);
    // What the target gets travels as JSON: in the workflow's history, or the witness's protection record.
    const volumes = JSON.parse(JSON.stringify(described)) as VolumeSpec[];
    expect(volumes.map((v) => v.claim).sort()).toEqual(Object.values(CLAIMS).sort());

    const ctx = { app: ns, operationId: 'rebind-test', epoch: 0 };
    const onTarget = createClaimActivities(dcB, witness, 200);
    // As the site worker runs it: an activity, which heartbeats while the claims bind.
    await new MockActivityEnvironment().run(() => onTarget.rebindClaims(ctx, volumes, {}));

    for (const claim of Object.values(CLAIMS)) {
      const source = await boundPv(dcA, claim);
      const target = await dcB.core.readPersistentVolume({ name: replicaPvName({ namespace: ns, claim }) });
      expect({ claim, ...target.spec, claimRef: undefined }).toEqual({
        claim,
        capacity: source.spec!.capacity,
        accessModes: source.spec!.accessModes,
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: className,
        volumeMode: source.spec!.volumeMode,
        csi: source.spec!.csi,
        claimRef: undefined,
      });
      const targetClaim = await dcB.core.readNamespacedPersistentVolumeClaim({ name: claim, namespace: ns });
      const sourceClaim = await dcA.core.readNamespacedPersistentVolumeClaim({ name: claim, namespace: ns });
      expect(targetClaim.status?.phase).toBe('Bound');
      expect(targetClaim.spec?.volumeName).toBe(target.metadata!.name);
      expect(targetClaim.spec?.volumeMode).toBe(sourceClaim.spec?.volumeMode);
      expect(targetClaim.spec?.resources?.requests).toEqual(sourceClaim.spec?.resources?.requests);
    }

    // What the simulated provisioner made of the class, so that the comparison above means something.
    const attributes = Object.fromEntries(
      Object.entries(cephLikeClass().parameters!).filter(([k]) => !k.startsWith('csi.storage.k8s.io/')),
    );
    const block = await boundPv(dcA, CLAIMS.block);
    expect(block.spec).toMatchObject({ volumeMode: 'Block', capacity: { storage: '3Gi' } });
    expect(block.spec?.csi).toEqual({
      driver: SIM_DRIVER,
      volumeHandle: expect.stringMatching(/^simvol-/) as unknown,
      volumeAttributes: attributes,
      nodeStageSecretRef: { name: 'rook-csi-rbd-node', namespace: ns },
      controllerExpandSecretRef: { name: 'rook-csi-rbd-provisioner', namespace: ns },
    });
    const fs = await boundPv(dcA, CLAIMS.fs);
    expect(fs.spec).toMatchObject({ volumeMode: 'Filesystem', capacity: { storage: '2Gi' } });
    expect(fs.spec?.csi).toMatchObject({ fsType: 'xfs', volumeAttributes: attributes });
  });
});
