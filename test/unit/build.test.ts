/**
 * The image runs Pivot compiled (docs/image.md): `npm run build` (deploy/image/build.mjs) must emit
 * JavaScript that plain node runs, with no tsx and no `.ts` import left, and with the files the
 * modules read beside them. One build, into a temporary directory laid out as the image's /app
 * (dist/ beside node_modules, here a link to the checkout's), never into the checkout's dist/; then
 * each process is started from it far enough to answer: its usage, its version, or its
 * configuration error. The control worker's workflow bundle is built from the compiled workflows.
 */
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PIVOT_VERSION } from '../../common/version.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const app = mkdtempSync(join(tmpdir(), 'pivot-build-'));
const dist = join(app, 'dist');
/** Plain node: no NODE_OPTIONS (so no tsx, no loader), no configuration, no lab to fall back to. */
const ENV: NodeJS.ProcessEnv = {
  PATH: process.env['PATH'],
  HOME: app,
  PIVOT_LAB_DIR: join(app, 'no-lab'),
  PIVOT_CLI_CONFIG: join(app, 'cli.yaml'),
};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function node(args: string[], cwd = app): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd, env: ENV, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** What a run that got past module loading never says. */
function loaded(run: Run): void {
  expect(run.stderr).not.toMatch(/ERR_MODULE_NOT_FOUND|ERR_UNKNOWN_FILE_EXTENSION|ERR_REQUIRE_ESM|ENOENT/);
  expect(run.stderr).not.toMatch(/SyntaxError|Cannot find module|Unknown file extension/);
}

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? jsFiles(join(dir, e.name)) : e.name.endsWith('.js') ? [join(dir, e.name)] : [],
  );
}

beforeAll(async () => {
  symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'), 'dir');
  const build = await node([join(ROOT, 'deploy', 'image', 'build.mjs'), dist], ROOT);
  if (build.code !== 0) throw new Error(`the build failed (${build.code}):\n${build.stdout}${build.stderr}`);
}, 240_000);

afterAll(() => rmSync(app, { recursive: true, force: true }));

describe('the build', () => {
  it('emits each entry point and what the modules read beside them', () => {
    for (const file of [
      'entrypoint.js',
      'package.json',
      'cli/main.js',
      'worker/main.js',
      'api/main.js',
      'workflows/index.js',
      'api/board/static/index.html',
      'api/board/static/board.js',
      'api/board/static/board.css',
    ]) {
      expect([file, existsSync(join(dist, file))]).toEqual([file, true]);
    }
    const pkg = JSON.parse(readFileSync(join(dist, 'package.json'), 'utf8')) as {
      type: string;
      version: string;
    };
    expect(pkg).toMatchObject({ type: 'module', version: PIVOT_VERSION });
  });

  it('leaves out the tests and the benchmark', () => {
    expect(existsSync(join(dist, 'test'))).toBe(false);
    expect(existsSync(join(dist, 'bench'))).toBe(false);
  });

  it('leaves no import of a .ts file, of tsx, or computed at run time', () => {
    const found: string[] = [];
    let seen = 0;
    const specifier = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)(['"`])([^'"`]+)\1/g;
    for (const file of jsFiles(dist)) {
      const text = readFileSync(file, 'utf8');
      for (const [, , spec] of text.matchAll(specifier)) {
        seen += 1;
        if (/\.[cm]?tsx?$/.test(spec!) || /^tsx(\/|$)/.test(spec!))
          found.push(`${relative(dist, file)}: ${spec}`);
      }
      // tsc's run-time rewriting of a computed import('...' + x): the path would not be checked.
      if (text.includes('__rewriteRelativeImportExtension'))
        found.push(`${relative(dist, file)}: computed import`);
    }
    expect(found).toEqual([]);
    // The pattern does see the imports: every compiled module has some.
    expect(seen).toBeGreaterThan(jsFiles(dist).length);
  });
});

describe('each process from the build, with plain node', () => {
  it('the CLI prints its version and its help', async () => {
    const [version, help] = await Promise.all([
      node([join(dist, 'cli', 'main.js'), '--version']),
      node([join(dist, 'cli', 'main.js'), '--help']),
    ]);
    loaded(version);
    expect(version).toMatchObject({ code: 0, stdout: `${PIVOT_VERSION}\n` });
    loaded(help);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: pivot /);
    expect(help.stdout).toContain('switchover');
  });

  it('the worker prints its usage without a role', async () => {
    const run = await node([join(dist, 'worker', 'main.js')]);
    loaded(run);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^usage: .*control\|site <name>/);
  });

  it.each([
    ['the worker', ['worker/main.js', 'control']],
    ['the API', ['api/main.js']],
  ])('%s loads every module, then stops at the missing configuration', async (_name, [main, ...args]) => {
    const absent = join(app, 'absent.yaml');
    const [none, named] = await Promise.all([
      node([join(dist, main!), ...args]),
      node([join(dist, main!), ...args, '--config', absent]),
    ]);
    loaded(none);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('ConfigError: (no configuration): no configuration found');
    loaded(named);
    expect(named.code).toBe(1);
    expect(named.stderr).toContain(`ConfigError: ${absent}: the file does not exist`);
  });

  it('the image entrypoint starts the process its first argument names', async () => {
    const entrypoint = join(dist, 'entrypoint.js');
    const [cli, usage, worker, api] = await Promise.all([
      node([entrypoint, 'pivot', '--version']),
      node([entrypoint, 'worker']),
      node([entrypoint, 'worker', 'control']),
      node([entrypoint, 'api']),
    ]);
    expect(cli).toMatchObject({ code: 0, stdout: `${PIVOT_VERSION}\n` });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^usage: .*control\|site <name>/);
    for (const run of [worker, api]) {
      loaded(run);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('no configuration found');
    }
  });

  it('the image entrypoint refuses a process it does not know, with its usage', async () => {
    const entrypoint = join(dist, 'entrypoint.js');
    const [none, unknown, help] = await Promise.all([
      node([entrypoint]),
      node([entrypoint, 'constructor']),
      node([entrypoint, '--help']),
    ]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^usage: worker /);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^usage: worker /);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^usage: worker /);
  });

  it("the control worker's workflow bundle builds from the compiled workflows", async () => {
    // What Worker.create does with workflowsPath when the control worker starts.
    const script = join(app, 'bundle.mjs');
    writeFileSync(
      script,
      [
        "import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';",
        "import { WORKFLOWS_PATH } from './dist/worker/workers.js';",
        "const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') });",
        'process.stdout.write(JSON.stringify({ path: WORKFLOWS_PATH, size: code.length }));',
      ].join('\n'),
    );
    const run = await node([script]);
    loaded(run);
    expect(run.code).toBe(0);
    const bundle = JSON.parse(run.stdout) as { path: string; size: number };
    expect(bundle.path).toBe(join(dist, 'workflows', 'index.js'));
    expect(bundle.size).toBeGreaterThan(100_000);
  }, 120_000);
});
