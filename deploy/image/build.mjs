#!/usr/bin/env node
// `npm run build`: compiles Pivot to JavaScript (tsconfig.build.json) into dist/, or into the
// directory given as the only argument (test/unit/build.test.ts builds into a temporary one), then
// puts beside the compiled modules what they read at run time relative to themselves:
//   api/board/static/  the status board's page, script and stylesheet (api/board/router.ts)
//   package.json       Pivot's version (common/version.ts); it also marks the tree as ES modules
//   entrypoint.js      the image's entrypoint (deploy/image/entrypoint.js)
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = resolve(process.argv[2] ?? join(ROOT, 'dist'));

// The output is emptied first, so a module deleted from the source leaves no stale copy. It must
// therefore be dist/ or a directory apart from the checkout (neither in it nor above it), and be
// new, empty or an earlier build: never sources, never anything else.
const within = (from, to) => {
  const path = relative(from, to);
  return path === '' || (!isAbsolute(path) && path !== '..' && !path.startsWith('..' + sep));
};
const apart = !within(ROOT, out) && !within(out, ROOT);
const reusable = !existsSync(out) || readdirSync(out).length === 0 || existsSync(join(out, 'entrypoint.js'));
if (!(out === join(ROOT, 'dist') || apart) || !reusable) {
  process.stderr.write(`build: refusing to empty ${out}: not dist/, a new directory or an earlier build\n`);
  process.exit(2);
}
rmSync(out, { recursive: true, force: true });
// The entrypoint first: it is what marks the directory as a build, even one that tsc then fails.
mkdirSync(out, { recursive: true });
cpSync(join(ROOT, 'deploy', 'image', 'entrypoint.js'), join(out, 'entrypoint.js'));

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const compiled = spawnSync(
  process.execPath,
  [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', out],
  {
    cwd: ROOT,
    stdio: 'inherit',
  },
);
if (compiled.status !== 0) process.exit(compiled.status ?? 1);

cpSync(join(ROOT, 'api', 'board', 'static'), join(out, 'api', 'board', 'static'), { recursive: true });
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const runtime = { name: pkg.name, version: pkg.version, private: true, license: pkg.license, type: pkg.type };
writeFileSync(join(out, 'package.json'), JSON.stringify(runtime, null, 2) + '\n');

process.stdout.write(`build: compiled into ${out}\n`);
