/**
 * `npm run demo` and `npm test` start with lab/tools/ensure.mjs: it must reinstall the Node
 * dependencies exactly when node_modules does not match the lock file.
 */
import { mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onPath, staleDependencies } from '../../lab/tools/ensure.mjs';

function checkout(): string {
  const root = mkdtempSync(join(tmpdir(), 'pivot-ensure-'));
  writeFileSync(join(root, 'package.json'), '{}');
  writeFileSync(join(root, 'package-lock.json'), '{}');
  return root;
}

const at = (file: string, seconds: number) => utimesSync(file, seconds, seconds);

describe('staleDependencies', () => {
  it('asks for an install on a fresh clone', () => {
    expect(staleDependencies(checkout())).toBe('node_modules is not installed');
  });

  it('is satisfied when the last install is newer than the lock file', () => {
    const root = checkout();
    mkdirSync(join(root, 'node_modules'));
    at(join(root, 'package-lock.json'), 1_000);
    writeFileSync(join(root, 'node_modules', '.package-lock.json'), '{}');
    at(join(root, 'node_modules', '.package-lock.json'), 2_000);
    expect(staleDependencies(root)).toBeUndefined();
  });

  it('asks again when the lock file changed after the install (a pull, a checkout)', () => {
    const root = checkout();
    mkdirSync(join(root, 'node_modules'));
    writeFileSync(join(root, 'node_modules', '.package-lock.json'), '{}');
    at(join(root, 'node_modules', '.package-lock.json'), 1_000);
    at(join(root, 'package-lock.json'), 2_000);
    expect(staleDependencies(root)).toBe('package-lock.json changed since the last install');
  });
});

describe('onPath', () => {
  it('finds an executable in one of the PATH entries, and nothing in an empty PATH', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pivot-path-'));
    writeFileSync(join(dir, 'chromium'), '');
    expect(onPath('chromium', `/nonexistent:${dir}`)).toBe(true);
    expect(onPath('chromium', '')).toBe(false);
  });
});
