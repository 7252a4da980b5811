/**
 * Where the lab keeps its state and which ports it uses. Everything lives under one directory
 * (PIVOT_LAB_DIR, default `.lab/` in the checkout) so that `lab down --purge` is one removal and two
 * checkouts never share state. Ports are fixed (from PIVOT_LAB_PORT_BASE) so that URLs are stable
 * and a port already taken is reported by name before anything starts.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const SITE_NAMES = ['dc-a', 'dc-b'] as const;
export type SiteName = (typeof SITE_NAMES)[number];

export function isSiteName(name: string): name is SiteName {
  return (SITE_NAMES as readonly string[]).includes(name);
}

/** The client networks of each site's nodes: what a NetworkFence names to cut a site off. */
export const SITE_CLIENT_CIDRS: Record<SiteName, string[]> = {
  'dc-a': ['10.10.0.0/16'],
  'dc-b': ['10.20.0.0/16'],
};

/** A site's control-plane ports besides the API server's, fixed so a stopped site keeps them. */
export interface SiteComponentPorts {
  etcd: number;
  etcdPeer: number;
  kwokController: number;
  kubeControllerManager: number;
  kubeScheduler: number;
}

export interface LabPorts {
  temporal: number;
  temporalUi: number;
  redis: number;
  storageSim: number;
  /** Pivot's own API. */
  api: number;
  /** The control worker's Prometheus endpoint (Temporal SDK metrics and the workflows' own). */
  controlMetrics: number;
  apiServer: Record<SiteName, number>;
  /** The API proxy's listener per site (what Pivot's kubeconfigs name), and its admin API. */
  apiProxy: Record<SiteName, number>;
  apiProxyAdmin: number;
  siteComponents: Record<SiteName, SiteComponentPorts>;
}

export interface LabLayout {
  dir: string;
  runDir: string;
  logDir: string;
  kwokDir: string;
  temporalDb: string;
  redisDir: string;
  simConfig: string;
  simState: string;
  /** The API proxy's configuration, and the kubeconfigs through it that Pivot's configuration names. */
  apiProxyDir: string;
  statusFile: string;
  /** The PivotConfig written for the lab: what every command uses when no other config is named. */
  configFile: string;
  /**
   * The configuration each site worker reads: the lab's, except that the worker's own site is
   * reached with the site worker's account (lab/identities.ts), the others with the readers'.
   */
  workerConfigFiles: Record<SiteName, string>;
  /** The lab's API tokens, one per role (mode 0600; the configuration holds only their digests). */
  tokensFile: string;
  /** The HMAC secret Grafana signs alert deliveries with (mode 0600). */
  hookSecretFile: string;
  /** The public keys of the lab's stand-in OIDC issuer (JWKS), which the API's config pins. */
  oidcJwksFile: string;
  /**
   * The lab's runbook directory: a link to each of the checkout's runbooks (edits show at once),
   * and room for runbooks the lab's own tools add (the benchmark's applications).
   */
  runbooksDir: string;
  ports: LabPorts;
}

export function labLayout(env: NodeJS.ProcessEnv = process.env): LabLayout {
  const dir = resolve(env['PIVOT_LAB_DIR'] ?? join(REPO_ROOT, '.lab'));
  const base = Number(env['PIVOT_LAB_PORT_BASE'] ?? 17000);
  if (!Number.isInteger(base) || base < 1024 || base > 60000) {
    throw new Error(
      `PIVOT_LAB_PORT_BASE must be an integer between 1024 and 60000, got ${env['PIVOT_LAB_PORT_BASE']}`,
    );
  }
  return {
    dir,
    runDir: join(dir, 'run'),
    logDir: join(dir, 'logs'),
    kwokDir: join(dir, 'kwok'),
    temporalDb: join(dir, 'temporal', 'temporal.db'),
    redisDir: join(dir, 'redis'),
    simConfig: join(dir, 'storage-sim', 'config.json'),
    simState: join(dir, 'storage-sim', 'state.json'),
    apiProxyDir: join(dir, 'api-proxy'),
    statusFile: join(dir, 'lab.json'),
    configFile: join(dir, 'pivot.yaml'),
    workerConfigFiles: {
      'dc-a': join(dir, 'pivot.worker-dc-a.yaml'),
      'dc-b': join(dir, 'pivot.worker-dc-b.yaml'),
    },
    tokensFile: join(dir, 'api-tokens.json'),
    hookSecretFile: join(dir, 'alert-hmac-secret'),
    oidcJwksFile: join(dir, 'oidc-jwks.json'),
    runbooksDir: join(dir, 'runbooks'),
    ports: {
      temporal: base + 233,
      temporalUi: base + 234,
      redis: base + 379,
      storageSim: base + 380,
      api: base + 480,
      controlMetrics: base + 481,
      apiServer: { 'dc-a': base + 443, 'dc-b': base + 444 },
      apiProxy: { 'dc-a': base + 445, 'dc-b': base + 446 },
      apiProxyAdmin: base + 447,
      siteComponents: { 'dc-a': componentPorts(base + 450), 'dc-b': componentPorts(base + 460) },
    },
  };
}

function componentPorts(from: number): SiteComponentPorts {
  return {
    etcd: from,
    etcdPeer: from + 1,
    kwokController: from + 2,
    kubeControllerManager: from + 3,
    kubeScheduler: from + 4,
  };
}
