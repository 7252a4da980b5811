/**
 * Pivot's processes run on the lab's sites as the chart's accounts (lab/identities.ts), and the
 * sites' RBAC holds them to the chart's rules. That the rules are enough is shown by every other lab
 * suite, which runs under them; here, that they are no more than that: the site API sees the
 * account, not the admin, and a call outside the rules is refused.
 */
import * as k8s from '@kubernetes/client-node';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { connectConfiguredSite, connectSite, type SiteApi } from '../../common/k8s.ts';
import { loadConfig } from '../../config/load.ts';
import { identityRules, IDENTITIES, PIVOT_NAMESPACE } from '../../lab/identities.ts';
import { lab } from './helpers.ts';

function asConfigured(configFile: string, site: string): SiteApi {
  return connectConfiguredSite(loadConfig(configFile).sites.find((x) => x.name === site)!);
}

const reader = asConfigured(lab.layout.configFile, 'dc-a');
const siteWorker = asConfigured(lab.layout.workerConfigFiles['dc-a'], 'dc-a');

async function whoAmI(api: SiteApi): Promise<string | undefined> {
  const review = await api.client(k8s.AuthenticationV1Api).createSelfSubjectReview({
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
  });
  return review.status?.userInfo?.username;
}

async function refusal(call: () => Promise<unknown>): Promise<number | 'allowed'> {
  try {
    await call();
    return 'allowed';
  } catch (err) {
    if (err instanceof k8s.ApiException) return err.code;
    throw err;
  }
}

describe("Pivot's accounts on a site", () => {
  it('reach the site as the chart’s ServiceAccounts, never as its admin', async () => {
    expect(await whoAmI(reader)).toBe(
      `system:serviceaccount:${PIVOT_NAMESPACE}:${IDENTITIES.reader.account}`,
    );
    expect(await whoAmI(siteWorker)).toBe(
      `system:serviceaccount:${PIVOT_NAMESPACE}:${IDENTITIES.siteWorker.account}`,
    );
    // Each site worker's configuration names the readers' account for the other site.
    const other = asConfigured(lab.layout.workerConfigFiles['dc-a'], 'dc-b');
    expect(await whoAmI(other)).toBe(`system:serviceaccount:${PIVOT_NAMESPACE}:${IDENTITIES.reader.account}`);
  });

  it("a site worker in its site's cluster uses the pod's ServiceAccount", async () => {
    // A pod's view: the account's token and the site's CA where the kubelet mounts them, and the
    // API server's address in the environment.
    const root = mkdtempSync(join(tmpdir(), 'pivot-pod-'));
    const mount = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(mount, { recursive: true });
    const kubeconfig = new k8s.KubeConfig();
    kubeconfig.loadFromFile(loadConfig(lab.layout.workerConfigFiles['dc-a']).sites[0]!.kubeconfig!);
    writeFileSync(join(mount, 'token'), kubeconfig.getCurrentUser()!.token!);
    writeFileSync(
      join(mount, 'ca.crt'),
      readFileSync(join(dirname(lab.kubeconfigFile('dc-a')), 'pki', 'ca.crt')),
    );
    const saved = {
      host: process.env['KUBERNETES_SERVICE_HOST'],
      port: process.env['KUBERNETES_SERVICE_PORT'],
    };
    try {
      expect(() => connectConfiguredSite({ name: 'dc-a', inCluster: true }, root)).toThrow(
        /does not run in a pod/,
      );
      process.env['KUBERNETES_SERVICE_HOST'] = '127.0.0.1';
      process.env['KUBERNETES_SERVICE_PORT'] = String(lab.layout.ports.apiProxy['dc-a']);
      const inPod = connectConfiguredSite({ name: 'dc-a', inCluster: true }, root);
      expect(await whoAmI(inPod)).toBe(
        `system:serviceaccount:${PIVOT_NAMESPACE}:${IDENTITIES.siteWorker.account}`,
      );
    } finally {
      for (const [k, v] of [
        ['KUBERNETES_SERVICE_HOST', saved.host],
        ['KUBERNETES_SERVICE_PORT', saved.port],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('the readers read what the status reads, and change nothing', async () => {
    expect((await reader.core.listPersistentVolume()).items.length).toBeGreaterThan(0);
    expect(await refusal(() => reader.core.listSecretForAllNamespaces())).toBe(403);
    expect(await refusal(() => reader.core.listConfigMapForAllNamespaces())).toBe(403);
    expect(
      await refusal(() =>
        reader.apps.patchNamespacedStatefulSet(
          { name: 'mysql', namespace: 'orders', body: { spec: { replicas: 0 } } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        ),
      ),
    ).toBe(403);
  });

  it('the site worker does its steps and nothing beyond them', async () => {
    expect(
      (await siteWorker.core.listNamespacedPersistentVolumeClaim({ namespace: 'orders' })).items.length,
    ).toBeGreaterThan(0);
    // No Secrets anywhere: a fence's credentials are the CSI driver's to read, not Pivot's.
    expect(await refusal(() => siteWorker.core.listSecretForAllNamespaces())).toBe(403);
    expect(
      await refusal(() =>
        siteWorker.core.readNamespacedSecret({ name: 'sim-array-credentials', namespace: 'kube-system' }),
      ),
    ).toBe(403);
    // No deleting the data or the workloads: a failover rebinds and scales, it never deletes them.
    const pv = (await siteWorker.core.listPersistentVolume()).items[0]!.metadata!.name!;
    expect(await refusal(() => siteWorker.core.deletePersistentVolume({ name: pv, dryRun: 'All' }))).toBe(
      403,
    );
    expect(
      await refusal(() =>
        siteWorker.apps.deleteNamespacedStatefulSet({ name: 'mysql', namespace: 'orders', dryRun: 'All' }),
      ),
    ).toBe(403);
    // No way to grant itself more.
    expect(
      await refusal(() =>
        siteWorker.client(k8s.RbacAuthorizationV1Api).createClusterRoleBinding({
          body: {
            metadata: { name: 'pivot-escalation' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
            subjects: [
              { kind: 'ServiceAccount', name: IDENTITIES.siteWorker.account, namespace: PIVOT_NAMESPACE },
            ],
          },
          dryRun: 'All',
        }),
      ),
    ).toBe(403);
  });

  it('the roles on the site are the chart’s rules, word for word', async () => {
    const rbac = connectSite('dc-a', lab.kubeconfigFile('dc-a')).client(k8s.RbacAuthorizationV1Api);
    for (const identity of ['siteWorker', 'reader'] as const) {
      const role = await rbac.readClusterRole({ name: IDENTITIES[identity].account });
      const normal = (rules: k8s.V1PolicyRule[]) =>
        rules.map((r) => ({ apiGroups: r.apiGroups, resources: r.resources, verbs: r.verbs }));
      expect(normal(role.rules ?? [])).toEqual(normal(identityRules(identity)));
      for (const r of role.rules ?? []) {
        for (const word of [...(r.apiGroups ?? []), ...(r.resources ?? []), ...r.verbs])
          expect(word).not.toBe('*');
      }
    }
  });
});
