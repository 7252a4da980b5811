/**
 * Pivot's identities on the lab's sites, as the Helm chart installs them in a datacenter: a
 * ServiceAccount for the site worker and one for the readers (the API and the control worker),
 * bound to ClusterRoles whose rules are the chart's own files (deploy/helm/pivot/files/rbac/).
 * Pivot's processes reach each site through the API proxy with these accounts' tokens, so every
 * lab suite runs under the chart's least-privilege RBAC, never as the site's admin: a permission
 * the chart forgets fails the suite that needs it.
 */
import type * as k8s from '@kubernetes/client-node';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { REPO_ROOT } from './layout.ts';
import { serverSideApply, type SiteApi } from '../common/k8s.ts';

export const PIVOT_NAMESPACE = 'pivot-system';

/** An identity Pivot's processes use on a site, and the chart's rule file its role is made of. */
export const IDENTITIES = {
  siteWorker: { account: 'pivot-site-worker', rules: 'site-worker.yaml' },
  reader: { account: 'pivot-reader', rules: 'api-reader.yaml' },
} as const;
export type Identity = keyof typeof IDENTITIES;

const RBAC_DIR = join(REPO_ROOT, 'deploy', 'helm', 'pivot', 'files', 'rbac');

/** The chart's rules for one identity, as Kubernetes reads them. */
export function identityRules(identity: Identity): k8s.V1PolicyRule[] {
  return parse(readFileSync(join(RBAC_DIR, IDENTITIES[identity].rules), 'utf8')) as k8s.V1PolicyRule[];
}

/** Creates (or converges) the namespace, accounts, roles and bindings on one site, as its admin. */
export async function installIdentities(admin: SiteApi): Promise<void> {
  await serverSideApply(admin, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: PIVOT_NAMESPACE } });
  for (const identity of Object.keys(IDENTITIES) as Identity[]) {
    const name = IDENTITIES[identity].account;
    await serverSideApply(admin, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name, namespace: PIVOT_NAMESPACE },
    });
    await serverSideApply(admin, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name },
      rules: identityRules(identity),
    } as k8s.V1ClusterRole);
    await serverSideApply(admin, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: PIVOT_NAMESPACE }],
    } as k8s.V1ClusterRoleBinding);
  }
}

/** A week: a lab lives for days; a token is renewed once it has less than a day left. */
const TOKEN_SECONDS = 7 * 24 * 3600;
const RENEW_BEFORE_MS = 24 * 3600 * 1000;

interface Kubeconfig {
  clusters: Array<{ name: string; cluster: { server: string } & Record<string, unknown> }>;
  contexts: Array<{ name: string; context: { cluster: string; user: string } }>;
  users: Array<{ name: string; user: Record<string, unknown> }>;
  'current-context': string;
}

/** When a ServiceAccount token expires (its JWT's `exp`), or 0 when it cannot be read. */
export function tokenExpiresAt(token: string): number {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as {
      exp?: number;
    };
    return (payload.exp ?? 0) * 1000;
  } catch {
    return 0;
  }
}

/**
 * A kubeconfig for `identity` on a site: the site's own cluster entry and context name, `server`
 * as given (the API proxy), and the account's token instead of the admin's client certificate.
 * The file is kept while its token has more than a day left, so that rewriting the lab's
 * configuration does not need the site to answer (a killed site keeps its workers' credentials).
 */
export async function identityKubeconfig(
  admin: SiteApi,
  siteKubeconfig: string,
  server: string,
  identity: Identity,
  file: string,
): Promise<string> {
  if (existsSync(file)) {
    const kept = parse(readFileSync(file, 'utf8')) as Kubeconfig;
    const token = kept.users[0]?.user['token'];
    if (typeof token === 'string' && tokenExpiresAt(token) - Date.now() > RENEW_BEFORE_MS) return file;
  }
  const answer = await admin.core.createNamespacedServiceAccountToken({
    name: IDENTITIES[identity].account,
    namespace: PIVOT_NAMESPACE,
    body: { spec: { expirationSeconds: TOKEN_SECONDS, audiences: [] } },
  });
  const token = answer.status?.token;
  if (!token)
    throw new Error(`${admin.site}: the API server issued no token for ${IDENTITIES[identity].account}`);
  const config = parse(readFileSync(siteKubeconfig, 'utf8')) as Kubeconfig;
  const user = `${IDENTITIES[identity].account}@${admin.site}`;
  for (const c of config.clusters) c.cluster.server = server;
  for (const c of config.contexts) c.context.user = user;
  config.users = [{ name: user, user: { token } }];
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, stringify(config), { mode: 0o600 });
  return file;
}
