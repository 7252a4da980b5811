#!/usr/bin/env node
// Installs what `npm run demo` or `npm test` needs and is missing or stale, so that both work on a
// fresh clone with nothing run before them (npm runs this as their `pre` script). Plain Node with
// no dependencies: it runs before node_modules exists.
//
//   node lab/tools/ensure.mjs demo   the Node dependencies (the lab builds its own tools on `up`)
//   node lab/tools/ensure.mjs test   the same, plus every tool the suites run: the lab's tools,
//                                    Temporal's time-skipping test server, and what checks the Helm
//                                    chart: helm, kubeconform and its Kubernetes schemas
//                                    (lab/tools/provision.sh, cached outside the checkout), Debian's
//                                    chromium and promtool
//
// Cheap when everything is in place: it compares file times and looks at PATH.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Why the Node dependencies must be (re)installed, or undefined when node_modules matches the lock
 * file: npm writes node_modules/.package-lock.json on every install, so a lock file newer than it
 * (a pull, a checkout, an edit) means node_modules is stale.
 */
export function staleDependencies(root) {
  const lock = join(root, 'package-lock.json');
  const installed = join(root, 'node_modules', '.package-lock.json');
  if (!existsSync(installed)) return 'node_modules is not installed';
  if (statSync(lock).mtimeMs > statSync(installed).mtimeMs)
    return 'package-lock.json changed since the last install';
  return undefined;
}

/** Whether `command` is an executable on PATH. */
export function onPath(command, path = process.env.PATH ?? '') {
  return path.split(delimiter).some((dir) => dir && existsSync(join(dir, command)));
}

function say(message) {
  process.stderr.write(`[ensure] ${message}\n`);
}

function run(command, args) {
  say(`running: ${command} ${args.join(' ')}`);
  const r = spawnSync(command, args, {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0) {
    say(`FAILED: ${command} ${args.join(' ')} (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
}

/** [command, the Debian package that provides it] */
export const DEBIAN_TOOLS = [
  ['chromium', 'chromium'],
  ['promtool', 'prometheus'],
];

function main(purpose) {
  if (purpose !== 'demo' && purpose !== 'test') {
    say('usage: node lab/tools/ensure.mjs demo|test');
    process.exit(2);
  }
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 3)) {
    say(`Node ${process.versions.node} is too old: Pivot needs 20.3 or newer`);
    process.exit(1);
  }
  const stale = staleDependencies(ROOT);
  if (stale) {
    say(`${stale}: installing the Node dependencies`);
    run('npm', ['ci', '--no-audit', '--no-fund']);
  }
  if (purpose === 'test') {
    // Debian packages the tests use: Chromium renders the drill evidence and drives the board;
    // promtool checks and unit-tests the Prometheus rules in deploy/.
    const missing = DEBIAN_TOOLS.filter(([command]) => !onPath(command)).map(([, pkg]) => pkg);
    if (missing.length > 0) {
      if (process.getuid?.() !== 0) {
        say(
          `${missing.join(', ')} missing and this is not root: install the Debian packages, then run again`,
        );
        process.exit(1);
      }
      run('apt-get', ['update', '-qq']);
      run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing]);
    }
    // Every tool (no argument: all of them, helm, kubeconform and kube-schemas included).
    // Idempotent and quick once built: checks the pinned versions in its cache.
    const r = spawnSync('bash', [join(ROOT, 'lab', 'tools', 'provision.sh')], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main(process.argv[2]);
