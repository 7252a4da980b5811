/**
 * The simulated array against the real lab: every transition and refusal of docs/lab.md (the simulated array),
 * seen through the sites' own APIs and the simulator's data-plane report. The steps build on each
 * other (one volume goes through a switchover, a forced failover and a resync), so they run in order.
 */
import type * as k8s from '@kubernetes/client-node';
import { CRD, mergePatch, type SiteApi } from '../../common/k8s.ts';
import { sleep, waitUntil } from '../../common/wait.ts';
import { SITE_CLIENT_CIDRS } from '../../lab/layout.ts';
import { FORCE_PROMOTION_ANNOTATION, SIM_DRIVER } from '../../lab/storage-sim/constants.ts';
import { Daemons } from '../../lab/processes.ts';
import { DAEMONS } from '../../lab/status.ts';
import { apply } from '../../lab/seed.ts';
import {
  condition,
  deleteNamespace,
  lab,
  resetSim,
  sim,
  site,
  status,
  uniqueName,
  waitForVr,
  type VolumeReplication,
} from './helpers.ts';

const ns = uniqueName('simtest');
const dcA = site('dc-a');
const dcB = site('dc-b');
const TOLERATION = [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }];

function claim(
  name: string,
  extra: Partial<k8s.V1PersistentVolumeClaimSpec> = {},
): k8s.V1PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace: ns },
    spec: {
      accessModes: ['ReadWriteOnce'],
      storageClassName: 'sim-replicated',
      resources: { requests: { storage: '1Gi' } },
      ...extra,
    },
  };
}

function writer(name: string, claimName: string): k8s.V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns },
    spec: {
      tolerations: TOLERATION,
      containers: [{ name: 'app', image: 'writer:1' }],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName } }],
    },
  };
}

function vr(state: string, handle?: string, annotations?: Record<string, string>): k8s.KubernetesObject {
  return {
    apiVersion: 'replication.storage.openshift.io/v1alpha1',
    kind: 'VolumeReplication',
    metadata: { name: 'data', namespace: ns, ...(annotations ? { annotations } : {}) },
    spec: {
      volumeReplicationClass: 'sim-replication',
      replicationState: state,
      dataSource: { kind: 'PersistentVolumeClaim', name: 'data' },
      autoResync: false,
      ...(handle ? { replicationHandle: handle } : {}),
    },
  } as k8s.KubernetesObject;
}

async function setState(api: SiteApi, state: string, annotations?: Record<string, string>): Promise<void> {
  await api.custom.patchNamespacedCustomObject(
    {
      ...CRD.volumeReplication,
      namespace: ns,
      name: 'data',
      body: { metadata: { annotations: annotations ?? null }, spec: { replicationState: state } },
    },
    mergePatch,
  );
}

async function boundHandle(api: SiteApi, name: string): Promise<string> {
  let handle = '';
  await waitUntil(`${api.site} claim ${ns}/${name} bound`, async () => {
    const pvc = await api.core.readNamespacedPersistentVolumeClaim({ name, namespace: ns });
    if (pvc.status?.phase !== 'Bound') return pvc.status?.phase ?? 'no phase';
    const pv = await api.core.readPersistentVolume({ name: pvc.spec!.volumeName! });
    handle = pv.spec!.csi!.volumeHandle;
    return true;
  });
  return handle;
}

async function podRunning(api: SiteApi, name: string): Promise<void> {
  await waitUntil(`${api.site} pod ${ns}/${name} Running`, async () => {
    const pod = await api.core.readNamespacedPod({ name, namespace: ns });
    return pod.status?.phase === 'Running' || (pod.status?.phase ?? 'no phase');
  });
}

const copyOn = async (handle: string, s: string) =>
  (await sim.volume(handle)).copies.find((c) => c.site === s)!;

let handle = '';

beforeAll(async () => {
  await resetSim();
  for (const api of [dcA, dcB]) await api.core.createNamespace({ body: { metadata: { name: ns } } });
  await dcA.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('data') });
  handle = await boundHandle(dcA, 'data');
  await dcA.core.createNamespacedPod({ namespace: ns, body: writer('writer', 'data') });
  await podRunning(dcA, 'writer');
  await apply(dcA, [vr('primary')]);
  await apply(dcB, [vr('secondary', handle)]);
});

afterAll(async () => {
  await resetSim();
  const s = await status();
  for (const st of s.sites) if (st.state !== 'running') await lab.reviveSite(st.name);
  for (const api of [dcA, dcB]) {
    for (const nf of ['simtest-fence-a', 'simtest-fence-b', 'simtest-bad-fence']) {
      await api.custom.deleteClusterCustomObject({ ...CRD.networkFence, name: nf }).catch(() => undefined);
    }
    await deleteNamespace(api, ns);
    // Retain keeps the test's PVs after their claims go: remove them so the lab stays tidy.
    for (const pv of (await api.core.listPersistentVolume()).items) {
      if (pv.spec?.claimRef?.namespace === ns)
        await api.core.deletePersistentVolume({ name: pv.metadata!.name! });
    }
  }
});

describe('storage simulator on the lab', () => {
  it('provisions a Retain PV with the claim access modes and pairs it with a replica on the peer', async () => {
    const pvc = await dcA.core.readNamespacedPersistentVolumeClaim({ name: 'data', namespace: ns });
    const pv = await dcA.core.readPersistentVolume({ name: pvc.spec!.volumeName! });
    expect(pv.spec?.persistentVolumeReclaimPolicy).toBe('Retain');
    expect(pv.spec?.accessModes).toEqual(['ReadWriteOnce']);
    expect(pv.spec?.csi?.driver).toBe(SIM_DRIVER);
    const v = await sim.volume(handle);
    expect(v.replicated).toBe(true);
    expect(v.copies.map((c) => [c.site, c.role]).sort()).toEqual([
      ['dc-a', 'primary'],
      ['dc-b', 'secondary'],
    ]);
    const a = await waitForVr(dcA, ns, 'data', 'Primary', (x) => x.status?.state === 'Primary');
    expect(condition(a, 'Completed')?.status).toBe('True');
    const b = await waitForVr(dcB, ns, 'data', 'Secondary', (x) => x.status?.state === 'Secondary');
    expect(condition(b, 'Validated')?.status).toBe('True');
  });

  it('advances writes only on the primary, and replicates them to the secondary', async () => {
    const before = await copyOn(handle, 'dc-a');
    await sleep(3000);
    const a = await copyOn(handle, 'dc-a');
    const b = await copyOn(handle, 'dc-b');
    expect(a.seq).toBeGreaterThan(before.seq);
    expect(b.acceptedWrites).toBe(0);
    expect(b.seq).toBeGreaterThan(0);
    expect(b.seq).toBeLessThanOrEqual(a.seq);
    const vrA = await waitForVr(dcA, ns, 'data', 'a lastSyncTime', (x) => !!x.status?.lastSyncTime);
    expect(Date.parse(vrA.status!.lastSyncTime!)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('refuses the writes of a pod on the secondary site, bound to the replica through a pre-bound Retain PV', async () => {
    const pvName = `${ns}-data`;
    await dcB.core.createPersistentVolume({
      body: {
        metadata: { name: pvName },
        spec: {
          capacity: { storage: '1Gi' },
          accessModes: ['ReadWriteOnce'],
          persistentVolumeReclaimPolicy: 'Retain',
          storageClassName: 'sim-replicated',
          csi: { driver: SIM_DRIVER, volumeHandle: handle },
          claimRef: { namespace: ns, name: 'data' },
        },
      },
    });
    await dcB.core.createNamespacedPersistentVolumeClaim({
      namespace: ns,
      body: claim('data', { volumeName: pvName }),
    });
    expect(await boundHandle(dcB, 'data')).toBe(handle);
    await dcB.core.createNamespacedPod({ namespace: ns, body: writer('writer-b', 'data') });
    await podRunning(dcB, 'writer-b');
    await waitUntil('refused writes on dc-b', async () => (await copyOn(handle, 'dc-b')).refusedWrites > 0);
    expect((await copyOn(handle, 'dc-b')).acceptedWrites).toBe(0);
  });

  it('refuses to promote the secondary while the peer is an unfenced primary', async () => {
    await setState(dcB, 'primary');
    const b = await waitForVr(
      dcB,
      ns,
      'data',
      'promotion refused',
      (x) => condition(x, 'Completed')?.reason === 'FailedToPromote',
    );
    expect(b.status?.state).toBe('Secondary');
    expect(b.status?.message).toContain('unfenced primary');
    expect((await copyOn(handle, 'dc-b')).role).toBe('secondary');
    await setState(dcB, 'secondary');
    await waitForVr(dcB, ns, 'data', 'Demoted', (x) => condition(x, 'Completed')?.reason === 'Demoted');
  });

  it('planned switchover: demote, final sync, promote through injected faults; no data lost, replication reversed', async () => {
    await setState(dcA, 'secondary');
    await waitForVr(dcA, ns, 'data', 'Secondary', (x) => x.status?.state === 'Secondary');
    await waitUntil('final sync to dc-b', async () => {
      const [a, b] = [await copyOn(handle, 'dc-a'), await copyOn(handle, 'dc-b')];
      return (a.seq === b.seq && a.lineage === b.lineage) || `dc-a ${a.seq}, dc-b ${b.seq}`;
    });
    await sim.setFaults({ failNextPromotions: 1, promotionDelayMs: 2000 });
    await setState(dcB, 'primary');
    const failed = await waitForVr(
      dcB,
      ns,
      'data',
      'injected failure',
      (x) => condition(x, 'Completed')?.reason === 'FailedToPromote',
    );
    expect(failed.status?.message).toContain('injected');
    await waitForVr(
      dcB,
      ns,
      'data',
      'promoting (delay)',
      (x) => condition(x, 'Completed')?.reason === 'Promoting',
    );
    await waitForVr(dcB, ns, 'data', 'Primary', (x) => x.status?.state === 'Primary');
    await resetSim();
    const before = await copyOn(handle, 'dc-b');
    await waitUntil('writes on dc-b replicated back to dc-a', async () => {
      const [a, b] = [await copyOn(handle, 'dc-a'), await copyOn(handle, 'dc-b')];
      return (
        (b.acceptedWrites > before.acceptedWrites && a.seq > before.seq) || `dc-a ${a.seq}, dc-b ${b.seq}`
      );
    });
    const v = await sim.volume(handle);
    expect(v.primarySite).toBe('dc-b');
    expect(v.copies.find((c) => c.site === 'dc-a')).toMatchObject({
      writesNotOnPrimary: 0,
      needsResync: false,
      acceptedWrites: expect.any(Number) as number,
    });
    expect((await copyOn(handle, 'dc-a')).refusedWrites).toBeGreaterThan(0); // its writer is refused now
    expect(v.splitBrain).toBe(false);
  });

  it('rejects a NetworkFence with a malformed CIDR', async () => {
    await dcA.custom.createClusterCustomObject({
      ...CRD.networkFence,
      body: {
        apiVersion: 'csiaddons.openshift.io/v1alpha1',
        kind: 'NetworkFence',
        metadata: { name: 'simtest-bad-fence' },
        spec: {
          driver: SIM_DRIVER,
          fenceState: 'Fenced',
          cidrs: ['10.20.0.0/99'],
          secret: { name: 'x', namespace: 'default' },
        },
      },
    });
    await waitUntil('fence Failed', async () => {
      const nf = (await dcA.custom.getClusterCustomObject({
        ...CRD.networkFence,
        name: 'simtest-bad-fence',
      })) as {
        status?: { result?: string; message?: string };
      };
      return (
        (nf.status?.result === 'Failed' && (nf.status.message ?? '').includes('10.20.0.0/99')) ||
        JSON.stringify(nf.status)
      );
    });
  });

  it('unplanned failover: a forced promotion while the peer site is down; the fence keeps the old primary from writing', async () => {
    await lab.killSite('dc-b');
    await setState(dcA, 'primary');
    const refused = await waitForVr(
      dcA,
      ns,
      'data',
      'refused: peer unreachable',
      (x) => condition(x, 'Completed')?.reason === 'FailedToPromote',
    );
    expect(refused.status?.message).toContain('forced');
    await setState(dcA, 'primary', { [FORCE_PROMOTION_ANNOTATION]: 'true' });
    await waitForVr(dcA, ns, 'data', 'Primary', (x) => x.status?.state === 'Primary');
    await dcA.custom.createClusterCustomObject({
      ...CRD.networkFence,
      body: {
        apiVersion: 'csiaddons.openshift.io/v1alpha1',
        kind: 'NetworkFence',
        metadata: { name: 'simtest-fence-b' },
        spec: {
          driver: SIM_DRIVER,
          fenceState: 'Fenced',
          cidrs: SITE_CLIENT_CIDRS['dc-b'],
          secret: { name: 'x', namespace: 'default' },
        },
      },
    });
    await waitUntil('fence Succeeded', async () => {
      const nf = (await dcA.custom.getClusterCustomObject({
        ...CRD.networkFence,
        name: 'simtest-fence-b',
      })) as { status?: { result?: string } };
      return nf.status?.result === 'Succeeded';
    });
    await lab.reviveSite('dc-b');
    // dc-b comes back still believing it is primary, with its writer Running: the fence refuses it.
    const refusedBefore = (await copyOn(handle, 'dc-b')).refusedWrites;
    await waitUntil(
      'dc-b writes refused by the fence',
      async () => (await copyOn(handle, 'dc-b')).refusedWrites > refusedBefore + 2,
    );
    const v = await sim.volume(handle);
    expect(v.primarySite).toBe('dc-a');
    expect(v.multiplePrimaries).toBe(true);
    expect(v.copies.find((c) => c.site === 'dc-b')?.fenced).toBe(true);
    expect(v.splitBrain).toBe(false);
  });

  it('reprotect: the old primary, demoted, needs a resync and then follows the new primary', async () => {
    await setState(dcB, 'secondary');
    await waitForVr(dcB, ns, 'data', 'Secondary', (x) => x.status?.state === 'Secondary');
    await setState(dcB, 'resync');
    const done = await waitForVr(
      dcB,
      ns,
      'data',
      'Resynced',
      (x) => condition(x, 'Completed')?.reason === 'Resynced',
    );
    expect(condition(done, 'Degraded')?.status).toBe('False');
    const v = await sim.volume(handle);
    expect(v.copies.find((c) => c.site === 'dc-b')).toMatchObject({
      role: 'secondary',
      writesNotOnPrimary: 0,
      needsResync: false,
    });
    await dcA.custom.deleteClusterCustomObject({ ...CRD.networkFence, name: 'simtest-fence-b' });
    expect((await sim.volume(handle)).splitBrain).toBe(false);
  });

  it('replication lag follows the configured interval and grows while the link is down', async () => {
    await sim.setFaults({ replicationIntervalMs: 1000, syncDurationMs: 100 });
    await sleep(2500);
    const lags: number[] = [];
    for (let i = 0; i < 8; i += 1) {
      lags.push((await sim.volume(handle)).lagMs ?? Infinity);
      await sleep(400);
    }
    // Period 0.5 s + interval 1 s + sync 0.1 s, with room for a slow machine.
    expect(Math.max(...lags)).toBeLessThan(4000);
    await sim.setFaults({ linkDown: true });
    await sleep(6000);
    const during = await sim.volume(handle);
    expect(during.lagMs).toBeGreaterThan(5000);
    expect(during.copies.find((c) => c.site === 'dc-b')!.seq).toBeLessThan(
      during.copies.find((c) => c.site === 'dc-a')!.seq,
    );
    await sim.setFaults({ linkDown: false });
    await waitUntil(
      'lag back under the interval bound',
      async () => ((await sim.volume(handle)).lagMs ?? Infinity) < 4000,
    );
  });

  it('rejects a malformed fault request and changes nothing', async () => {
    const before = await sim.faults();
    const res = await sim.patchRaw({ failNextPromotions: -1, bogus: true });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: string[] };
    expect(body.errors.join('; ')).toMatch(
      /unknown field bogus.*failNextPromotions must be a non-negative integer/,
    );
    expect(await sim.faults()).toEqual(before);
  });

  it('takes a snapshot of a claim and restores it into a local, unreplicated clone', async () => {
    await dcA.custom.createNamespacedCustomObject({
      ...CRD.volumeSnapshot,
      namespace: ns,
      body: {
        apiVersion: 'snapshot.storage.k8s.io/v1',
        kind: 'VolumeSnapshot',
        metadata: { name: 'snap' },
        spec: { volumeSnapshotClassName: 'sim-snapshots', source: { persistentVolumeClaimName: 'data' } },
      },
    });
    await waitUntil('snapshot ready', async () => {
      const vs = (await dcA.custom.getNamespacedCustomObject({
        ...CRD.volumeSnapshot,
        namespace: ns,
        name: 'snap',
      })) as {
        status?: { readyToUse?: boolean };
      };
      return vs.status?.readyToUse === true;
    });
    await dcA.core.createNamespacedPersistentVolumeClaim({
      namespace: ns,
      body: claim('clone', {
        dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'snap' },
      }),
    });
    const cloneHandle = await boundHandle(dcA, 'clone');
    const clone = await sim.volume(cloneHandle);
    expect(clone.replicated).toBe(false);
    expect(clone.copies.map((c) => c.site)).toEqual(['dc-a']);
    expect(clone.copies[0]!.seq).toBeGreaterThan(0);
    expect(clone.copies[0]!.seq).toBeLessThanOrEqual((await copyOn(handle, 'dc-a')).seq);
  });

  it('destroys the volume copy when a claim on a Delete-policy class goes away', async () => {
    await apply(dcA, [
      {
        apiVersion: 'storage.k8s.io/v1',
        kind: 'StorageClass',
        metadata: { name: 'simtest-delete' },
        provisioner: SIM_DRIVER,
        reclaimPolicy: 'Delete',
      } as k8s.KubernetesObject,
    ]);
    await dcA.core.createNamespacedPersistentVolumeClaim({
      namespace: ns,
      body: claim('scratch', { storageClassName: 'simtest-delete' }),
    });
    const scratch = await boundHandle(dcA, 'scratch');
    const pvName = (await dcA.core.readNamespacedPersistentVolumeClaim({ name: 'scratch', namespace: ns }))
      .spec!.volumeName!;
    await dcA.core.deleteNamespacedPersistentVolumeClaim({ name: 'scratch', namespace: ns });
    await waitUntil('PV deleted', async () =>
      (await dcA.core.listPersistentVolume()).items.every((pv) => pv.metadata?.name !== pvName),
    );
    const v = (await sim.volumes()).find((x) => x.handle === scratch);
    expect(v?.copies.some((c) => c.site === 'dc-a') ?? false).toBe(false);
    await dcA.storage.deleteStorageClass({ name: 'simtest-delete' });
  });

  it('keeps its state across its own restart', async () => {
    const before = await copyOn(handle, 'dc-a');
    const count = (await sim.volumes()).length;
    const daemons = new Daemons(lab.layout.runDir, lab.layout.logDir);
    await daemons.stop(DAEMONS.storageSim);
    expect((await status()).storageSimulator.state).toBe('stopped');
    await lab.up();
    expect((await status()).storageSimulator.state).toBe('running');
    const after = await copyOn(handle, 'dc-a');
    expect((await sim.volumes()).length).toBe(count);
    expect(after.seq).toBeGreaterThanOrEqual(before.seq);
    expect(after.lineage).toBe(before.lineage);
    const vrs = (await dcA.custom.listNamespacedCustomObject({
      ...CRD.volumeReplication,
      namespace: ns,
    })) as { items: VolumeReplication[] };
    expect(vrs.items[0]?.status?.state).toBe('Primary');
  });
});
