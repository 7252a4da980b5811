/**
 * What a target needs to bind a replica, from the source's snapshot and PVs: every field the source
 * PV carries survives the JSON the protection record keeps, and comes back in the replica's PV.
 */
import type * as k8s from '@kubernetes/client-node';
import { claimRequest, replicaCsiSource, volumeSpecs } from '../../activities/claims.ts';
import type { VolumeSpec } from '../../activities/types.ts';
import { ordersRunbook, seededLab } from './fixtures/orders.ts';

const snapshot = seededLab().sites['dc-a']!;

/** The PV the snapshot names for `claim`, as its site's API returns it; `spec` and `csi` override defaults. */
function pv(
  claim: string,
  spec: Partial<k8s.V1PersistentVolumeSpec> = {},
  csi: Partial<k8s.V1CSIPersistentVolumeSource> = {},
): k8s.V1PersistentVolume {
  return {
    metadata: { name: `pvc-${claim}` },
    spec: {
      capacity: { storage: '10Gi' },
      accessModes: ['ReadWriteOncePod'],
      persistentVolumeReclaimPolicy: 'Retain',
      storageClassName: 'sim-replicated',
      volumeMode: 'Filesystem',
      ...spec,
      csi: { driver: 'sim.csi.pivot.dev', volumeHandle: `simvol-${claim}`, ...csi },
    },
  };
}

const cephCsi = {
  fsType: 'xfs',
  volumeAttributes: { clusterID: 'ceph-a', pool: 'replicapool', imageFeatures: 'layering' },
  controllerPublishSecretRef: { name: 'publish', namespace: 'ceph' },
  nodeStageSecretRef: { name: 'node', namespace: 'ceph' },
  nodePublishSecretRef: { name: 'node-publish', namespace: 'ceph' },
  controllerExpandSecretRef: { name: 'expand', namespace: 'ceph' },
  nodeExpandSecretRef: { name: 'node-expand', namespace: 'ceph' },
};

describe('volumeSpecs', () => {
  it('keeps the source PV volume mode, capacity, mount options and CSI source through JSON', () => {
    const source = pv(
      'data-mysql-0',
      { volumeMode: 'Block', capacity: { storage: '12Gi' }, mountOptions: ['noatime'] },
      cephCsi,
    );
    const specs = volumeSpecs(ordersRunbook(), snapshot, 'dc-a', [source]);
    const kept = (JSON.parse(JSON.stringify(specs)) as VolumeSpec[]).find((v) => v.claim === 'data-mysql-0')!;
    expect(kept).toMatchObject({
      volumeMode: 'Block',
      storage: '10Gi', // the claim's request
      capacity: '12Gi', // the volume's
      mountOptions: ['noatime'],
      ...cephCsi,
    });
    expect(replicaCsiSource(kept)).toEqual(source.spec!.csi);
    expect(claimRequest(kept)).toBe('10Gi');
  });

  it('falls back to what the snapshot knows without the PVs, as records written before did', () => {
    const spec = volumeSpecs(ordersRunbook(), snapshot, 'dc-a').find((v) => v.claim === 'data-redis-0')!;
    expect(spec).toEqual({
      namespace: 'orders',
      claim: 'data-redis-0',
      labels: { 'app.kubernetes.io/part-of': 'orders' },
      volumeHandle: 'simvol-data-redis-0',
      driver: 'sim.csi.pivot.dev',
      accessModes: ['ReadWriteOnce'],
      storage: '2Gi',
      storageClassName: 'sim-replicated',
      volumeMode: 'Filesystem',
    });
    expect(replicaCsiSource(spec)).toEqual({
      driver: 'sim.csi.pivot.dev',
      volumeHandle: 'simvol-data-redis-0',
    });
  });

  it('ignores a PV of the same name that points at another volume', () => {
    const other = pv('data-mysql-1', { volumeMode: 'Block' });
    other.spec!.csi!.volumeHandle = 'simvol-elsewhere';
    const spec = volumeSpecs(ordersRunbook(), snapshot, 'dc-a', [other]).find(
      (v) => v.claim === 'data-mysql-1',
    );
    expect(spec?.volumeMode).toBe('Filesystem');
    expect(spec?.capacity).toBeUndefined();
  });
});

describe('claimRequest', () => {
  const v = (storage: string, capacity?: string) =>
    ({ storage, ...(capacity ? { capacity } : {}) }) as VolumeSpec;

  it("asks the source claim's request, or the capacity when an unfinished expansion asked more", () => {
    expect(claimRequest(v('1500Mi', '2Gi'))).toBe('1500Mi');
    expect(claimRequest(v('20Gi', '10Gi'))).toBe('10Gi');
    expect(claimRequest(v('10G', '10Gi'))).toBe('10G');
    expect(claimRequest(v('5Gi'))).toBe('5Gi');
  });
});
