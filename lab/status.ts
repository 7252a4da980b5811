/**
 * `pivot lab status`: the state of every part of the lab, probed live. The JSON shape (LabStatus)
 * is a contract: tests, the benchmarks and later commands read it (docs/lab.md documents it).
 */
import * as k8s from '@kubernetes/client-node';
import { existsSync, readFileSync } from 'node:fs';
import { LAB_TIMESTAMP_HEADER, type LabSecrets } from '../config/lab-config.ts';
import type { Role } from '../config/types.ts';
import { connectSite, readyNodeCount } from '../common/k8s.ts';
import { SITE_CLIENT_CIDRS, SITE_NAMES, type LabLayout, type SiteName } from './layout.ts';
import { Daemons, isPortOpen } from './processes.ts';
import type { KwokSites } from './sites.ts';

export type PartState = 'running' | 'stopped' | 'unhealthy';

export interface SiteStatus {
  name: SiteName;
  state: PartState;
  apiServerUrl: string;
  kubeconfig: string;
  context: string;
  clientCidrs: string[];
  /** Ready simulated nodes; absent while the site is not running. */
  readyNodes?: number;
  logDir: string;
}

export interface DaemonStatus {
  state: PartState;
  pid?: number;
  logFile: string;
}

export interface LabStatus {
  schemaVersion: 1;
  labDir: string;
  /** running: every part is; stopped: none is; degraded: anything in between (e.g. a killed site). */
  state: 'running' | 'degraded' | 'stopped';
  sites: SiteStatus[];
  temporal: DaemonStatus & { address: string; namespace: string; webUiUrl: string; dbFile: string };
  redis: DaemonStatus & { url: string };
  storageSimulator: DaemonStatus & { url: string; stateFile: string };
  /**
   * The proxy between Pivot and each site's API server, which injects API faults (its admin API
   * at `url`); Pivot's configuration names `siteUrls`, tests and the lab reach the sites directly.
   */
  apiProxy: DaemonStatus & { url: string; siteUrls: Record<SiteName, string> };
  /** Pivot's API, with a bearer token for each role (lab only: a real installation never prints tokens). */
  api: DaemonStatus & {
    url: string;
    tokens: Partial<Record<Role, string>>;
    /** What the alert hooks accept: the HMAC secret (and its timestamp header), a bearer token, basic auth. */
    hooks?: LabSecrets['hooks'] & { timestampHeader: string };
  };
  /** The control worker's Prometheus endpoint: Temporal SDK metrics and the operations' own. */
  workerMetricsUrl: string;
  /** Pivot's workers: `worker-control` and one per site (stopped while its site is killed). */
  workers: Array<{ name: string; state: PartState; pid?: number; logFile: string }>;
  /** The sample application was seeded (it is not seeded again by later `up`s). */
  seeded: boolean;
  /** The PivotConfig for the lab (sites, Temporal, witness, runbooks): commands use it by default. */
  configFile: string;
}

export const DAEMONS = {
  temporal: 'temporal',
  redis: 'redis',
  storageSim: 'storage-sim',
  apiProxy: 'api-proxy',
  api: 'api',
} as const;

export function workerDaemon(role: 'control' | SiteName): string {
  return `worker-${role}`;
}

async function siteState(
  kubeconfig: string,
  site: SiteName,
  port: number,
): Promise<{ state: PartState; readyNodes?: number }> {
  if (!existsSync(kubeconfig) || !(await isPortOpen(port))) return { state: 'stopped' };
  try {
    const api = connectSite(site, kubeconfig);
    const nodes = await api.core.listNode();
    return { state: 'running', readyNodes: readyNodeCount(nodes.items) };
  } catch {
    return { state: 'unhealthy' };
  }
}

function currentContext(kubeconfig: string): string {
  if (!existsSync(kubeconfig)) return '';
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  return kc.getCurrentContext();
}

async function daemonState(daemons: Daemons, name: string, port: number): Promise<DaemonStatus> {
  const pid = daemons.pid(name);
  const alive = daemons.isRunning(name);
  const open = await isPortOpen(port);
  const state: PartState = alive && open ? 'running' : alive || open ? 'unhealthy' : 'stopped';
  return { state, ...(alive && pid ? { pid } : {}), logFile: daemons.logFile(name) };
}

export async function probeLab(layout: LabLayout, sites: KwokSites, seeded: boolean): Promise<LabStatus> {
  const daemons = new Daemons(layout.runDir, layout.logDir);
  const { ports } = layout;
  const siteStatuses = await Promise.all(
    SITE_NAMES.map(async (name): Promise<SiteStatus> => {
      const kubeconfig = sites.kubeconfig(name);
      return {
        name,
        ...(await siteState(kubeconfig, name, ports.apiServer[name])),
        apiServerUrl: `https://127.0.0.1:${ports.apiServer[name]}`,
        kubeconfig,
        context: currentContext(kubeconfig),
        clientCidrs: SITE_CLIENT_CIDRS[name],
        logDir: sites.logFile(name),
      };
    }),
  );
  const [temporal, redis, storageSim, apiProxy, api] = await Promise.all([
    daemonState(daemons, DAEMONS.temporal, ports.temporal),
    daemonState(daemons, DAEMONS.redis, ports.redis),
    daemonState(daemons, DAEMONS.storageSim, ports.storageSim),
    daemonState(daemons, DAEMONS.apiProxy, ports.apiProxyAdmin),
    daemonState(daemons, DAEMONS.api, ports.api),
  ]);
  const secrets = existsSync(layout.tokensFile)
    ? (JSON.parse(readFileSync(layout.tokensFile, 'utf8')) as Partial<LabSecrets>)
    : {};
  const workers: LabStatus['workers'] = (['control', ...SITE_NAMES] as const).map((role) => {
    const name = workerDaemon(role);
    const pid = daemons.pid(name);
    const alive = daemons.isRunning(name);
    return {
      name,
      state: alive ? 'running' : 'stopped',
      ...(alive && pid ? { pid } : {}),
      logFile: daemons.logFile(name),
    };
  });
  const states = [
    ...siteStatuses.map((s) => s.state),
    temporal.state,
    redis.state,
    storageSim.state,
    apiProxy.state,
    api.state,
    ...workers.map((w) => w.state),
  ];
  return {
    schemaVersion: 1,
    labDir: layout.dir,
    state: states.every((s) => s === 'running')
      ? 'running'
      : states.every((s) => s === 'stopped')
        ? 'stopped'
        : 'degraded',
    sites: siteStatuses,
    temporal: {
      ...temporal,
      address: `127.0.0.1:${ports.temporal}`,
      namespace: 'default',
      webUiUrl: `http://127.0.0.1:${ports.temporalUi}`,
      dbFile: layout.temporalDb,
    },
    redis: { ...redis, url: `redis://127.0.0.1:${ports.redis}` },
    storageSimulator: {
      ...storageSim,
      url: `http://127.0.0.1:${ports.storageSim}`,
      stateFile: layout.simState,
    },
    apiProxy: {
      ...apiProxy,
      url: `http://127.0.0.1:${ports.apiProxyAdmin}`,
      siteUrls: Object.fromEntries(
        SITE_NAMES.map((s) => [s, `https://127.0.0.1:${ports.apiProxy[s]}`]),
      ) as Record<SiteName, string>,
    },
    api: {
      ...api,
      url: `http://127.0.0.1:${ports.api}`,
      tokens: secrets.tokens ?? {},
      ...(secrets.hooks ? { hooks: { ...secrets.hooks, timestampHeader: LAB_TIMESTAMP_HEADER } } : {}),
    },
    workerMetricsUrl: `http://127.0.0.1:${ports.controlMetrics}/metrics`,
    workers,
    seeded,
    configFile: layout.configFile,
  };
}
