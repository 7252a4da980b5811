/**
 * The lab's tools, as lab/tools/provision.sh leaves them: one bin directory of links to versioned,
 * cached builds. Provisioning is idempotent and fast when everything is cached, so `lab up` always
 * runs it; the first run builds for many minutes and shows its progress on stderr.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './layout.ts';

export const TOOL_NAMES = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubectl',
  'kwok',
  'kwokctl',
  'temporal',
  'redis-server',
] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

/** Not a tool of the lab: the tests that skip time run it (lab/tools/provision.sh builds it too). */
export const TEST_SERVER = 'temporal-test-server';

export interface ToolPaths {
  binDir: string;
  bin: Record<ToolName, string>;
  kubeVersion: string;
}

const PROVISION = join(REPO_ROOT, 'lab', 'tools', 'provision.sh');

export function pinnedVersions(): Record<string, string> {
  const text = readFileSync(join(REPO_ROOT, 'lab', 'tools', 'versions.env'), 'utf8');
  return Object.fromEntries(
    text
      .split('\n')
      .map((l) => /^([A-Z_]+)=(\S+)/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
}

/**
 * What `lab up` asks the script for: the lab's own tools, so that the lab needs no Java (the test
 * server is for the tests; `npm run tools` and CI provision everything).
 */
const LAB_TOOLS = ['redis', 'kwok', 'temporal', 'etcd', 'kube'] as const;

/** Runs the provisioning script for `tools` (progress on this process's stderr); returns the bin directory. */
function provision(tools: readonly string[]): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const child = spawn('bash', [PROVISION, ...tools], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out.trim().split('\n').pop() ?? '');
      else
        reject(
          new Error(
            `tool provisioning failed (exit ${code}); see the messages above and ~/.cache/pivot/tools/logs/`,
          ),
        );
    });
  });
}

/** Provisions the lab's tools and returns their paths. */
export async function provisionTools(): Promise<ToolPaths> {
  return toolPaths(await provision(LAB_TOOLS));
}

/**
 * Provisions Temporal's time-skipping test server (a Java wrapper; the first run resolves it
 * through Maven) and returns the executable to give TestWorkflowEnvironment.createTimeSkipping.
 */
export async function provisionTestServer(): Promise<string> {
  const path = join(await provision([TEST_SERVER]), TEST_SERVER);
  if (!existsSync(path)) throw new Error(`${path} is missing after provisioning; run npm run tools`);
  return path;
}

export function toolPaths(binDir: string): ToolPaths {
  const bin = Object.fromEntries(TOOL_NAMES.map((n) => [n, join(binDir, n)])) as Record<ToolName, string>;
  const missing = TOOL_NAMES.filter((n) => !existsSync(bin[n]));
  if (missing.length > 0)
    throw new Error(`tools missing from ${binDir}: ${missing.join(', ')}; run npm run tools`);
  return { binDir, bin, kubeVersion: pinnedVersions()['KUBE_VERSION'] ?? 'v1.34.4' };
}
