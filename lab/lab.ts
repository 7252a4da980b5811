/**
 * The two-datacenter lab: up, down, kill-site, revive-site. Every operation is idempotent where
 * that makes sense (`up` on a running lab changes nothing) and refuses clearly where it does not
 * (`kill-site` on a site already down). A failed `up` stops what it started itself, so a lab is
 * never left half-running by it.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { ROLES, type Role } from '../config/types.ts';
import { dirname, join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { connectSite, isNotFound, readyNodeCount, type SiteApi } from '../common/k8s.ts';
import { sleep, waitUntil } from '../common/wait.ts';
import { stringify } from 'yaml';
import { labConfig, type LabSecrets } from '../config/lab-config.ts';
import { LabError } from './errors.ts';
import {
  REPO_ROOT,
  SITE_CLIENT_CIDRS,
  SITE_NAMES,
  isSiteName,
  labLayout,
  type LabLayout,
  type SiteName,
} from './layout.ts';
import { Daemons, isAlive, isPortOpen, killGroup } from './processes.ts';
import { installCrds, installSiteStorage, seedSampleApp } from './seed.ts';
import { IDENTITIES, identityKubeconfig, installIdentities, type Identity } from './identities.ts';
import { KwokSites, SIMULATED_NODES } from './sites.ts';
import { DAEMONS, probeLab, workerDaemon, type LabStatus } from './status.ts';
import { StorageSimClient } from './storage-sim/client.ts';
import type { SimConfig } from './storage-sim/main.ts';
import type { ApiProxyConfig } from './api-proxy/main.ts';
import { provisionTools, toolPaths, type ToolPaths } from './tools.ts';

export interface Progress {
  step(message: string): void;
}

const SEEDED_MARKER = 'seeded';

/** Storage simulator timing in the lab: fast enough for tests, slow enough to show lag. */
export const LAB_SIM_TIMING = { replicationIntervalMs: 2000, syncDurationMs: 200 };

/** What `crash` can kill: a worker, the API, the witness's Redis, Temporal, the API proxy. */
export type CrashablePart =
  'worker-control' | `worker-${SiteName}` | 'api' | 'witness' | 'temporal' | 'api-proxy';

export class Lab {
  readonly layout: LabLayout;
  private readonly daemons: Daemons;

  constructor(
    private readonly progress: Progress,
    layout: LabLayout = labLayout(),
  ) {
    this.layout = layout;
    this.daemons = new Daemons(layout.runDir, layout.logDir);
  }

  private get seeded(): boolean {
    return existsSync(join(this.layout.dir, SEEDED_MARKER));
  }

  /** Tools for commands that must not build anything (status, down, kill/revive). */
  private cachedTools(): ToolPaths {
    return toolPaths(
      process.env['PIVOT_TOOLS_BIN'] ?? join(process.env['HOME'] ?? '/root', '.cache/pivot/tools/bin'),
    );
  }

  private sites(tools: ToolPaths = this.cachedTools()): KwokSites {
    return new KwokSites(this.layout, tools);
  }

  async status(): Promise<LabStatus> {
    return probeLab(this.layout, new KwokSites(this.layout, this.toolsOrPlaceholder()), this.seeded);
  }

  /** status works before any tool is built: paths are only used to compute file locations. */
  private toolsOrPlaceholder(): ToolPaths {
    try {
      return this.cachedTools();
    } catch {
      return { binDir: '', bin: {} as ToolPaths['bin'], kubeVersion: '' };
    }
  }

  /** The kubeconfig that reaches a site's API server directly (not through the API proxy). */
  kubeconfigFile(name: SiteName): string {
    return this.sites(this.toolsOrPlaceholder()).kubeconfig(name);
  }

  site(name: SiteName): SiteApi {
    return connectSite(name, this.sites(this.toolsOrPlaceholder()).kubeconfig(name));
  }

  async up(): Promise<{ status: LabStatus; alreadyRunning: boolean; seconds: number }> {
    const started = Date.now();
    const tools = await provisionTools();
    const sites = this.sites(tools);
    const before = await probeLab(this.layout, sites, this.seeded);
    if (before.state === 'running' && this.seeded) {
      // The chart's rules may have changed since the lab was made: converge them.
      for (const site of SITE_NAMES) await installIdentities(this.site(site));
      await this.writeConfig(sites);
      return { status: before, alreadyRunning: true, seconds: (Date.now() - started) / 1000 };
    }
    if (
      before.state === 'degraded' &&
      this.seeded &&
      (before.workers.some((w) => w.state !== 'running') || before.api.state !== 'running')
    ) {
      // Only workers or the API are missing (e.g. one crashed): start them, touch nothing else.
      const others = [
        before.temporal,
        before.redis,
        before.storageSimulator,
        before.apiProxy,
        ...before.sites,
      ];
      if (others.every((p) => p.state === 'running')) {
        await this.writeConfig(sites);
        await this.startWorkers();
        await this.startApi();
        return { status: await this.status(), alreadyRunning: true, seconds: (Date.now() - started) / 1000 };
      }
    }
    await this.stopHalfStarted(before, sites);
    await this.checkPorts(before);
    mkdirSync(this.layout.dir, { recursive: true });
    const undo: Array<{ what: string; run: () => Promise<void> }> = [];
    try {
      if (before.redis.state !== 'running') {
        await this.startRedis(tools);
        undo.push({ what: 'redis', run: () => this.daemons.stop(DAEMONS.redis) });
      }
      if (before.temporal.state !== 'running') {
        await this.startTemporal(tools);
        undo.push({ what: 'temporal', run: () => this.daemons.stop(DAEMONS.temporal) });
      }
      for (const site of before.sites) {
        if (site.state === 'running') continue;
        const created = !sites.exists(site.name);
        this.progress.step(
          `${site.name}: ${created ? 'creating' : 'starting'} control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok)`,
        );
        try {
          if (created) await sites.create(site.name);
          else await this.restartSite(sites, site.name);
        } catch (err) {
          undo.push({
            what: site.name,
            run: () => (created ? sites.delete(site.name) : sites.stop(site.name)),
          });
          throw new LabError(
            `control plane failed to start: ${(err as Error).message}`,
            site.name,
            'read the component logs in the directory above',
            sites.logFile(site.name),
            { cause: err },
          );
        }
        undo.push({
          what: site.name,
          run: () => (created ? sites.delete(site.name) : sites.stop(site.name)),
        });
        await this.waitForNodes(site.name);
        this.progress.step(
          `${site.name}: API ${site.apiServerUrl}, ${SIMULATED_NODES} simulated nodes ready`,
        );
      }
      const apis = SITE_NAMES.map((s) => connectSite(s, sites.kubeconfig(s)));
      for (const api of apis) {
        await installCrds(api);
        await installSiteStorage(api);
        await installIdentities(api);
      }
      this.progress.step('CRDs and the simulated array installed on both sites');
      if (before.storageSimulator.state !== 'running') {
        await this.startStorageSim(sites);
        undo.push({ what: 'storage simulator', run: () => this.daemons.stop(DAEMONS.storageSim) });
      }
      if (before.apiProxy.state !== 'running') {
        await this.startApiProxy(sites);
        undo.push({ what: 'API proxy', run: () => this.daemons.stop(DAEMONS.apiProxy) });
      }
      if (!this.seeded) {
        this.progress.step('seeding the sample application orders (active on dc-a, standby on dc-b)');
        const [dcA, dcB] = apis as [SiteApi, SiteApi];
        await seedSampleApp(dcA, dcB);
        writeFileSync(join(this.layout.dir, SEEDED_MARKER), new Date().toISOString());
      }
    } catch (err) {
      this.progress.step(
        `lab up failed; stopping what this run started (${undo.map((u) => u.what).join(', ') || 'nothing'})`,
      );
      for (const u of undo.reverse()) {
        await u.run().catch(() => undefined);
      }
      throw err;
    }
    await this.writeConfig(sites);
    try {
      await this.startWorkers();
      await this.startApi();
    } catch (err) {
      for (const u of undo.reverse()) await u.run().catch(() => undefined);
      await this.stopWorkers();
      await this.daemons.stop(DAEMONS.api);
      throw err;
    }
    const status = await probeLab(this.layout, sites, this.seeded);
    writeFileSync(this.layout.statusFile, JSON.stringify(status, null, 2));
    return { status, alreadyRunning: false, seconds: (Date.now() - started) / 1000 };
  }

  /**
   * A part of ours that runs but does not answer (a crashed start, a site whose API is not up) is
   * stopped, so that it is started cleanly and its ports can be checked like the others'.
   */
  private async stopHalfStarted(status: LabStatus, sites: KwokSites): Promise<void> {
    for (const [name, state] of [
      [DAEMONS.redis, status.redis.state],
      [DAEMONS.temporal, status.temporal.state],
      [DAEMONS.storageSim, status.storageSimulator.state],
      [DAEMONS.apiProxy, status.apiProxy.state],
    ] as const) {
      if (state === 'unhealthy' && this.daemons.isRunning(name)) await this.daemons.stop(name);
    }
    for (const s of status.sites) {
      if (s.state === 'unhealthy' && sites.exists(s.name)) await sites.stop(s.name).catch(() => undefined);
    }
  }

  /**
   * The lab's PivotConfig, and one per site worker. Pivot's processes reach the sites through the
   * API proxy as the chart's accounts, never as the admin: the API and the control worker as the
   * readers, each site worker as the site worker on its own site. Rewriting them changes nothing
   * while the tokens have a day left.
   */
  private async writeConfig(sites: KwokSites): Promise<void> {
    linkRunbooks(this.layout.runbooksDir);
    const secrets = this.secrets();
    const kubeconfigs = {} as Record<SiteName, Record<Identity, string>>;
    for (const site of SITE_NAMES) kubeconfigs[site] = await this.identityKubeconfigs(sites, site);
    writeFileSync(
      this.layout.configFile,
      stringify(labConfig(this.layout, (s) => kubeconfigs[s].reader, secrets)),
    );
    for (const site of SITE_NAMES) {
      writeFileSync(
        this.layout.workerConfigFiles[site],
        stringify(
          labConfig(
            this.layout,
            (s) => (s === site ? kubeconfigs[s].siteWorker : kubeconfigs[s].reader),
            secrets,
          ),
        ),
      );
    }
  }

  private async identityKubeconfigs(sites: KwokSites, site: SiteName): Promise<Record<Identity, string>> {
    const admin = this.site(site);
    const server = `https://127.0.0.1:${this.layout.ports.apiProxy[site]}`;
    const out = {} as Record<Identity, string>;
    for (const identity of Object.keys(IDENTITIES) as Identity[]) {
      out[identity] = await identityKubeconfig(
        admin,
        sites.kubeconfig(site),
        server,
        identity,
        join(this.layout.apiProxyDir, `${site}.${IDENTITIES[identity].account}.kubeconfig.yaml`),
      );
    }
    return out;
  }

  /** The lab's secrets (API tokens per role, alert hook secrets, an OIDC signing key), made once (random), kept 0600. */
  secrets(): LabSecrets {
    const random = () => randomBytes(18).toString('base64url');
    const saved: Partial<LabSecrets> = existsSync(this.layout.tokensFile)
      ? (JSON.parse(readFileSync(this.layout.tokensFile, 'utf8')) as Partial<LabSecrets>)
      : {};
    const secrets: LabSecrets = {
      tokens:
        saved.tokens ??
        (Object.fromEntries(ROLES.map((role) => [role, `pivot-lab-${role}-${random()}`])) as Record<
          Role,
          string
        >),
      hooks: saved.hooks ?? {
        hmacSecret: random(),
        bearerToken: `pivot-lab-hook-${random()}`,
        basicUser: 'alertmanager',
        basicPassword: random(),
      },
      oidc: saved.oidc ?? {
        privateJwk: {
          ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
          kid: `lab-${random()}`,
        },
      },
    };
    if (!saved.tokens || !saved.hooks || !saved.oidc) {
      mkdirSync(this.layout.dir, { recursive: true });
      writeFileSync(this.layout.tokensFile, JSON.stringify(secrets, null, 2), { mode: 0o600 });
    }
    writeFileSync(this.layout.hookSecretFile, secrets.hooks.hmacSecret, { mode: 0o600 });
    // The issuer's public key only: drop the private part `d`.
    const { d: _private, ...publicJwk } = secrets.oidc.privateJwk;
    void _private;
    writeFileSync(
      this.layout.oidcJwksFile,
      JSON.stringify({ keys: [{ ...publicJwk, alg: 'ES256', use: 'sig' }] }, null, 2),
    );
    return secrets;
  }

  private async startApi(): Promise<void> {
    if (this.daemons.isRunning(DAEMONS.api)) return;
    this.daemons.start({
      name: DAEMONS.api,
      command: process.execPath,
      args: ['--import', 'tsx', join(REPO_ROOT, 'api', 'main.ts'), '--config', this.layout.configFile],
      cwd: REPO_ROOT,
    });
    await this.waitForDaemon('api', DAEMONS.api, this.layout.ports.api, 60_000);
    this.progress.step(
      `api: http://127.0.0.1:${this.layout.ports.api}, status board http://127.0.0.1:${this.layout.ports.api}/board (tokens per role in ${this.layout.tokensFile})`,
    );
  }

  /** Every fixed port that a part about to start needs must be free: say which one is not. */
  private async checkPorts(status: LabStatus): Promise<void> {
    const { ports } = this.layout;
    const needed: Array<{ part: string; port: number; log: string }> = [];
    if (status.redis.state !== 'running')
      needed.push({ part: 'redis', port: ports.redis, log: status.redis.logFile });
    if (status.temporal.state !== 'running') {
      needed.push({ part: 'temporal', port: ports.temporal, log: status.temporal.logFile });
      needed.push({ part: 'temporal web UI', port: ports.temporalUi, log: status.temporal.logFile });
    }
    if (status.storageSimulator.state !== 'running') {
      needed.push({
        part: 'storage simulator',
        port: ports.storageSim,
        log: status.storageSimulator.logFile,
      });
    }
    if (status.apiProxy.state !== 'running') {
      for (const [part, port] of [
        ['API proxy', ports.apiProxyAdmin],
        ...SITE_NAMES.map((s) => [`API proxy for ${s}`, ports.apiProxy[s]] as const),
      ] as const) {
        needed.push({ part, port, log: status.apiProxy.logFile });
      }
    }
    for (const s of status.sites) {
      if (s.state === 'running') continue;
      needed.push({ part: `${s.name} kube-apiserver`, port: ports.apiServer[s.name], log: s.logDir });
      for (const [component, port] of Object.entries(ports.siteComponents[s.name]) as Array<
        [string, number]
      >) {
        needed.push({ part: `${s.name} ${component}`, port, log: s.logDir });
      }
    }
    for (const n of needed) {
      if (await isPortOpen(n.port)) {
        throw new LabError(
          `port ${n.port} is already in use by another process`,
          n.part,
          `free port ${n.port} (e.g. \`ss -ltnp 'sport = :${n.port}'\` shows who holds it) or move the lab with PIVOT_LAB_PORT_BASE; nothing was started`,
          n.log,
        );
      }
    }
  }

  private async startRedis(tools: ToolPaths): Promise<void> {
    mkdirSync(this.layout.redisDir, { recursive: true });
    this.daemons.start({
      name: DAEMONS.redis,
      command: tools.bin['redis-server'],
      args: [
        '--port',
        String(this.layout.ports.redis),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.layout.redisDir,
        '--appendonly',
        'yes',
        '--daemonize',
        'no',
        // Keep the command line (with the lab directory) visible: `down` finds strays by it.
        '--set-proc-title',
        'no',
      ],
    });
    await this.waitForDaemon('redis', DAEMONS.redis, this.layout.ports.redis, 20_000);
    this.progress.step(`redis: redis://127.0.0.1:${this.layout.ports.redis}`);
  }

  private async startTemporal(tools: ToolPaths): Promise<void> {
    mkdirSync(dirname(this.layout.temporalDb), { recursive: true });
    const { ports } = this.layout;
    this.daemons.start({
      name: DAEMONS.temporal,
      command: tools.bin.temporal,
      args: [
        'server',
        'start-dev',
        '--ip',
        '127.0.0.1',
        '--port',
        String(ports.temporal),
        '--ui-port',
        String(ports.temporalUi),
        '--db-filename',
        this.layout.temporalDb,
        '--log-format',
        'json',
        '--log-level',
        'warn',
      ],
    });
    await this.waitForDaemon('temporal', DAEMONS.temporal, ports.temporal, 90_000);
    this.progress.step(`temporal: 127.0.0.1:${ports.temporal}, web UI http://127.0.0.1:${ports.temporalUi}`);
  }

  private async startStorageSim(sites: KwokSites): Promise<void> {
    const config: SimConfig = {
      sites: SITE_NAMES.map((name) => ({
        name,
        kubeconfig: sites.kubeconfig(name),
        clientCidrs: SITE_CLIENT_CIDRS[name],
      })),
      port: this.layout.ports.storageSim,
      stateFile: this.layout.simState,
      periodMs: 500,
      ...LAB_SIM_TIMING,
    };
    mkdirSync(dirname(this.layout.simConfig), { recursive: true });
    writeFileSync(this.layout.simConfig, JSON.stringify(config, null, 2));
    this.daemons.start({
      name: DAEMONS.storageSim,
      command: process.execPath,
      args: ['--import', 'tsx', join(REPO_ROOT, 'lab', 'storage-sim', 'main.ts'), this.layout.simConfig],
      cwd: REPO_ROOT,
    });
    await this.waitForDaemon('storage simulator', DAEMONS.storageSim, this.layout.ports.storageSim, 30_000);
    this.progress.step(`storage simulator: http://127.0.0.1:${this.layout.ports.storageSim}`);
  }

  /** The API proxy between Pivot and each site's API server (lab/api-proxy), which injects API faults. */
  private async startApiProxy(sites: KwokSites): Promise<void> {
    const { ports } = this.layout;
    const config: ApiProxyConfig = {
      adminPort: ports.apiProxyAdmin,
      sites: SITE_NAMES.map((name) => {
        const pki = join(dirname(sites.kubeconfig(name)), 'pki');
        return {
          name,
          listenPort: ports.apiProxy[name],
          upstreamPort: ports.apiServer[name],
          caFile: join(pki, 'ca.crt'),
          certFile: join(pki, 'admin.crt'),
          keyFile: join(pki, 'admin.key'),
        };
      }),
    };
    mkdirSync(this.layout.apiProxyDir, { recursive: true });
    const file = join(this.layout.apiProxyDir, 'config.json');
    writeFileSync(file, JSON.stringify(config, null, 2));
    this.daemons.start({
      name: DAEMONS.apiProxy,
      command: process.execPath,
      args: ['--import', 'tsx', join(REPO_ROOT, 'lab', 'api-proxy', 'main.ts'), file],
      cwd: REPO_ROOT,
    });
    await this.waitForDaemon('API proxy', DAEMONS.apiProxy, ports.apiProxyAdmin, 30_000);
    this.progress.step(
      `API proxy: admin http://127.0.0.1:${ports.apiProxyAdmin}, sites on ${SITE_NAMES.map((s) => ports.apiProxy[s]).join(', ')}`,
    );
  }

  private async waitForDaemon(part: string, name: string, port: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.daemons.isRunning(name)) {
        throw new LabError(
          'exited during start-up',
          part,
          'read its log for the reason',
          this.daemons.logFile(name),
        );
      }
      if (await isPortOpen(port)) return;
      await sleep(250);
    }
    await this.daemons.stop(name);
    throw new LabError(
      `did not open port ${port} within ${timeoutMs / 1000} s`,
      part,
      'read its log for the reason',
      this.daemons.logFile(name),
    );
  }

  private async waitForNodes(site: SiteName): Promise<void> {
    const api = this.site(site);
    await waitUntil(
      `${site}'s simulated nodes to be Ready`,
      async () => {
        const nodes = await api.core.listNode();
        const ready = readyNodeCount(nodes.items);
        return ready >= SIMULATED_NODES || `${ready} ready`;
      },
      { timeoutMs: 120_000 },
    );
  }

  /**
   * Pivot's workers for the lab: the control worker and one per site (whose site guard keeps a
   * fenced site down). A site's worker lives and dies with its site, as it would in a datacenter.
   */
  private async startWorkers(env: Record<string, string> = {}): Promise<void> {
    const status = await this.status();
    const up = status.sites.filter((s) => s.state === 'running').map((s) => s.name);
    await Promise.all([this.startWorker('control', env), ...up.map((s) => this.startWorker(s, env))]);
    this.progress.step(`workers: control, ${up.join(', ')} (logs in ${this.layout.logDir})`);
  }

  private async startWorker(role: 'control' | SiteName, env: Record<string, string> = {}): Promise<void> {
    const name = workerDaemon(role);
    if (this.daemons.isRunning(name)) return;
    const logFile = this.daemons.logFile(name);
    const offset = existsSync(logFile) ? statSync(logFile).size : 0;
    this.daemons.start({
      name,
      command: process.execPath,
      args: [
        '--import',
        'tsx',
        join(REPO_ROOT, 'worker', 'main.ts'),
        ...(role === 'control'
          ? ['control', '--metrics-listen', `127.0.0.1:${this.layout.ports.controlMetrics}`]
          : ['site', role]),
        '--config',
        role === 'control' ? this.layout.configFile : this.layout.workerConfigFiles[role],
      ],
      cwd: REPO_ROOT,
      env,
    });
    await waitUntil(
      `${name} to be ready`,
      () => {
        if (!this.daemons.isRunning(name)) {
          throw new LabError('exited during start-up', name, 'read its log for the reason', logFile);
        }
        const text = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(offset) : '';
        return Promise.resolve(text.includes('"worker ready"') || 'starting');
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
  }

  private async stopWorkers(sites: readonly SiteName[] = SITE_NAMES, control = true): Promise<void> {
    const names = [...(control ? [workerDaemon('control')] : []), ...sites.map((s) => workerDaemon(s))];
    await Promise.all(names.map((n) => this.daemons.stop(n)));
  }

  /**
   * Crashes one of the lab's processes (SIGKILL: a node lost, a pod evicted, an OOM kill): a worker,
   * the API, the witness's Redis, Temporal or the API proxy. `up` starts it again, with its data.
   */
  async crash(part: CrashablePart): Promise<void> {
    const name = part === 'witness' ? DAEMONS.redis : part === 'temporal' ? DAEMONS.temporal : part;
    if (!this.daemons.isRunning(name)) {
      throw new LabError('is not running', part, 'start the lab with `pivot lab up`');
    }
    await this.daemons.crash(name);
  }

  /**
   * Starts again the workers and the API that crashed, on the sites that are up, touching nothing
   * else: a site cut off by a fault stays cut off.
   */
  async startCrashed(): Promise<void> {
    await this.startWorkers();
    await this.startApi();
  }

  /**
   * Restarts every worker (after a code change, in development). `env` is given to the workers:
   * the chaos suite passes PIVOT_LAB_UNSAFE to switch a safety mechanism off for its self-check.
   */
  async restartWorkers(env: Record<string, string> = {}): Promise<void> {
    await this.stopWorkers();
    await this.daemons.stop(DAEMONS.api);
    await this.writeConfig(this.sites());
    await this.startWorkers(env);
    await this.startApi();
  }

  async down({ purge }: { purge: boolean }): Promise<{ leftovers: number[] }> {
    this.progress.step('stopping the API and the workers');
    await this.daemons.stop(DAEMONS.api);
    await this.stopWorkers();
    for (const name of [DAEMONS.apiProxy, DAEMONS.storageSim, DAEMONS.temporal, DAEMONS.redis]) {
      this.progress.step(`stopping ${name}`);
      await this.daemons.stop(name);
    }
    let sites: KwokSites | undefined;
    try {
      sites = this.sites();
    } catch {
      sites = undefined; // no tools: no cluster can have been created by them
    }
    for (const site of SITE_NAMES) {
      if (!sites?.exists(site)) continue;
      this.progress.step(`${purge ? 'deleting' : 'stopping'} ${site}`);
      await (purge ? sites.delete(site) : sites.stop(site)).catch((err: unknown) =>
        this.progress.step(`${site}: ${(err as Error).message}`),
      );
    }
    // Anything still running from this lab's directory (a crashed start, a stray component) goes too.
    const leftovers = labProcesses(this.layout.dir);
    for (const pid of leftovers) await killGroup(pid, 5000);
    if (purge) {
      rmSync(this.layout.dir, { recursive: true, force: true });
      this.progress.step(`removed ${this.layout.dir}`);
    }
    return { leftovers: labProcesses(this.layout.dir) };
  }

  /**
   * Cuts a site off: its API and Pivot's worker there stop answering and its replication link goes
   * down, but its pods keep writing to its copies at the simulated array until a fence stops them
   * (a partition, not a loss: what makes an unplanned failover dangerous). `reviveSite` heals it.
   */
  async partitionSite(name: string): Promise<void> {
    const site = this.checkSiteName(name);
    const sim = this.simulator();
    const { partitioned = [] } = await sim.faults();
    await sim.setFaults({ partitioned: [...new Set([...partitioned, site])] });
    await this.killSite(site);
  }

  private simulator(): StorageSimClient {
    return new StorageSimClient(`http://127.0.0.1:${this.layout.ports.storageSim}`);
  }

  async killSite(name: string): Promise<void> {
    const site = this.checkSiteName(name);
    const status = await this.status();
    const s = status.sites.find((x) => x.name === site)!;
    if (s.state === 'stopped') {
      throw new LabError('is already down', site, `bring it back with \`pivot lab revive-site ${site}\``);
    }
    await this.stopWorkers([site], false);
    await this.sites().stop(site);
    await waitUntil(
      `${site}'s API server to stop answering`,
      async () => !(await isPortOpen(this.layout.ports.apiServer[site])),
      {
        timeoutMs: 30_000,
      },
    );
  }

  async reviveSite(name: string): Promise<void> {
    const site = this.checkSiteName(name);
    const status = await this.status();
    const s = status.sites.find((x) => x.name === site)!;
    if (s.state === 'running') throw new LabError('is already running', site, 'nothing to revive');
    if (!this.sites().exists(site))
      throw new LabError('was never created', site, 'start the lab with `pivot lab up`');
    await this.restartSite(this.sites(), site);
    await this.waitForNodes(site);
    // A partition heals with the site: its replication link returns.
    const sim = this.simulator();
    const { partitioned = [] } = await sim.faults();
    if (partitioned.includes(site))
      await sim.setFaults({ partitioned: partitioned.filter((p) => p !== site) });
    await this.startWorker(site);
  }

  /**
   * Starts a stopped site and hands its leases to the new processes. A killed site's leases still
   * name the dead kube-controller-manager, kube-scheduler and kwok: the new ones would wait for
   * them to expire (kwok's node leases last minutes) before scheduling or running any pod.
   */
  private async restartSite(sites: KwokSites, site: SiteName): Promise<void> {
    await sites.start(site);
    const api = this.site(site);
    const leases = api.kubeConfig.makeApiClient(k8s.CoordinationV1Api);
    await leases.deleteCollectionNamespacedLease({ namespace: 'kube-node-lease' });
    for (const name of ['kube-controller-manager', 'kube-scheduler']) {
      await leases.deleteNamespacedLease({ name, namespace: 'kube-system' }).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
    }
    await waitUntil(
      `${site}'s controllers to take over their leases`,
      async () => {
        const nodeLeases = await leases.listNamespacedLease({ namespace: 'kube-node-lease' });
        const system = await leases.listNamespacedLease({ namespace: 'kube-system' });
        const held = new Set(system.items.map((l) => l.metadata?.name));
        const missing = ['kube-controller-manager', 'kube-scheduler'].filter((n) => !held.has(n));
        return (
          (nodeLeases.items.length >= SIMULATED_NODES && missing.length === 0) ||
          `node leases ${nodeLeases.items.length}/${SIMULATED_NODES}, waiting for ${missing.join(', ')}`
        );
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
  }

  private checkSiteName(name: string): SiteName {
    if (!isSiteName(name)) {
      throw new LabError(`unknown site "${name}"`, 'lab', `use one of: ${SITE_NAMES.join(', ')}`);
    }
    return name;
  }
}

/** Pids of live processes whose command line mentions the lab directory. */
export function labProcesses(labDir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(labDir) && isAlive(pid)) pids.push(pid);
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

/**
 * Links each of the checkout's runbooks into the lab's runbook directory (so that an edit shows at
 * once), and drops links whose runbook is gone. Files of the directory's own are left alone.
 */
export function linkRunbooks(dir: string): void {
  const source = join(REPO_ROOT, 'runbooks');
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir)) {
    const file = join(dir, f);
    if (lstatSync(file).isSymbolicLink() && !existsSync(file)) rmSync(file);
  }
  for (const f of readdirSync(source).filter((n) => n.endsWith('.yaml') || n.endsWith('.yml'))) {
    if (!existsSync(join(dir, f))) symlinkSync(join(source, f), join(dir, f));
  }
}
