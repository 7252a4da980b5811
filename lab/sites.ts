/**
 * One datacenter of the lab: a real Kubernetes control plane (etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler) plus kwok simulating its nodes, managed by kwokctl's
 * binary runtime from the tools that lab/tools/provision.sh built. kill-site / revive-site are
 * kwokctl's stop / start: the processes go, etcd's data stays.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
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

  async create(site: SiteName): Promise<void> {
    const b = this.tools.bin;
    await this.kwokctl([
      'create',
      'cluster',
      '--name',
      site,
      '--runtime',
      'binary',
      '--kubeconfig',
      join(this.layout.kwokDir, 'all-sites.kubeconfig'),
      '--kube-apiserver-port',
      String(this.layout.ports.apiServer[site]),
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
      '--wait',
      '3m',
    ]);
    await this.kwokctl(['scale', 'node', '--name', site, '--replicas', String(SIMULATED_NODES)]);
  }

  async start(site: SiteName): Promise<void> {
    await this.kwokctl(['start', 'cluster', '--name', site, '--wait', '3m']);
  }

  async stop(site: SiteName): Promise<void> {
    await this.kwokctl(['stop', 'cluster', '--name', site]);
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
