/** The configuration `pivot lab up` writes for the lab (.lab/pivot.yaml). */
import { REPO_ROOT, SITE_CLIENT_CIDRS, SITE_NAMES, type LabLayout } from '../lab/layout.ts';
import { sha256Hex } from '../common/digest.ts';
import { CONFIG_API_VERSION, CONFIG_KIND, type PivotConfig, type Role } from './types.ts';

export function labConfig(
  layout: LabLayout,
  kubeconfig: (site: (typeof SITE_NAMES)[number]) => string,
  tokens: Partial<Record<Role, string>> = {},
): PivotConfig {
  return {
    apiVersion: CONFIG_API_VERSION,
    kind: CONFIG_KIND,
    sites: SITE_NAMES.map((name) => ({
      name,
      kubeconfig: kubeconfig(name),
      context: `kwok-${name}`,
      region: `lab-${name}`,
      clientCidrs: SITE_CLIENT_CIDRS[name],
      // The simulated array reads no credentials; a real driver's fence secret goes here.
      networkFence: { secret: { name: 'sim-array-credentials', namespace: 'kube-system' } },
    })),
    storageClassMap: [{ 'dc-a': 'sim-replicated', 'dc-b': 'sim-replicated' }],
    temporal: { address: `127.0.0.1:${layout.ports.temporal}`, namespace: 'default' },
    witness: { redisUrl: `redis://127.0.0.1:${layout.ports.redis}` },
    api: {
      listen: `127.0.0.1:${layout.ports.api}`,
      twoPersonRule: true,
      tokens: Object.entries(tokens).map(([role, token]) => ({
        name: `lab-${role}`,
        sha256: sha256Hex(token),
        roles: [role as Role],
      })),
    },
    runbooks: { dir: `${REPO_ROOT}/runbooks` },
    lab: { storageSimulatorUrl: `http://127.0.0.1:${layout.ports.storageSim}` },
  };
}
