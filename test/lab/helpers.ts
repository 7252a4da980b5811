/** What the lab suites share: the running lab's parts, the simulator's API and the CLI as a process. */
import { execFile } from 'node:child_process';
import { importJWK, SignJWT } from 'jose';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { CRD, type SiteApi, isNotFound } from '../../common/k8s.ts';
import { waitUntil } from '../../common/wait.ts';
import { LAB_OIDC } from '../../config/lab-config.ts';
import { LAB_SIM_TIMING, Lab } from '../../lab/lab.ts';
import { REPO_ROOT, type SiteName } from '../../lab/layout.ts';
import type { LabStatus } from '../../lab/status.ts';
import { ApiProxyClient } from '../../lab/api-proxy/client.ts';
import { StorageSimClient } from '../../lab/storage-sim/client.ts';

export const lab = new Lab({ step: () => undefined });

export function site(name: SiteName): SiteApi {
  return lab.site(name);
}

export async function status(): Promise<LabStatus> {
  return lab.status();
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `pivot ARGS` as a user would, from the checkout. */
export function pivot(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 300_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(REPO_ROOT, 'bin', 'pivot.js'), ...args],
      {
        // A contexts file on this machine must not redirect the tests: none unless a test names one.
        env: { ...process.env, NODE_OPTIONS: '', PIVOT_CLI_CONFIG: '/nonexistent/pivot-cli.yaml', ...env },
        timeout: timeoutMs,
        maxBuffer: 8 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The lab's storage simulator, plus `reset` to the lab's default faults and timing. */
export const sim = Object.assign(new StorageSimClient(`http://127.0.0.1:${lab.layout.ports.storageSim}`), {
  /** PATCH /v1/faults as raw HTTP, to check how the API answers bad requests. */
  patchRaw(body: unknown): Promise<Response> {
    return fetch(`http://127.0.0.1:${lab.layout.ports.storageSim}/v1/faults`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  },
});

/** The lab's API proxy between Pivot and the sites: what a test fails Pivot's API calls with. */
export const apiProxy = new ApiProxyClient(`http://127.0.0.1:${lab.layout.ports.apiProxyAdmin}`);

export async function resetSim(): Promise<void> {
  await apiProxy.clear();
  await sim.setFaults({
    promotionDelayMs: 0,
    fenceDelayMs: 0,
    failNextPromotions: 0,
    failPromotionsOnSite: '',
    linkDown: false,
    partitioned: [],
    clockSkewMs: {},
    ...LAB_SIM_TIMING,
  });
}

export type VolumeReplication = {
  metadata: k8s.V1ObjectMeta;
  spec: { replicationState: string; replicationHandle?: string };
  status?: {
    state?: string;
    message?: string;
    observedGeneration?: number;
    lastSyncTime?: string;
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
  };
};

export async function readVr(api: SiteApi, namespace: string, name: string): Promise<VolumeReplication> {
  return (await api.custom.getNamespacedCustomObject({
    ...CRD.volumeReplication,
    namespace,
    name,
  })) as VolumeReplication;
}

export function condition(
  vr: VolumeReplication,
  type: string,
): { status: string; reason: string; message: string } | undefined {
  return vr.status?.conditions?.find((c) => c.type === type);
}

/** Waits until the VR's status is for its current generation and satisfies `check`. */
export async function waitForVr(
  api: SiteApi,
  namespace: string,
  name: string,
  what: string,
  check: (vr: VolumeReplication) => boolean,
  timeoutMs = 30_000,
): Promise<VolumeReplication> {
  let last: VolumeReplication | undefined;
  await waitUntil(
    `${api.site} VolumeReplication ${namespace}/${name}: ${what}`,
    async () => {
      last = await readVr(api, namespace, name);
      const current = last.status?.observedGeneration === last.metadata.generation;
      return (
        (current && check(last)) ||
        JSON.stringify(last.status?.conditions?.map((c) => `${c.type}=${c.status}:${c.reason}`))
      );
    },
    { timeoutMs, intervalMs: 300 },
  );
  return last!;
}

/**
 * Deletes a namespace and waits until it is gone and its Retain PVs are released, so that the next
 * suite (a drill's before/after snapshot of a whole cluster, say) sees a settled lab.
 */
export async function deleteNamespace(api: SiteApi, name: string): Promise<void> {
  try {
    await api.core.deleteNamespace({ name });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await waitUntil(
    `namespace ${name} on ${api.site} to be gone and its volumes released`,
    async () => {
      const gone = await api.core.readNamespace({ name }).then(
        () => false,
        (err: unknown) => isNotFound(err) || Promise.reject(err as Error),
      );
      if (!gone) return 'terminating';
      const pvs = await api.core.listPersistentVolume();
      const bound = pvs.items.filter(
        (pv) => pv.spec?.claimRef?.namespace === name && pv.status?.phase === 'Bound',
      );
      return bound.length === 0 || `${bound.length} PVs still bound`;
    },
    { timeoutMs: 120_000 },
  );
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e4).toString(36)}`;
}

/**
 * A JWT from the lab's stand-in OIDC issuer (its key is in the lab's secrets), for `user` in
 * `groups` (its subject `sub-<user>`); `tamper` changes what the token claims or how it is
 * signed, to test refusals.
 */
export async function labJwt(
  user: string,
  groups: string[],
  tamper: {
    audience?: string;
    expiresAt?: number;
    key?: Parameters<SignJWT['sign']>[0];
    /** The immutable subject; `sub-<user>` unless given (a renamed person keeps theirs). */
    subject?: string;
  } = {},
): Promise<string> {
  const jwk = lab.secrets().oidc.privateJwk;
  const key = tamper.key ?? (await importJWK(jwk, 'ES256'));
  return new SignJWT({ preferred_username: user, groups })
    .setProtectedHeader({ alg: 'ES256', kid: jwk.kid })
    .setIssuer(LAB_OIDC.issuer)
    .setSubject(tamper.subject ?? `sub-${user}`)
    .setAudience(tamper.audience ?? LAB_OIDC.audience)
    .setIssuedAt()
    .setExpirationTime(tamper.expiresAt ?? '10m')
    .sign(key);
}
