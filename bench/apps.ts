/**
 * The benchmark's applications: N namespaces, each a StatefulSet with K replicated claims and its
 * Service, active on one site and standing by on the other, with a runbook in the lab's runbook
 * directory. Tiers cycle 1, 2, 3 and each application above tier 1 depends on the one before it,
 * so that a site operation moves them in up to three waves.
 */
import type * as k8s from '@kubernetes/client-node';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inBatches } from '../common/concurrency.ts';
import { isNotFound, type SiteApi } from '../common/k8s.ts';
import { waitUntil } from '../common/wait.ts';
import { seedReplicatedApp } from '../lab/seed.ts';

export interface BenchApp {
  name: string;
  tier: number;
  dependsOn?: string;
  claims: string[];
}

const LABELS = (app: string) => ({ 'app.kubernetes.io/part-of': app, 'app.kubernetes.io/name': 'db' });

/** The applications of a run: `prefix-001` … (their names are their namespaces). */
export function benchApps(prefix: string, n: number, pvcsPerApp: number): BenchApp[] {
  return Array.from({ length: n }, (_, i) => {
    const name = `${prefix}-${String(i + 1).padStart(3, '0')}`;
    const tier = 1 + (i % 3);
    return {
      name,
      tier,
      ...(tier > 1 ? { dependsOn: `${prefix}-${String(i).padStart(3, '0')}` } : {}),
      claims: Array.from({ length: pvcsPerApp }, (_, k) => `data${k}-db-0`),
    };
  });
}

export function appObjects(app: BenchApp): k8s.KubernetesObject[] {
  const labels = LABELS(app.name);
  const ns = app.name;
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'db', namespace: ns, labels },
      spec: { clusterIP: 'None', selector: { 'app.kubernetes.io/name': 'db' }, ports: [{ port: 3306 }] },
    },
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
                image: 'mysql:8.4',
                volumeMounts: app.claims.map((_, k) => ({ name: `data${k}`, mountPath: `/data${k}` })),
              },
            ],
          },
        },
        volumeClaimTemplates: app.claims.map((_, k) => ({
          metadata: { name: `data${k}`, labels },
          spec: {
            accessModes: ['ReadWriteOnce'],
            storageClassName: 'sim-replicated',
            resources: { requests: { storage: '1Gi' } },
          },
        })),
      },
    },
  ] as k8s.KubernetesObject[];
}

export function appRunbook(
  app: BenchApp,
  sites: { primary: string; secondary: string },
  rpo = '30s',
): string {
  return `apiVersion: pivot.dev/v1alpha1
kind: Runbook
metadata: { name: ${app.name} }
spec:
  namespaces: [${app.name}]
  sites: { primary: ${sites.primary}, secondary: ${sites.secondary} }
  workloads:
    - { kind: StatefulSet, name: db, startOrder: 1 }
  volumes:
    - name: data
      selector: { matchLabels: { app.kubernetes.io/part-of: ${app.name} } }
      replication: { provider: csi-addons, volumeReplicationClass: sim-replication }
  healthChecks:
    - { name: ready, kind: WorkloadsReady, timeout: 5m }
  objectives: { rpo: ${rpo}, rto: 10m }
  approval: { failover: none }
  priority: { tier: ${app.tier}${app.dependsOn ? `, dependsOn: [${app.dependsOn}]` : ''} }
`;
}

/**
 * Seeds the applications active on `active` (Ready there, every claim replicated once) and
 * standing by on `standby`. With `runbookDir`, writes each one's runbook there.
 */
export async function seedApps(
  active: SiteApi,
  standby: SiteApi,
  apps: BenchApp[],
  options: {
    runbookDir?: string;
    rpo?: string;
    concurrency?: number;
    progress?: (done: number) => void;
  } = {},
): Promise<void> {
  let done = 0;
  await inBatches(apps, options.concurrency ?? 8, async (app) => {
    await seedReplicatedApp(active, standby, {
      namespace: app.name,
      partOf: app.name,
      objects: appObjects(app),
      claims: app.claims,
    });
    await waitUntil(
      `${app.name}/db to be Ready on ${active.site}`,
      async () => {
        const sts = await active.apps.readNamespacedStatefulSet({ name: 'db', namespace: app.name });
        return (sts.status?.readyReplicas ?? 0) >= 1;
      },
      { timeoutMs: 180_000, intervalMs: 500 },
    );
    if (options.runbookDir) {
      writeFileSync(
        join(options.runbookDir, `${app.name}.yaml`),
        appRunbook(app, { primary: active.site, secondary: standby.site }, options.rpo),
      );
    }
    options.progress?.((done += 1));
  });
}

/**
 * Removes the applications: their runbooks first (so no worker acts on them any more), then their
 * namespaces on both sites and the PVs that held their claims (Retain keeps them otherwise).
 */
export async function removeApps(sites: SiteApi[], apps: BenchApp[], runbookDir?: string): Promise<void> {
  if (runbookDir) for (const app of apps) rmSync(join(runbookDir, `${app.name}.yaml`), { force: true });
  const names = new Set(apps.map((a) => a.name));
  for (const api of sites) {
    await inBatches(apps, 16, async (app) => {
      await api.core.deleteNamespace({ name: app.name }).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
    });
    await waitUntil(
      `the benchmark's namespaces on ${api.site} to be gone`,
      async () => {
        const left = (await api.core.listNamespace()).items.filter((n) => names.has(n.metadata?.name ?? ''));
        return left.length === 0 || `${left.length} left`;
      },
      { timeoutMs: 300_000, intervalMs: 1000 },
    );
    const pvs = (await api.core.listPersistentVolume()).items.filter((pv) =>
      names.has(pv.spec?.claimRef?.namespace ?? ''),
    );
    await inBatches(pvs, 16, async (pv) => {
      await api.core.deletePersistentVolume({ name: pv.metadata!.name! }).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
    });
  }
}
