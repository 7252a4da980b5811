/**
 * One site's Kubernetes API, as the lab, the storage simulator and (later) the site workers use it:
 * typed clients built from that site's kubeconfig only, and the small helpers every caller needs
 * (404 detection, merge-patch options, the CRD coordinates Pivot and the simulator share).
 */
import * as k8s from '@kubernetes/client-node';
import { retryingConfiguration } from './k8s-retry.ts';

export interface SiteApi {
  readonly site: string;
  readonly kubeConfig: k8s.KubeConfig;
  readonly core: k8s.CoreV1Api;
  readonly apps: k8s.AppsV1Api;
  readonly storage: k8s.StorageV1Api;
  readonly custom: k8s.CustomObjectsApi;
  readonly objects: k8s.KubernetesObjectApi;
  /** Any other API group's client, on the same retrying HTTP layer. */
  client<T>(type: new (configuration: k8s.Configuration) => T): T;
}

/** The generic object client, with the kubeconfig's namespace as its default. */
class ObjectApi extends k8s.KubernetesObjectApi {
  static over(configuration: k8s.Configuration, kubeConfig: k8s.KubeConfig): k8s.KubernetesObjectApi {
    const api = new ObjectApi(configuration);
    api.setDefaultNamespace(kubeConfig);
    return api;
  }
}

/**
 * The User-Agent of this process's Kubernetes requests: `pivot-<component>` (api, worker-control,
 * worker-dc-a, ...), set once at start by each process, so that a site's audit log and the lab's
 * API proxy tell Pivot's parts from each other and from everyone else.
 */
let userAgent = 'pivot';

export function identifyProcess(component: string): void {
  userAgent = `pivot-${component}`;
}

export function connectSite(site: string, kubeconfigPath: string, context?: string): SiteApi {
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  if (context) kubeConfig.setCurrentContext(context);
  return siteApi(site, kubeConfig);
}

/** How the configuration says to reach a site: a kubeconfig (and context), or the pod's ServiceAccount. */
export interface SiteAccess {
  name: string;
  kubeconfig?: string;
  context?: string;
  inCluster?: boolean;
}

/**
 * A configured site's API, with the credentials its configuration names. `podRoot` is where the
 * pod's ServiceAccount files are mounted from (`/` in a pod; a test's directory otherwise).
 */
export function connectConfiguredSite(site: SiteAccess, podRoot = ''): SiteApi {
  if (site.inCluster) {
    if (!process.env['KUBERNETES_SERVICE_HOST'] || !process.env['KUBERNETES_SERVICE_PORT']) {
      throw new Error(
        `site ${site.name}: inCluster is set, but this process does not run in a pod (KUBERNETES_SERVICE_HOST/PORT are not set): name a kubeconfig for this site instead`,
      );
    }
    const kubeConfig = new k8s.KubeConfig();
    // The pod's token, CA and the API server's in-cluster address (KUBERNETES_SERVICE_HOST/PORT);
    // the token file is re-read as the kubelet rotates it.
    kubeConfig.loadFromCluster(podRoot);
    return siteApi(site.name, kubeConfig);
  }
  if (!site.kubeconfig) throw new Error(`site ${site.name}: no kubeconfig and not inCluster`);
  return connectSite(site.name, site.kubeconfig, site.context);
}

function siteApi(site: string, kubeConfig: k8s.KubeConfig): SiteApi {
  // Every client rides out transient refusals and bounds each request (common/k8s-retry.ts).
  const config = retryingConfiguration(kubeConfig, undefined, userAgent);
  return {
    site,
    kubeConfig,
    core: new k8s.CoreV1Api(config),
    apps: new k8s.AppsV1Api(config),
    storage: new k8s.StorageV1Api(config),
    custom: new k8s.CustomObjectsApi(config),
    objects: ObjectApi.over(config, kubeConfig),
    client: (type) => new type(config),
  };
}

export function isApiError(err: unknown, code: number): boolean {
  return err instanceof k8s.ApiException && err.code === code;
}

export const isNotFound = (err: unknown): boolean => isApiError(err, 404);
export const isConflict = (err: unknown): boolean => isApiError(err, 409);

/** Request options for a JSON merge patch (the client's default content type is JSON Patch). */
export const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

/** The field manager of every server-side apply Pivot and its lab make. */
export const FIELD_MANAGER = 'pivot';

/** Server-side apply of a whole object as Pivot's field manager (forcing conflicts): converges on re-run. */
export async function serverSideApply(api: SiteApi, object: k8s.KubernetesObject): Promise<void> {
  await api.objects.patch(
    object,
    undefined,
    undefined,
    FIELD_MANAGER,
    true,
    k8s.PatchStrategy.ServerSideApply,
  );
}

export interface CrdRef {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
}

/** csi-addons, external-snapshotter and external-dns coordinates (see lab/crds/). */
export const CRD = {
  volumeReplication: {
    group: 'replication.storage.openshift.io',
    version: 'v1alpha1',
    plural: 'volumereplications',
  },
  volumeReplicationClass: {
    group: 'replication.storage.openshift.io',
    version: 'v1alpha1',
    plural: 'volumereplicationclasses',
  },
  networkFence: { group: 'csiaddons.openshift.io', version: 'v1alpha1', plural: 'networkfences' },
  dnsEndpoint: { group: 'externaldns.k8s.io', version: 'v1alpha1', plural: 'dnsendpoints' },
  volumeSnapshot: { group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshots' },
  volumeSnapshotContent: {
    group: 'snapshot.storage.k8s.io',
    version: 'v1',
    plural: 'volumesnapshotcontents',
  },
} as const satisfies Record<string, CrdRef>;

/** A custom object as the dynamic client returns it. */
export interface CustomObject<Spec = Record<string, unknown>, Status = Record<string, unknown>> {
  apiVersion: string;
  kind: string;
  metadata: k8s.V1ObjectMeta;
  spec: Spec;
  status?: Status;
}

export async function listCustom<T extends CustomObject>(api: SiteApi, crd: CrdRef): Promise<T[]> {
  const list = (await api.custom.listCustomObjectForAllNamespaces({ ...crd })) as { items: T[] };
  return list.items;
}

export async function listClusterCustom<T extends CustomObject>(api: SiteApi, crd: CrdRef): Promise<T[]> {
  const list = (await api.custom.listClusterCustomObject({ ...crd })) as { items: T[] };
  return list.items;
}

/** Nodes whose Ready condition is True. */
export function readyNodeCount(nodes: k8s.V1Node[]): number {
  return nodes.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
    .length;
}
