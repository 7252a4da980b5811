/** The configuration `pivot lab up` writes for the lab (.lab/pivot.yaml). */
import { SITE_CLIENT_CIDRS, SITE_NAMES, type LabLayout } from '../lab/layout.ts';
import { sha256Hex } from '../common/digest.ts';
import type { JsonWebKey } from 'node:crypto';
import { CONFIG_API_VERSION, CONFIG_KIND, type PivotConfig, type Role } from './types.ts';

/** The lab's secrets: an API token per role, and what the alert hooks accept. */
export interface LabSecrets {
  tokens: Record<Role, string>;
  hooks: { hmacSecret: string; bearerToken: string; basicUser: string; basicPassword: string };
  /** The lab's stand-in identity provider: its signing key (a private JWK, P-256). */
  oidc: { privateJwk: JsonWebKey & { kid: string } };
}

/** The lab's stand-in OIDC issuer: tokens it signs carry these, and groups mapped to roles. */
export const LAB_OIDC = {
  issuer: 'https://idp.lab.pivot.invalid',
  audience: 'pivot-lab',
  usernameClaim: 'preferred_username',
  groupRoles: {
    'dr-viewers': ['viewer'],
    'dr-oncall': ['operator'],
    'dr-managers': ['approver'],
    'dr-admins': ['admin'],
  } satisfies Record<string, Role[]>,
};

/** The header the lab's Grafana hook reads the signed timestamp from. */
export const LAB_TIMESTAMP_HEADER = 'X-Grafana-Alerting-Signature-Timestamp';

export function labConfig(
  layout: LabLayout,
  kubeconfig: (site: (typeof SITE_NAMES)[number]) => string,
  secrets?: LabSecrets,
): PivotConfig {
  const tokens: Partial<Record<Role, string>> = secrets?.tokens ?? {};
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
      board: { temporalUiUrl: `http://127.0.0.1:${layout.ports.temporalUi}` },
      tokens: Object.entries(tokens).map(([role, token]) => ({
        name: `lab-${role}`,
        sha256: sha256Hex(token),
        roles: [role as Role],
      })),
      ...(secrets ? { oidc: { ...LAB_OIDC, jwksFile: layout.oidcJwksFile } } : {}),
    },
    runbooks: { dir: layout.runbooksDir },
    ...(secrets
      ? {
          alerts: {
            grafana: {
              hmac: {
                secretFile: layout.hookSecretFile,
                timestampHeader: LAB_TIMESTAMP_HEADER,
                maxSkewSeconds: 300,
              },
              bearerSha256: sha256Hex(secrets.hooks.bearerToken),
            },
            alertmanager: {
              bearerSha256: sha256Hex(secrets.hooks.bearerToken),
              basic: {
                username: secrets.hooks.basicUser,
                passwordSha256: sha256Hex(secrets.hooks.basicPassword),
              },
            },
            // A datacenter-down alert fails the sample application over to the other site, once
            // the alert held for 5 s, at most once per 2 minutes; the failover waits for approval.
            rules: SITE_NAMES.map((site) => ({
              name: `${site}-down`,
              match: { alertname: 'DatacenterDown', datacenter: site },
              operation: 'failover' as const,
              apps: ['orders'],
              to: SITE_NAMES.find((s) => s !== site)!,
              holdDownSeconds: 5,
              coolDownSeconds: 120,
            })),
          },
        }
      : {}),
    lab: { storageSimulatorUrl: `http://127.0.0.1:${layout.ports.storageSim}` },
  };
}
