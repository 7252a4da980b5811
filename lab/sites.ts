/**
 * One datacenter of the lab: a real Kubernetes control plane (etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler) plus kwok simulating its nodes, managed by kwokctl's
 * binary runtime from the tools that lab/tools/provision.sh built. kill-site / revive-site are
 * kwokctl's stop / start: the processes go, etcd's data stays.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { LabLayout, SiteName } from './layout.ts';
import type { ToolPaths } from './tools.ts';

const run = promisify(execFile);

export const SIMULATED_NODES = 3;

export class KwokSites {
  constructor(
    private readonly layout: LabLayout,
    private readonly tools: ToolPaths,
  ) {}

  private env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      // kwokctl runs `kubectl` from PATH to check readiness: ours first, not an older one.
      PATH: `${this.tools.binDir}:${process.env['PATH'] ?? ''}`,
      KWOK_WORKDIR: this.layout.kwokDir,
      KWOK_RUNTIME: 'binary',
      KWOK_KUBE_VERSION: this.tools.kubeVersion,
    };
  }

  clusterDir(site: SiteName): string {
    return join(this.layout.kwokDir, 'clusters', site);
  }

  kubeconfig(site: SiteName): string {
    return join(this.clusterDir(site), 'kubeconfig.yaml');
  }

  exists(site: SiteName): boolean {
    return existsSync(join(this.clusterDir(site), 'kwok.yaml'));
  }

  logFile(site: SiteName): string {
    return join(this.clusterDir(site), 'logs');
  }

  private async kwokctl(args: string[], timeoutMs = 300_000): Promise<string> {
    try {
      const { stdout, stderr } = await run(this.tools.bin.kwokctl, args, {
        env: this.env(),
        timeout: timeoutMs,
        maxBuffer: 16 * 1024 * 1024,
      });
      return stdout + stderr;
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(
        `kwokctl ${args.join(' ')} failed: ${(e.stderr || e.stdout || e.message).trim().slice(-2000)}`,
      );
    }
  }

  /**
   * kwokctl's own config for a site: loopback only, and the etcd peer port (which has no flag).
   * Every port is fixed: kwokctl's random choice could hand a stopped site's ports to another.
   */
  private writeConfig(site: SiteName): string {
    const file = join(this.layout.kwokDir, `${site}.kwokctl.yaml`);
    const execDir = join(this.layout.kwokDir, `exec-${site}`);
    mkdirSync(execDir, { recursive: true });
    writeFileSync(
      file,
      [
        'apiVersion: config.kwok.x-k8s.io/v1alpha1',
        'kind: KwokctlConfiguration',
        'options:',
        '  bindAddress: 127.0.0.1',
        `  etcdPeerPort: ${this.layout.ports.siteComponents[site].etcdPeer}`,
        // Exec into a simulated pod runs the command on this machine, in the site's exec
        // directory: what lets exec hooks run in the lab (kwok's ClusterExec, local only).
        '---',
        'apiVersion: kwok.x-k8s.io/v1alpha1',
        'kind: ClusterExec',
        'metadata:',
        '  name: lab-local-exec',
        'spec:',
        '  execs:',
        '    - local:',
        `        workDir: ${execDir}`,
        '        envs:',
        `          - { name: PIVOT_LAB_SITE, value: ${site} }`,
        '',
      ].join('\n'),
    );
    return file;
  }

  async create(site: SiteName): Promise<void> {
    const b = this.tools.bin;
    const ports = this.layout.ports.siteComponents[site];
    await this.kwokctl([
      '--name',
      site,
      '-c',
      this.writeConfig(site),
      'create',
      'cluster',
      '--runtime',
      'binary',
      // Each site has its own kubeconfig in its cluster directory; never touch ~/.kube/config.
      '--kubeconfig',
      '',
      '--kube-apiserver-port',
      String(this.layout.ports.apiServer[site]),
      '--etcd-port',
      String(ports.etcd),
      '--controller-port',
      String(ports.kwokController),
      '--kube-controller-manager-port',
      String(ports.kubeControllerManager),
      '--kube-scheduler-port',
      String(ports.kubeScheduler),
      '--etcd-binary',
      b.etcd,
      '--kube-apiserver-binary',
      b['kube-apiserver'],
      '--kube-controller-manager-binary',
      b['kube-controller-manager'],
      '--kube-scheduler-binary',
      b['kube-scheduler'],
      '--kwok-controller-binary',
      b.kwok,
      // kwok renews node leases every quarter of their duration, and a restarted kwok retries at
      // that pace: short leases let a revived site run pods within seconds, not minutes.
      '--node-lease-duration-seconds',
      '4',
      '--wait',
      '3m',
    ]);
    await this.kwokctl(['--name', site, 'scale', 'node', '--replicas', String(SIMULATED_NODES)]);
  }

  async start(site: SiteName): Promise<void> {
    await this.kwokctl(['--name', site, 'start', 'cluster', '--wait', '3m']);
  }

  async stop(site: SiteName): Promise<void> {
    await this.kwokctl(['--name', site, 'stop', 'cluster']);
  }

  async delete(site: SiteName): Promise<void> {
    await this.kwokctl([
      'delete',
      'cluster',
      '--name',
      site,
      '--kubeconfig',
      join(this.layout.kwokDir, 'all-sites.kubeconfig'),
    ]);
  }
}
