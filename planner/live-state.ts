/**
 * What the drift check and the planner know of the sites: a read-only snapshot of the objects a
 * runbook names, taken from each site's own API. Plain data (JSON-serialisable), so that checks
 * and plans are pure functions of (runbooks, snapshot) and tested on fixtures.
 */
import * as k8s from '@kubernetes/client-node';
import { CRD, type SiteApi, isNotFound } from '../common/k8s.ts';

export interface ClaimState {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  storageClassName?: string;
  accessModes: string[];
  phase?: string;
  volumeName?: string;
  requestedStorage?: string;
}

export interface VolumeState {
  name: string;
  volumeHandle?: string;
  driver?: string;
  reclaimPolicy?: string;
  accessModes: string[];
  phase?: string;
  claim?: { namespace: string; name: string };
  storageClassName?: string;
}

export interface ReplicationState {
  namespace: string;
  name: string;
  desired: string;
  replicationClass?: string;
  state?: string;
  /** metadata.generation === status.observedGeneration: the status describes the current spec. */
  current: boolean;
  claim?: string;
  replicationHandle?: string;
  lastSyncTime?: string;
  conditions: Record<string, { status: string; reason?: string; message?: string }>;
}

export interface WorkloadState {
  kind: 'StatefulSet' | 'Deployment';
  namespace: string;
  name: string;
  replicas: number;
  readyReplicas: number;
}

export interface SiteSnapshot {
  site: string;
  reachable: boolean;
  /** Why it was not reachable. */
  error?: string;
  crds: string[];
  storageClasses: Array<{ name: string; provisioner: string; reclaimPolicy: string }>;
  claims: ClaimState[];
  volumes: VolumeState[];
  replications: ReplicationState[];
  workloads: WorkloadState[];
  services: Array<{ namespace: string; name: string }>;
}

export interface LiveState {
  /** When the snapshot was taken (ms since the epoch): lags are computed against it. */
  takenAt: number;
  sites: Record<string, SiteSnapshot>;
  /**
   * What the witness records per application, when it could be read: its active site is
   * authoritative (after an unplanned failover the returning old primary still reports Primary).
   */
  witness?: Record<string, { activeSite?: string; epoch: number; fencedSites: string[] }>;
}

/** The CRDs a csi-addons replicated application needs on both sites. */
export const REQUIRED_CRDS = [
  `${CRD.volumeReplication.plural}.${CRD.volumeReplication.group}`,
  `${CRD.volumeReplicationClass.plural}.${CRD.volumeReplicationClass.group}`,
  `${CRD.networkFence.plural}.${CRD.networkFence.group}`,
];

function claimState(pvc: k8s.V1PersistentVolumeClaim): ClaimState {
  return {
    namespace: pvc.metadata?.namespace ?? '',
    name: pvc.metadata?.name ?? '',
    labels: pvc.metadata?.labels ?? {},
    ...(pvc.spec?.storageClassName ? { storageClassName: pvc.spec.storageClassName } : {}),
    accessModes: pvc.spec?.accessModes ?? [],
    ...(pvc.status?.phase ? { phase: pvc.status.phase } : {}),
    ...(pvc.spec?.volumeName ? { volumeName: pvc.spec.volumeName } : {}),
    ...(pvc.spec?.resources?.requests?.['storage']
      ? { requestedStorage: pvc.spec.resources.requests['storage'] }
      : {}),
  };
}

function volumeState(pv: k8s.V1PersistentVolume): VolumeState {
  const ref = pv.spec?.claimRef;
  return {
    name: pv.metadata?.name ?? '',
    ...(pv.spec?.csi ? { volumeHandle: pv.spec.csi.volumeHandle, driver: pv.spec.csi.driver } : {}),
    ...(pv.spec?.persistentVolumeReclaimPolicy
      ? { reclaimPolicy: pv.spec.persistentVolumeReclaimPolicy }
      : {}),
    accessModes: pv.spec?.accessModes ?? [],
    ...(pv.status?.phase ? { phase: pv.status.phase } : {}),
    ...(ref?.name ? { claim: { namespace: ref.namespace ?? '', name: ref.name } } : {}),
    ...(pv.spec?.storageClassName ? { storageClassName: pv.spec.storageClassName } : {}),
  };
}

interface RawReplication {
  metadata: k8s.V1ObjectMeta;
  spec: {
    replicationState: string;
    volumeReplicationClass?: string;
    dataSource?: { kind?: string; name?: string };
    replicationHandle?: string;
  };
  status?: {
    state?: string;
    observedGeneration?: number;
    lastSyncTime?: string;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
  };
}

function replicationState(vr: RawReplication): ReplicationState {
  return {
    namespace: vr.metadata.namespace ?? '',
    name: vr.metadata.name ?? '',
    desired: vr.spec.replicationState,
    ...(vr.spec.volumeReplicationClass ? { replicationClass: vr.spec.volumeReplicationClass } : {}),
    ...(vr.status?.state ? { state: vr.status.state } : {}),
    current: vr.status?.observedGeneration === vr.metadata.generation,
    ...(vr.spec.dataSource?.kind === 'PersistentVolumeClaim' && vr.spec.dataSource.name
      ? { claim: vr.spec.dataSource.name }
      : {}),
    ...(vr.spec.replicationHandle ? { replicationHandle: vr.spec.replicationHandle } : {}),
    ...(vr.status?.lastSyncTime ? { lastSyncTime: vr.status.lastSyncTime } : {}),
    conditions: Object.fromEntries(
      (vr.status?.conditions ?? []).map((c) => [
        c.type,
        {
          status: c.status,
          ...(c.reason ? { reason: c.reason } : {}),
          ...(c.message ? { message: c.message } : {}),
        },
      ]),
    ),
  };
}

async function listOrEmpty<T>(list: () => Promise<{ items: T[] }>): Promise<T[]> {
  try {
    return (await list()).items;
  } catch (err) {
    if (isNotFound(err)) return []; // the CRD is not installed: reported as a missing CRD
    throw err;
  }
}

/**
 * Up to this many namespaces, a snapshot lists each one's objects (five requests a namespace);
 * beyond, it lists each kind across the site once and keeps the namespaces' objects (five requests
 * in all), so that the status of hundreds of applications costs what the status of a few does.
 */
export const PER_NAMESPACE_LISTS_UP_TO = 4;

interface NamespaceLists {
  pvcs: k8s.V1PersistentVolumeClaim[];
  vrs: RawReplication[];
  sts: k8s.V1StatefulSet[];
  deps: k8s.V1Deployment[];
  svcs: k8s.V1Service[];
}

async function listIn(api: SiteApi, namespace: string): Promise<NamespaceLists> {
  const [pvcs, vrs, sts, deps, svcs] = await Promise.all([
    listOrEmpty(() => api.core.listNamespacedPersistentVolumeClaim({ namespace })),
    listOrEmpty(
      async () =>
        (await api.custom.listNamespacedCustomObject({ ...CRD.volumeReplication, namespace })) as {
          items: RawReplication[];
        },
    ),
    listOrEmpty(() => api.apps.listNamespacedStatefulSet({ namespace })),
    listOrEmpty(() => api.apps.listNamespacedDeployment({ namespace })),
    listOrEmpty(() => api.core.listNamespacedService({ namespace })),
  ]);
  return { pvcs, vrs, sts, deps, svcs };
}

/** The same as listIn for each of `namespaces`, from one list of each kind across the site. */
async function listAcross(api: SiteApi, namespaces: string[]): Promise<NamespaceLists[]> {
  const [pvcs, vrs, sts, deps, svcs] = await Promise.all([
    listOrEmpty(() => api.core.listPersistentVolumeClaimForAllNamespaces()),
    listOrEmpty(
      async () =>
        (await api.custom.listCustomObjectForAllNamespaces({ ...CRD.volumeReplication })) as {
          items: RawReplication[];
        },
    ),
    listOrEmpty(() => api.apps.listStatefulSetForAllNamespaces()),
    listOrEmpty(() => api.apps.listDeploymentForAllNamespaces()),
    listOrEmpty(() => api.core.listServiceForAllNamespaces()),
  ]);
  const byNamespace = <T extends { metadata?: { namespace?: string } }>(items: T[]) => {
    const groups = new Map<string, T[]>();
    for (const item of items) {
      const ns = item.metadata?.namespace ?? '';
      const group = groups.get(ns);
      if (group) group.push(item);
      else groups.set(ns, [item]);
    }
    return (ns: string) => groups.get(ns) ?? [];
  };
  const [p, v, s, d, sv] = [
    byNamespace(pvcs),
    byNamespace(vrs),
    byNamespace(sts),
    byNamespace(deps),
    byNamespace(svcs),
  ];
  return namespaces.map((ns) => ({ pvcs: p(ns), vrs: v(ns), sts: s(ns), deps: d(ns), svcs: sv(ns) }));
}

/** Reads what the runbooks' namespaces hold on one site. An unreachable site is recorded, not thrown. */
export async function observeSite(
  api: SiteApi,
  namespaces: string[],
  perNamespaceUpTo = PER_NAMESPACE_LISTS_UP_TO,
): Promise<SiteSnapshot> {
  return (await readSite(api, namespaces, 'plan', perNamespaceUpTo)).snapshot;
}

/**
 * What a step or the site guard needs of an application's volumes, at a cost that does not grow
 * with the site: the namespaces' objects, and only the PVs their claims are bound to (read by
 * name; past PER_NAMESPACE_LISTS_UP_TO namespaces, one list of the site's PVs is cheaper), given
 * raw too (for what the snapshot does not keep of them). No CRDs, no storage classes:
 * those are for plans and drift. A site holds every protected application's PVs, so listing them
 * all for each application would make a site operation's reads grow with the square of its size.
 */
export async function observeClaimedVolumes(
  api: SiteApi,
  namespaces: string[],
): Promise<{ snapshot: SiteSnapshot; pvs: k8s.V1PersistentVolume[] }> {
  return readSite(api, namespaces, 'claimed', PER_NAMESPACE_LISTS_UP_TO);
}

async function readSite(
  api: SiteApi,
  namespaces: string[],
  scope: 'plan' | 'claimed',
  perNamespaceUpTo: number,
): Promise<{ snapshot: SiteSnapshot; pvs: k8s.V1PersistentVolume[] }> {
  const empty: SiteSnapshot = {
    site: api.site,
    reachable: false,
    crds: [],
    storageClasses: [],
    claims: [],
    volumes: [],
    replications: [],
    workloads: [],
    services: [],
  };
  try {
    const ext = api.client(k8s.ApiextensionsV1Api);
    const [crds, classes, allPvs] =
      scope === 'plan'
        ? await Promise.all([
            ext.listCustomResourceDefinition(),
            api.storage.listStorageClass(),
            api.core.listPersistentVolume(),
          ])
        : [undefined, undefined, undefined];
    const snapshot: SiteSnapshot = {
      ...empty,
      reachable: true,
      crds: crds?.items.map((c) => c.metadata?.name ?? '') ?? [],
      storageClasses:
        classes?.items.map((c) => ({
          name: c.metadata?.name ?? '',
          provisioner: c.provisioner,
          reclaimPolicy: c.reclaimPolicy ?? 'Delete',
        })) ?? [],
    };
    const lists =
      namespaces.length > perNamespaceUpTo
        ? await listAcross(api, namespaces)
        : await Promise.all(namespaces.map((namespace) => listIn(api, namespace)));
    for (const [i, namespace] of namespaces.entries()) {
      const { pvcs, vrs, sts, deps, svcs } = lists[i]!;
      snapshot.claims.push(...pvcs.map(claimState));
      snapshot.replications.push(...vrs.map(replicationState));
      for (const [kind, items] of [
        ['StatefulSet', sts],
        ['Deployment', deps],
      ] as const) {
        for (const w of items as Array<k8s.V1StatefulSet | k8s.V1Deployment>) {
          snapshot.workloads.push({
            kind,
            namespace,
            name: w.metadata?.name ?? '',
            replicas: w.spec?.replicas ?? 0,
            readyReplicas: w.status?.readyReplicas ?? 0,
          });
        }
      }
      snapshot.services.push(...svcs.map((s) => ({ namespace, name: s.metadata?.name ?? '' })));
    }
    // A few namespaces: their claims' PVs by name. Many (the site guard's pass): one list is cheaper.
    const pvs =
      allPvs?.items ??
      (namespaces.length > perNamespaceUpTo
        ? (await api.core.listPersistentVolume()).items
        : await readClaimedPvs(
            api,
            lists.flatMap((l) => l.pvcs),
          ));
    snapshot.volumes = pvs.map(volumeState);
    return { snapshot, pvs };
  } catch (err) {
    // Refused, not unreachable: say whose permission is missing, not just that the site is silent.
    const error =
      err instanceof k8s.ApiException && (err.code === 401 || err.code === 403)
        ? `${api.site} refused Pivot's credentials (HTTP ${err.code}): bind this process's account to its role from the chart there (deploy/helm/pivot/files/rbac/)`
        : err instanceof Error
          ? err.message
          : String(err);
    return { snapshot: { ...empty, error }, pvs: [] };
  }
}

/** The PVs the claims are bound to; one deleted meanwhile is left out, as a list would. */
async function readClaimedPvs(
  api: SiteApi,
  pvcs: k8s.V1PersistentVolumeClaim[],
): Promise<k8s.V1PersistentVolume[]> {
  const names = [...new Set(pvcs.map((c) => c.spec?.volumeName).filter((n): n is string => !!n))];
  const read = await Promise.all(
    names.map((name) =>
      api.core.readPersistentVolume({ name }).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      }),
    ),
  );
  return read.filter((pv): pv is k8s.V1PersistentVolume => !!pv);
}

export async function observe(apis: SiteApi[], namespaces: string[], now = Date.now()): Promise<LiveState> {
  const snapshots = await Promise.all(apis.map((api) => observeSite(api, namespaces)));
  return { takenAt: now, sites: Object.fromEntries(snapshots.map((s) => [s.site, s])) };
}
