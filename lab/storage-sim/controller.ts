/**
 * The storage simulator's controller: plays the storage vendor's CSI controller side on every site
 * through that site's real Kubernetes API. Each period it observes every site, reconciles what the
 * vendor would (provisioning, replication objects, network fences, snapshots, clones, volume
 * deletion), then runs one data-plane period (writes from Running pods, replication).
 *
 * It polls rather than watches: a site whose API stops answering is simply "down" for the array,
 * which is exactly the datacenter loss the lab simulates with kill-site.
 */
import type * as k8s from '@kubernetes/client-node';
import type { Logger } from '../../common/logging.ts';
import {
  CRD,
  type CustomObject,
  type SiteApi,
  isConflict,
  isNotFound,
  listClusterCustom,
  listCustom,
  mergePatch,
} from '../../common/k8s.ts';
import {
  applyWrites,
  isPartitioned,
  cloneVolume,
  deleteCopy,
  demote,
  promote,
  provisionVolume,
  removeFence,
  replicate,
  requestResync,
  setFence,
  takeSnapshot,
  type SimState,
} from './model.ts';
import { inBatches } from '../../common/concurrency.ts';
import { SIM_DRIVER, FORCE_PROMOTION_ANNOTATION } from './constants.ts';
import { SyncPublisher } from './sync-publisher.ts';

type VolumeReplication = CustomObject<
  {
    volumeReplicationClass: string;
    replicationState: 'primary' | 'secondary' | 'resync';
    dataSource: { apiGroup?: string; kind: string; name: string };
    autoResync?: boolean;
    replicationHandle?: string;
  },
  Record<string, unknown>
>;
type NetworkFence = CustomObject<{ fenceState?: 'Fenced' | 'Unfenced'; cidrs?: string[] }>;
type VolumeSnapshot = CustomObject<
  {
    source: { persistentVolumeClaimName?: string; volumeSnapshotContentName?: string };
    volumeSnapshotClassName?: string;
  },
  { boundVolumeSnapshotContentName?: string; readyToUse?: boolean }
>;
type VolumeSnapshotContent = CustomObject<
  {
    source: { volumeHandle?: string; snapshotHandle?: string };
    volumeSnapshotRef: { name?: string; namespace?: string; uid?: string };
    driver: string;
    deletionPolicy: 'Delete' | 'Retain';
  },
  { snapshotHandle?: string; readyToUse?: boolean }
>;

interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

/** Everything the array needs to know about one site, read in one period. */
interface SiteView {
  api: SiteApi;
  pvcs: k8s.V1PersistentVolumeClaim[];
  pvs: k8s.V1PersistentVolume[];
  pods: k8s.V1Pod[];
  classes: k8s.V1StorageClass[];
  vrs: VolumeReplication[];
  fences: NetworkFence[];
  snapshots: VolumeSnapshot[];
  contents: VolumeSnapshotContent[];
  /** Claims by `namespace/name` and PVs by name: a period looks each up many times. */
  claimByName: Map<string, k8s.V1PersistentVolumeClaim>;
  volumeByName: Map<string, k8s.V1PersistentVolume>;
}

/** Status writes in flight at once, per site. */
const STATUS_WRITE_CONCURRENCY = 8;

export class StorageSimController {
  /** Newer syncs, published in the background (sync-publisher.ts); `start` sets it going. */
  readonly syncs: SyncPublisher;

  constructor(
    private readonly sites: SiteApi[],
    private readonly state: SimState,
    private readonly log: Logger,
  ) {
    this.syncs = new SyncPublisher(async (p) => {
      const api = this.sites.find((a) => a.site === p.site);
      if (!api) return;
      await api.custom.patchNamespacedCustomObjectStatus(
        { ...CRD.volumeReplication, namespace: p.namespace, name: p.name, body: { status: p.sync } },
        mergePatch,
      );
    }, log);
  }

  /** What each site's clients wrote to when its API was last seen: a partitioned site's pods go on. */
  private readonly lastInUse = new Map<string, Array<{ site: string; handle: string }>>();

  /** When each NetworkFence generation was first seen (for the injected fence delay). */
  private readonly fenceAskedAt = new Map<string, number>();

  /** Where the last period's time went (ms per phase), for the warning about a long period. */
  lastTick: Record<string, number> = {};

  /** One period: observe, reconcile each reachable site, then the data plane. */
  async tick(now: number): Promise<void> {
    this.lastTick = {};
    const views = await this.timed('observe', () => Promise.all(this.sites.map((api) => this.observe(api))));
    for (const [i, api] of this.sites.entries()) {
      const site = this.state.sites[api.site];
      if (!site) continue;
      // A partitioned site is alive behind the cut: its clients write as they did when last seen.
      const up = views[i] !== undefined || isPartitioned(this.state, api.site);
      if (site.up !== up)
        this.log.warn({ site: api.site, up }, up ? 'site is reachable again' : 'site is unreachable');
      site.up = up;
    }
    for (const view of views) {
      if (!view) continue;
      await this.step(view, 'fences', () => this.reconcileFences(view, now));
      await this.step(view, 'provisioning', () => this.reconcileClaims(view, now));
      await this.step(view, 'volume deletion', () => this.reconcileReleasedVolumes(view));
      await this.step(view, 'replication', () => this.reconcileReplications(view, now));
      await this.step(view, 'snapshots', () => this.reconcileSnapshots(view, now));
    }
    const dataPlane = performance.now();
    const inUse = this.sites.flatMap((api, i) => {
      const view = views[i];
      if (view) {
        const used = this.volumesInUse(view);
        this.lastInUse.set(api.site, used);
        return used;
      }
      return isPartitioned(this.state, api.site) ? (this.lastInUse.get(api.site) ?? []) : [];
    });
    applyWrites(this.state, inUse, now);
    replicate(this.state, now);
    this.lastTick['data plane'] = Math.round(performance.now() - dataPlane);
  }

  private async timed<T>(phase: string, run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await run();
    } finally {
      this.lastTick[phase] = (this.lastTick[phase] ?? 0) + Math.round(performance.now() - started);
    }
  }

  private async step(view: SiteView, what: string, run: () => Promise<void>): Promise<void> {
    try {
      await this.timed(what, run);
    } catch (err) {
      this.log.error(
        { site: view.api.site, step: what, err },
        `reconcile ${what} failed; retrying next period`,
      );
    }
  }

  private async observe(api: SiteApi): Promise<SiteView | undefined> {
    try {
      const [pvcs, pvs, pods, classes, vrs, fences, snapshots, contents] = await Promise.all([
        api.core.listPersistentVolumeClaimForAllNamespaces(),
        api.core.listPersistentVolume(),
        api.core.listPodForAllNamespaces(),
        api.storage.listStorageClass(),
        listCustom<VolumeReplication>(api, CRD.volumeReplication),
        listClusterCustom<NetworkFence>(api, CRD.networkFence),
        listCustom<VolumeSnapshot>(api, CRD.volumeSnapshot),
        listClusterCustom<VolumeSnapshotContent>(api, CRD.volumeSnapshotContent),
      ]);
      return {
        api,
        claimByName: new Map(pvcs.items.map((c) => [`${c.metadata?.namespace}/${c.metadata?.name}`, c])),
        volumeByName: new Map(pvs.items.map((pv) => [pv.metadata?.name ?? '', pv])),
        pvcs: pvcs.items,
        pvs: pvs.items,
        pods: pods.items,
        classes: classes.items,
        vrs,
        fences,
        snapshots,
        contents,
      };
    } catch (err) {
      this.log.debug({ site: api.site, err: String(err) }, 'site not observable');
      return undefined;
    }
  }

  private async reconcileFences(view: SiteView, now: number): Promise<void> {
    const site = view.api.site;
    const seen = new Set<string>();
    for (const nf of view.fences) {
      const key = `${site}/${nf.metadata.name}`;
      seen.add(key);
      // A slow array: a fence change takes fenceDelayMs from when it is first seen to when it holds.
      const asked = `${key}@${nf.metadata.generation ?? 0}`;
      if (!this.fenceAskedAt.has(asked)) this.fenceAskedAt.set(asked, now);
      if (now - this.fenceAskedAt.get(asked)! < (this.state.faults.fenceDelayMs ?? 0)) continue;
      const fenced = (nf.spec.fenceState ?? 'Fenced') === 'Fenced';
      const result = setFence(this.state, key, { cidrs: nf.spec.cidrs ?? [], fenced });
      // The condition carries the generation it answers, so a reader can tell a stale result.
      const generation = nf.metadata.generation ?? 0;
      const condition = {
        type: 'Completed',
        status: result.ok ? 'True' : 'False',
        reason: result.ok ? 'Succeeded' : 'Failed',
        message: result.message,
        observedGeneration: generation,
        lastTransitionTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      };
      const status = {
        result: result.ok ? 'Succeeded' : 'Failed',
        message: result.message,
        conditions: [condition],
      };
      const previous = (nf.status?.['conditions'] as Array<{ observedGeneration?: number }> | undefined)?.[0];
      if (
        nf.status?.['result'] !== status.result ||
        nf.status?.['message'] !== status.message ||
        previous?.observedGeneration !== generation
      ) {
        await view.api.custom.patchClusterCustomObjectStatus(
          { ...CRD.networkFence, name: nf.metadata.name!, body: { status } },
          mergePatch,
        );
        this.log.info({ site, fence: nf.metadata.name, ...status }, 'network fence reconciled');
      }
    }
    for (const key of Object.keys(this.state.fences)) {
      if (key.startsWith(`${site}/`) && !seen.has(key)) {
        removeFence(this.state, key);
        this.log.info({ site, fence: key }, 'network fence removed');
      }
    }
  }

  private ourClass(view: SiteView, name: string | undefined): k8s.V1StorageClass | undefined {
    const sc = view.classes.find((c) => c.metadata?.name === name);
    return sc?.provisioner === SIM_DRIVER ? sc : undefined;
  }

  /** Dynamic provisioning (and clones) for unbound claims of the simulator's StorageClasses. */
  private async reconcileClaims(view: SiteView, now: number): Promise<void> {
    const site = view.api.site;
    for (const pvc of view.pvcs) {
      const sc = this.ourClass(view, pvc.spec?.storageClassName);
      const spec = pvc.spec;
      if (
        !sc ||
        !spec ||
        spec.volumeName ||
        pvc.status?.phase !== 'Pending' ||
        pvc.metadata?.deletionTimestamp
      )
        continue;
      const uid = pvc.metadata!.uid!;
      const pvName = `pvc-${uid}`;
      if (view.pvs.some((pv) => pv.metadata?.name === pvName)) continue;
      const handle = `simvol-${uid}`;
      const capacity = allocatedCapacity(spec.resources?.requests?.['storage'] ?? '1Gi');
      const capacityBytes = parseQuantity(capacity);
      const origin = { site, namespace: pvc.metadata!.namespace!, claim: pvc.metadata!.name! };
      const source = this.cloneSource(view, pvc);
      if (source === 'not-ready') continue;
      if (source) cloneVolume(this.state, handle, site, { ...source, capacityBytes }, origin);
      else provisionVolume(this.state, handle, site, capacityBytes, origin);
      const pv: k8s.V1PersistentVolume = {
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: { name: pvName, annotations: { 'pv.kubernetes.io/provisioned-by': SIM_DRIVER } },
        spec: {
          capacity: { storage: capacity },
          accessModes: spec.accessModes ?? ['ReadWriteOnce'],
          persistentVolumeReclaimPolicy: sc.reclaimPolicy ?? 'Delete',
          storageClassName: sc.metadata!.name!,
          volumeMode: spec.volumeMode ?? 'Filesystem',
          csi: provisionedCsiSource(sc, pvc, pvName, handle),
          claimRef: {
            apiVersion: 'v1',
            kind: 'PersistentVolumeClaim',
            namespace: pvc.metadata!.namespace!,
            name: pvc.metadata!.name!,
            uid,
          },
        },
      };
      try {
        await view.api.core.createPersistentVolume({ body: pv });
        this.log.info(
          { site, pvc: `${origin.namespace}/${origin.claim}`, pv: pvName, handle, clone: !!source, now },
          'volume provisioned',
        );
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    }
  }

  /** The data a new claim starts from when it names a snapshot or another claim as its source. */
  private cloneSource(
    view: SiteView,
    pvc: k8s.V1PersistentVolumeClaim,
  ): { seq: number; lineage: number } | 'not-ready' | undefined {
    const ds = pvc.spec?.dataSource;
    if (!ds) return undefined;
    const ns = pvc.metadata!.namespace!;
    if (ds.kind === 'VolumeSnapshot') {
      const vs = view.snapshots.find((s) => s.metadata.namespace === ns && s.metadata.name === ds.name);
      const content = view.contents.find(
        (c) => c.metadata.name === vs?.status?.boundVolumeSnapshotContentName,
      );
      const snap = content?.status?.snapshotHandle
        ? this.state.snapshots[content.status.snapshotHandle]
        : undefined;
      return snap ? { seq: snap.seq, lineage: snap.lineage } : 'not-ready';
    }
    if (ds.kind === 'PersistentVolumeClaim') {
      const handle = this.claimHandle(view, ns, ds.name);
      const copy = handle ? this.state.volumes[handle]?.copies[view.api.site] : undefined;
      return copy ? { seq: copy.seq, lineage: copy.lineage } : 'not-ready';
    }
    return undefined;
  }

  private pvHandle(pv: k8s.V1PersistentVolume | undefined): string | undefined {
    return pv?.spec?.csi?.driver === SIM_DRIVER ? pv.spec.csi.volumeHandle : undefined;
  }

  private claimHandle(view: SiteView, namespace: string, name: string): string | undefined {
    const volumeName = view.claimByName.get(`${namespace}/${name}`)?.spec?.volumeName;
    return volumeName ? this.pvHandle(view.volumeByName.get(volumeName)) : undefined;
  }

  /** Reclaim policy Delete at work: a released volume's copy on this site is destroyed. */
  private async reconcileReleasedVolumes(view: SiteView): Promise<void> {
    for (const pv of view.pvs) {
      const handle = this.pvHandle(pv);
      if (!handle || pv.status?.phase !== 'Released' || pv.spec?.persistentVolumeReclaimPolicy !== 'Delete')
        continue;
      deleteCopy(this.state, handle, view.api.site);
      try {
        await view.api.core.deletePersistentVolume({ name: pv.metadata!.name! });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      this.log.warn(
        { site: view.api.site, pv: pv.metadata!.name, handle },
        'reclaim policy Delete: volume copy destroyed',
      );
    }
  }

  private async reconcileReplications(view: SiteView, now: number): Promise<void> {
    const site = view.api.site;
    const changed: StatusWrite[] = [];
    for (const vr of view.vrs) {
      const ns = vr.metadata.namespace!;
      const generation = vr.metadata.generation ?? 0;
      const handle =
        (vr.spec.dataSource?.kind === 'PersistentVolumeClaim'
          ? this.claimHandle(view, ns, vr.spec.dataSource.name)
          : undefined) ?? vr.spec.replicationHandle;
      const vol = handle ? this.state.volumes[handle] : undefined;
      const copy = vol?.copies[site];
      const conditions: Condition[] = [];
      const status: Record<string, unknown> = { observedGeneration: generation };
      if (!vol || !copy) {
        status['state'] = 'Unknown';
        status['message'] = handle
          ? `volume ${handle} has no copy on ${site}`
          : `claim ${ns}/${vr.spec.dataSource?.name} is not bound to a ${SIM_DRIVER} volume and no replicationHandle is set`;
        conditions.push(cond('Validated', 'False', 'VolumeNotFound', String(status['message'])));
      } else {
        conditions.push(cond('Validated', 'True', 'Validated', `volume ${vol.handle}`));
        let completed: Condition;
        const desired = vr.spec.replicationState;
        if (desired === 'primary') {
          const force = vr.metadata.annotations?.[FORCE_PROMOTION_ANNOTATION] === 'true';
          const wasPrimary = copy.role === 'primary';
          const result = promote(this.state, vol.handle, site, force, now);
          if (result.outcome === 'promoted') {
            completed = cond('Completed', 'True', 'Promoted', 'volume is primary');
            if (!wasPrimary)
              this.log.info({ site, vr: `${ns}/${vr.metadata.name}`, handle, force }, 'volume promoted');
          } else if (result.outcome === 'pending') {
            completed = cond('Completed', 'False', 'Promoting', result.reason);
          } else {
            completed = cond('Completed', 'False', 'FailedToPromote', result.reason);
            if (vr.status?.['message'] !== result.reason) {
              this.log.warn(
                { site, vr: `${ns}/${vr.metadata.name}`, handle, reason: result.reason },
                'promotion refused',
              );
            }
          }
        } else {
          if (copy.role === 'primary')
            this.log.info({ site, vr: `${ns}/${vr.metadata.name}`, handle }, 'volume demoted');
          demote(this.state, vol.handle, site);
          // A resync is requested once per generation; it completes with the next delivered sync.
          if (desired === 'resync' || (vr.spec.autoResync && copy.needsResync)) {
            if (
              vr.status?.['observedGeneration'] !== generation ||
              (vr.spec.autoResync && !copy.resyncRequested && copy.needsResync)
            ) {
              requestResync(this.state, vol.handle, site);
            }
          }
          completed = copy.resyncRequested
            ? cond('Completed', 'False', 'Resyncing', 'resync in progress')
            : cond('Completed', 'True', desired === 'resync' ? 'Resynced' : 'Demoted', 'volume is secondary');
        }
        conditions.push(completed);
        const primaries = Object.values(vol.copies).filter((c) => c.role === 'primary');
        const peersReachable =
          Object.values(vol.copies).every((c) => this.state.sites[c.site]?.up) && !this.state.faults.linkDown;
        conditions.push(
          copy.needsResync
            ? cond(
                'Degraded',
                'True',
                'ResyncRequired',
                'this copy diverged from the primary; set replicationState resync',
              )
            : primaries.length > 1
              ? cond('Degraded', 'True', 'MultiplePrimaries', 'more than one copy is primary')
              : cond('Degraded', 'False', 'Healthy', ''),
        );
        conditions.push(
          copy.resyncRequested
            ? cond('Resyncing', 'True', 'Resyncing', 'resync in progress')
            : cond('Resyncing', 'False', 'NotResyncing', ''),
        );
        conditions.push(
          primaries.length === 1 && peersReachable && !Object.values(vol.copies).some((c) => c.needsResync)
            ? cond('Replicating', 'True', 'Replicating', `from ${primaries[0]!.site}`)
            : cond('Replicating', 'False', peersReachable ? 'NotReplicating' : 'PeerUnreachable', ''),
        );
        status['state'] = copy.role === 'primary' ? 'Primary' : 'Secondary';
        status['message'] = completed.message;
        if (vol.lastSync) {
          // Stamped by this site's array clock (a clock-skew fault shifts it).
          const skew = this.state.faults.clockSkewMs?.[view.api.site] ?? 0;
          status['lastSyncTime'] = new Date(vol.lastSync.startedAt + skew)
            .toISOString()
            .replace(/\.\d{3}Z$/, 'Z');
          status['lastSyncDuration'] = `${(vol.lastSync.durationMs / 1000).toFixed(3)}s`;
          status['lastSyncBytes'] = vol.lastSync.bytes;
        }
      }
      status['conditions'] = mergeConditions(
        vr.status?.['conditions'] as Condition[] | undefined,
        conditions,
        generation,
        now,
      );
      if (sameStatus(vr.status, status)) continue;
      const target = { site, namespace: ns, name: vr.metadata.name! };
      // Between a demotion and a promotion (no copy primary), the final sync is what a planned move
      // waits for: it is written at once, not queued behind a thousand routine refreshes.
      const moving = !!vol && Object.values(vol.copies).every((c) => c.role !== 'primary');
      if (
        !moving &&
        sameStatus(vr.status, withoutSync(status)) &&
        typeof status['lastSyncTime'] === 'string'
      ) {
        this.syncs.offer({
          ...target,
          sync: {
            lastSyncTime: status['lastSyncTime'],
            lastSyncDuration: String(status['lastSyncDuration']),
            lastSyncBytes: Number(status['lastSyncBytes']),
          },
          shownSince: publishedSync(vr) ?? 0,
        });
      } else {
        this.syncs.forget(target);
        changed.push({ namespace: ns, name: vr.metadata.name!, status });
      }
    }
    this.lastTick[`status writes ${site}`] = changed.length;
    await inBatches(changed, STATUS_WRITE_CONCURRENCY, async ({ namespace, name, status }) => {
      await view.api.custom.patchNamespacedCustomObjectStatus(
        { ...CRD.volumeReplication, namespace, name, body: { status } },
        mergePatch,
      );
    });
  }

  /** Dynamic snapshots (from a claim or a volume handle) and binding of pre-provisioned ones. */
  private async reconcileSnapshots(view: SiteView, now: number): Promise<void> {
    const site = view.api.site;
    for (const content of view.contents) {
      if (content.spec.driver !== SIM_DRIVER || content.status?.readyToUse) continue;
      const src = content.spec.source;
      const handle = src.snapshotHandle ?? `simsnap-${content.metadata.uid}`;
      const snap = src.volumeHandle
        ? takeSnapshot(this.state, handle, src.volumeHandle, site, now)
        : this.state.snapshots[handle];
      await view.api.custom.patchClusterCustomObjectStatus(
        {
          ...CRD.volumeSnapshotContent,
          name: content.metadata.name!,
          body: {
            status: snap
              ? {
                  snapshotHandle: handle,
                  readyToUse: true,
                  restoreSize: snap.sizeBytes,
                  creationTime: snap.createdAt * 1_000_000,
                }
              : {
                  readyToUse: false,
                  error: {
                    message: `no volume ${src.volumeHandle ?? handle} on ${site}`,
                    time: new Date(now).toISOString(),
                  },
                },
          },
        },
        mergePatch,
      );
    }
    for (const vs of view.snapshots) {
      if (vs.status?.readyToUse) continue;
      const ns = vs.metadata.namespace!;
      let contentName = vs.spec.source.volumeSnapshotContentName;
      if (vs.spec.source.persistentVolumeClaimName) {
        const handle = this.claimHandle(view, ns, vs.spec.source.persistentVolumeClaimName);
        if (!handle) continue;
        contentName = `snapcontent-${vs.metadata.uid}`;
        if (!view.contents.some((c) => c.metadata.name === contentName)) {
          try {
            await view.api.custom.createClusterCustomObject({
              ...CRD.volumeSnapshotContent,
              body: {
                apiVersion: 'snapshot.storage.k8s.io/v1',
                kind: 'VolumeSnapshotContent',
                metadata: { name: contentName },
                spec: {
                  driver: SIM_DRIVER,
                  deletionPolicy: 'Delete',
                  source: { volumeHandle: handle },
                  volumeSnapshotRef: {
                    kind: 'VolumeSnapshot',
                    apiVersion: 'snapshot.storage.k8s.io/v1',
                    name: vs.metadata.name,
                    namespace: ns,
                    uid: vs.metadata.uid,
                  },
                  ...(vs.spec.volumeSnapshotClassName
                    ? { volumeSnapshotClassName: vs.spec.volumeSnapshotClassName }
                    : {}),
                },
              },
            });
          } catch (err) {
            if (!isConflict(err)) throw err;
          }
          continue; // its status is set next period, by the loop above
        }
      }
      const content = view.contents.find((c) => c.metadata.name === contentName);
      if (!content?.status?.readyToUse) continue;
      const snap = this.state.snapshots[content.status.snapshotHandle ?? ''];
      await view.api.custom.patchNamespacedCustomObjectStatus(
        {
          ...CRD.volumeSnapshot,
          namespace: ns,
          name: vs.metadata.name!,
          body: {
            status: {
              boundVolumeSnapshotContentName: contentName,
              readyToUse: true,
              restoreSize: snap?.sizeBytes ?? 0,
              creationTime: new Date(snap?.createdAt ?? now).toISOString(),
            },
          },
        },
        mergePatch,
      );
    }
    // Dynamic contents whose snapshot is gone follow it (their deletionPolicy is Delete).
    for (const content of view.contents) {
      const ref = content.spec.volumeSnapshotRef;
      if (content.spec.driver !== SIM_DRIVER || content.spec.deletionPolicy !== 'Delete' || !ref.name)
        continue;
      if (view.snapshots.some((s) => s.metadata.namespace === ref.namespace && s.metadata.name === ref.name))
        continue;
      if (!content.metadata.name?.startsWith('snapcontent-')) continue;
      delete this.state.snapshots[content.status?.snapshotHandle ?? ''];
      try {
        await view.api.custom.deleteClusterCustomObject({
          ...CRD.volumeSnapshotContent,
          name: content.metadata.name,
        });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  }

  /** The volumes that Running pods on this site write to in this period. */
  private volumesInUse(view: SiteView): Array<{ site: string; handle: string }> {
    const used: Array<{ site: string; handle: string }> = [];
    for (const pod of view.pods) {
      if (pod.status?.phase !== 'Running') continue;
      for (const v of pod.spec?.volumes ?? []) {
        const claim = v.persistentVolumeClaim?.claimName;
        const handle = claim ? this.claimHandle(view, pod.metadata!.namespace!, claim) : undefined;
        if (handle) used.push({ site: view.api.site, handle });
      }
    }
    return used;
  }
}

function cond(type: string, status: Condition['status'], reason: string, message: string): Condition {
  return { type, status, reason, message };
}

/** Keeps lastTransitionTime unless a condition's status changes (the metav1.Condition contract). */
function mergeConditions(
  previous: Condition[] | undefined,
  next: Condition[],
  generation: number,
  now: number,
): Condition[] {
  return next.map((c) => {
    const old = previous?.find((p) => p.type === c.type);
    const lastTransitionTime =
      old?.status === c.status && old.lastTransitionTime
        ? old.lastTransitionTime
        : new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z');
    return { ...c, observedGeneration: generation, lastTransitionTime };
  });
}

interface StatusWrite {
  namespace: string;
  name: string;
  status: Record<string, unknown>;
}

const SYNC_FIELDS = ['lastSyncTime', 'lastSyncDuration', 'lastSyncBytes'];

function withoutSync(status: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(status).filter(([k]) => !SYNC_FIELDS.includes(k)));
}

function publishedSync(vr: VolumeReplication): number | undefined {
  const at = vr.status?.['lastSyncTime'];
  return typeof at === 'string' ? Date.parse(at) : undefined;
}

/**
 * Whether `current` already shows every field of `next`. Compared with keys in order: the API
 * server hands custom objects back with their keys sorted, so comparing JSON text as written found
 * every condition changed, and every VolumeReplication's status was written again every period
 * (at 900 volumes per site, a period took half a minute).
 */
export function sameStatus(
  current: Record<string, unknown> | undefined,
  next: Record<string, unknown>,
): boolean {
  if (!current) return false;
  return Object.entries(next).every(([k, v]) => canonicalJson(current[k]) === canonicalJson(v));
}

function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

const GIB = 2 ** 30;

/**
 * What the array allocates for a request: whole GiB, rounded up (as arrays allocate in extents),
 * so a PV's capacity can exceed its claim's request, as on real storage.
 */
export function allocatedCapacity(request: string): string {
  const bytes = parseQuantity(request);
  const gib = Math.max(1, Math.ceil(bytes / GIB));
  return bytes === gib * GIB ? request : `${gib}Gi`;
}

/** The StorageClass parameters a CSI provisioner reads itself (secrets, fsType) and never passes on. */
const CSI_PARAM_PREFIX = 'csi.storage.k8s.io/';

/** Which secret parameter becomes which secret reference of the PV (as external-provisioner maps them). */
const SECRET_PARAMS = {
  'controller-publish': 'controllerPublishSecretRef',
  'node-stage': 'nodeStageSecretRef',
  'node-publish': 'nodePublishSecretRef',
  'controller-expand': 'controllerExpandSecretRef',
  'node-expand': 'nodeExpandSecretRef',
} as const;

/**
 * The PV's CSI source as a real CSI provisioner builds it from the claim's StorageClass: the
 * class's own parameters become the volume's context (csi.volumeAttributes: the simulated driver
 * returns them unchanged, as ceph-csi returns clusterID, pool, imageFeatures...); the reserved
 * `csi.storage.k8s.io/` ones set fsType (default ext4; none for a Block volume, which has no
 * filesystem) and the secret references, whose names may use the templates ${pvc.namespace},
 * ${pvc.name} and ${pv.name}.
 */
export function provisionedCsiSource(
  sc: k8s.V1StorageClass,
  pvc: k8s.V1PersistentVolumeClaim,
  pvName: string,
  handle: string,
): k8s.V1CSIPersistentVolumeSource {
  const params = sc.parameters ?? {};
  const resolve = (template: string) =>
    template
      .replaceAll('${pvc.namespace}', pvc.metadata?.namespace ?? '')
      .replaceAll('${pvc.name}', pvc.metadata?.name ?? '')
      .replaceAll('${pv.name}', pvName);
  const csi: k8s.V1CSIPersistentVolumeSource = { driver: SIM_DRIVER, volumeHandle: handle };
  if (pvc.spec?.volumeMode !== 'Block') csi.fsType = params[`${CSI_PARAM_PREFIX}fstype`] ?? 'ext4';
  for (const [param, field] of Object.entries(SECRET_PARAMS)) {
    const name = params[`${CSI_PARAM_PREFIX}${param}-secret-name`];
    const namespace = params[`${CSI_PARAM_PREFIX}${param}-secret-namespace`];
    if (name && namespace) csi[field] = { name: resolve(name), namespace: resolve(namespace) };
  }
  const attributes = Object.fromEntries(
    Object.entries(params).filter(([k]) => !k.startsWith(CSI_PARAM_PREFIX)),
  );
  if (Object.keys(attributes).length > 0) csi.volumeAttributes = attributes;
  return csi;
}

const UNITS: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  k: 1e3,
};

export function parseQuantity(q: string): number {
  const m = /^(\d+(?:\.\d+)?)([A-Za-z]*)$/.exec(q.trim());
  if (!m) return 0;
  return Math.round(Number(m[1]) * (UNITS[m[2] ?? ''] ?? 1));
}
