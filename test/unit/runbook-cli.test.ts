/**
 * `pivot runbook validate` and `pivot runbook schema` as scripts and on-call see them: output,
 * `--json`, and exit codes (0 valid, 2 with every error). They read files only, so they run here
 * without the lab. The commands start together: each pays a few seconds of CLI start-up.
 * (`pivot runbook schema` prints the schema const as JSON; runbook-schema.test.ts checks that
 * the committed file is exactly that text.)
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ORDERS = join(ROOT, 'runbooks', 'orders.yaml');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function pivot(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, 'bin', 'pivot.js'), ...args],
      // The CLI runs under tsx; jest's vm-modules flag is not for it.
      { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } },
      (err, stdout, stderr) => {
        const code = (err as { code?: unknown } | null)?.code;
        resolve({ status: err ? (typeof code === 'number' ? code : null) : 0, stdout, stderr });
      },
    );
  });
}

const dir = mkdtempSync(join(tmpdir(), 'pivot-runbook-cli-'));
const broken = join(dir, 'broken.yaml');
const missing = join(dir, 'missing.yaml');
writeFileSync(
  broken,
  readFileSync(ORDERS, 'utf8').replace('kind: Deployment', 'kind: Deploymnet').replace('rto: 10m', 'rto: 10'),
);

let valid: Run, invalid: Run, json: Run;
beforeAll(async () => {
  [valid, invalid, json] = await Promise.all([
    pivot('runbook', 'validate', ORDERS, '--sites', 'dc-a,dc-b'),
    pivot('runbook', 'validate', ORDERS, broken),
    pivot('runbook', 'validate', ORDERS, missing, '--json'),
  ]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('pivot runbook validate', () => {
  it('prints one OK line per valid file and exits 0', () => {
    expect(valid.status).toBe(0);
    expect(valid.stdout).toBe(
      `ok ${ORDERS}: orders (dc-a → dc-b), 3 workloads, 1 volume group, 1 hook, tier 1\n`,
    );
  });

  it('prints every error with its place, across files too, and exits 2', () => {
    expect(invalid.status).toBe(2);
    expect(invalid.stdout.trim().split('\n')).toEqual([
      `ok ${ORDERS}: orders (dc-a → dc-b), 3 workloads, 1 volume group, 1 hook, tier 1`,
      `${broken}:7:9: metadata.name: runbook name "orders" is already used by ${ORDERS}:7:9 (expected a name no other runbook has)`,
      `${broken}:23:13: spec.workloads[2].kind: unknown value "Deploymnet" (expected one of "StatefulSet" or "Deployment") — hint: did you mean "Deployment"?`,
      expect.stringMatching(
        /^.*broken\.yaml:54:10: spec\.objectives\.rto: found the number 10 .* — hint: add a unit, such as "10s"$/,
      ),
    ]);
    expect(invalid.stderr).toBe('1 of 2 files invalid, 3 errors\n');
  });

  it('reports every file with --json, including one it cannot read', () => {
    expect(json.status).toBe(2);
    expect(JSON.parse(json.stdout)).toEqual({
      files: [
        { file: ORDERS, valid: true, errors: [] },
        {
          file: missing,
          valid: false,
          errors: [expect.objectContaining({ file: missing, line: 1, column: 1, rule: 'file' })],
        },
      ],
    });
  });
});
