/**
 * What the simulated array's provisioner puts in a PV, from the claim and its StorageClass: as a
 * real CSI provisioner does, the class's parameters become csi.volumeAttributes, and the reserved
 * csi.storage.k8s.io/ parameters the fsType and the secret references; capacity is allocated in
 * whole GiB.
 */
import type * as k8s from '@kubernetes/client-node';
import { allocatedCapacity, provisionedCsiSource, sameStatus } from '../../lab/storage-sim/controller.ts';
import { SIM_DRIVER } from '../../lab/storage-sim/constants.ts';

function claim(volumeMode?: string): k8s.V1PersistentVolumeClaim {
  return {
    metadata: { name: 'data-db-0', namespace: 'shop' },
    spec: { ...(volumeMode ? { volumeMode } : {}), resources: { requests: { storage: '3Gi' } } },
  };
}

function cls(parameters?: Record<string, string>): k8s.V1StorageClass {
  return { metadata: { name: 'c' }, provisioner: SIM_DRIVER, ...(parameters ? { parameters } : {}) };
}

describe('provisionedCsiSource', () => {
  it('keeps the default of a class without parameters: ext4, no attributes, no secrets', () => {
    expect(provisionedCsiSource(cls(), claim(), 'pvc-1', 'simvol-1')).toEqual({
      driver: SIM_DRIVER,
      volumeHandle: 'simvol-1',
      fsType: 'ext4',
    });
  });

  it('passes the class parameters through as volumeAttributes and maps the reserved ones', () => {
    const sc = cls({
      clusterID: 'ceph-a',
      pool: 'replicapool',
      imageFeatures: 'layering,exclusive-lock',
      'csi.storage.k8s.io/fstype': 'xfs',
      'csi.storage.k8s.io/provisioner-secret-name': 'provisioner',
      'csi.storage.k8s.io/provisioner-secret-namespace': 'ceph',
      'csi.storage.k8s.io/node-stage-secret-name': 'node-${pvc.name}',
      'csi.storage.k8s.io/node-stage-secret-namespace': '${pvc.namespace}',
      'csi.storage.k8s.io/controller-expand-secret-name': 'expand',
      'csi.storage.k8s.io/controller-expand-secret-namespace': 'ceph',
      'csi.storage.k8s.io/node-publish-secret-name': 'only-a-name',
    });
    expect(provisionedCsiSource(sc, claim('Filesystem'), 'pvc-1', 'simvol-1')).toEqual({
      driver: SIM_DRIVER,
      volumeHandle: 'simvol-1',
      fsType: 'xfs',
      volumeAttributes: {
        clusterID: 'ceph-a',
        pool: 'replicapool',
        imageFeatures: 'layering,exclusive-lock',
      },
      nodeStageSecretRef: { name: 'node-data-db-0', namespace: 'shop' },
      controllerExpandSecretRef: { name: 'expand', namespace: 'ceph' },
    });
  });

  it('gives a Block volume no filesystem type', () => {
    const sc = cls({ pool: 'p', 'csi.storage.k8s.io/fstype': 'xfs' });
    const csi = provisionedCsiSource(sc, claim('Block'), 'pvc-1', 'simvol-1');
    expect(csi.fsType).toBeUndefined();
    expect(csi.volumeAttributes).toEqual({ pool: 'p' });
  });
});

describe('allocatedCapacity', () => {
  it('keeps a request of whole GiB as written, and rounds anything else up to whole GiB', () => {
    expect(allocatedCapacity('10Gi')).toBe('10Gi');
    expect(allocatedCapacity('1500Mi')).toBe('2Gi');
    expect(allocatedCapacity('1G')).toBe('1Gi');
    expect(allocatedCapacity('100Mi')).toBe('1Gi');
  });
});

describe('sameStatus', () => {
  it('sees no change in a status the API server handed back with its keys sorted', () => {
    const written = {
      state: 'Primary',
      conditions: [
        { type: 'Completed', status: 'True', reason: 'Promoted', message: 'm', observedGeneration: 1 },
      ],
    };
    const handedBack = {
      conditions: [
        { message: 'm', observedGeneration: 1, reason: 'Promoted', status: 'True', type: 'Completed' },
      ],
      state: 'Primary',
      lastSyncTime: '2026-12-02T10:00:00Z',
    };
    expect(sameStatus(handedBack, written)).toBe(true);
    expect(sameStatus(handedBack, { ...written, state: 'Secondary' })).toBe(false);
    expect(sameStatus(undefined, written)).toBe(false);
  });
});
