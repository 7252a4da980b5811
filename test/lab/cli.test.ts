/**
 * `pivot` as on-call uses it, through the lab's API: status, plan, an operation and its report,
 * decisions, `--json` and `-o`, the documented exit codes for each kind of failure, the question
 * asked on a terminal before a change, `watch` through an API restart, and contexts (docs/cli.md).
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT } from '../../lab/layout.ts';
import type { AppStatus } from '../../api/contract.ts';
import type { Plan } from '../../planner/plan.ts';
import type { OperationReport } from '../../workflows/progress.ts';
import { lab, labJwt, pivot, status } from './helpers.ts';
import { connectPivot, type LabPivot } from './temporal.ts';

let temporal: LabPivot;

beforeAll(async () => {
  temporal = await connectPivot();
});

afterAll(async () => {
  await temporal?.close();
});

describe('pivot through the API', () => {
  it('shows the status of every application, as a table and as JSON', async () => {
    const table = await pivot(['status']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^APP\s+ACTIVE\s+EPOCH\s+FENCED\s+LAG \/ RPO\s+DRIFT\s+OPERATION/);
    expect(table.stdout).toMatch(/^orders\s+dc-a\s+\d+\s+-\s+/m);
    const json = await pivot(['status', 'orders', '--json']);
    expect(json.code).toBe(0);
    const apps = (JSON.parse(json.stdout) as { apps: AppStatus[] }).apps;
    expect(apps).toEqual([
      expect.objectContaining({
        app: 'orders',
        activeSite: 'dc-a',
        epoch: (await temporal.witness.state('orders')).epoch,
        withinRpo: true,
      }),
    ]);
  });

  it('plans through the API without changing anything', async () => {
    const epoch = (await temporal.witness.state('orders')).epoch;
    const r = await pivot(['plan', 'switchover', 'orders', '--json']);
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout) as Plan;
    expect(plan.waves[0]?.apps[0]).toMatchObject({ app: 'orders', from: 'dc-a', to: 'dc-b' });
    expect((await temporal.witness.state('orders')).epoch).toBe(epoch);
  });

  it('switches orders over and fails it back, reporting each; a decision on nothing running is refused', async () => {
    const over = await pivot(['switchover', 'orders', '--yes', '--wait', '--json', '--reason', 'cli test']);
    expect({ code: over.code, stderr: over.code === 0 ? '' : over.stderr }).toEqual({ code: 0, stderr: '' });
    const report = JSON.parse(over.stdout) as OperationReport;
    expect(report).toMatchObject({
      operation: 'switchover',
      to: 'dc-b',
      outcome: 'succeeded',
      trigger: 'cli',
      requestedBy: 'token:lab-operator',
      reason: 'cli test',
    });
    expect(over.stderr).toContain('orders: switchover dc-a → dc-b started (pivot-orders)');
    expect(over.stderr).toMatch(/✓ promote-target/);

    const back = await pivot(['failback', 'orders', '--yes', '--wait', '--reason', 'cli test: home again']);
    expect(back.code).toBe(0);
    expect(back.stdout).toContain('failback of orders: dc-b → dc-a (planned) — SUCCEEDED');

    const last = await pivot(['report', 'orders', '--json']);
    expect(last.code).toBe(0);
    expect(JSON.parse(last.stdout)).toMatchObject({ operation: 'failback', outcome: 'succeeded' });

    const approve = await pivot(['approve', 'orders']);
    expect(approve.code).toBe(1);
    expect(approve.stderr).toContain('no operation is running (the last one, failback, ended');
  }, 240_000);
});

describe('exit codes and friendly errors', () => {
  it('2: an unknown application, or applications and a site at once', async () => {
    const unknown = await pivot(['plan', 'switchover', 'payments']);
    expect(unknown).toMatchObject({ code: 2 });
    expect(unknown.stderr).toBe('error: unknown application: payments\n  next: known: orders\n');
    const both = await pivot(['switchover', 'orders', '--site', 'dc-a', '--yes', '--reason', 'cli test']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('name applications or a site, not both');
    const report = await pivot(['report', 'payments']);
    expect(report.code).toBe(2);
    expect(report.stderr).toContain('no operation pivot-payments is on record');
  });

  it('2: an operation without a reason is refused before anything is asked of the API', async () => {
    const r = await pivot(['switchover', 'orders', '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('say why with --reason');
    const d = await pivot(['drill', 'run', 'orders']);
    expect(d.code).toBe(2);
    expect(d.stderr).toContain('say why with --reason');
  });

  it('3: a refused credential, or a role that may not do it; nothing starts', async () => {
    const epoch = (await temporal.witness.state('orders')).epoch;
    const bogus = await pivot(['status'], { PIVOT_TOKEN: 'pivot-lab-viewer-guessed' });
    expect(bogus.code).toBe(3);
    expect(bogus.stderr).toContain('a valid bearer token is required');
    const viewer = await pivot(['switchover', 'orders', '--yes', '--reason', 'cli test'], {
      PIVOT_TOKEN: (await status()).api.tokens.viewer!,
    });
    expect(viewer.code).toBe(3);
    expect(viewer.stderr).toContain('lab-viewer may not operate');
    const expired = await pivot(['status'], {
      PIVOT_TOKEN: await labJwt('vera', ['dr-viewers'], { expiresAt: Math.floor(Date.now() / 1000) - 120 }),
    });
    expect(expired.code).toBe(3);
    expect(expired.stderr).toContain('the token has expired');
    const noToken = await pivot(['status'], { PIVOT_API_URL: (await status()).api.url });
    expect(noToken.code).toBe(3);
    expect(noToken.stderr).toContain('but no token is: neither PIVOT_TOKEN nor PIVOT_TOKEN_FILE');
    expect((await temporal.witness.state('orders')).epoch).toBe(epoch);
  });

  it('4: the API does not answer', async () => {
    const r = await pivot(['status'], { PIVOT_API_URL: 'http://127.0.0.1:9', PIVOT_TOKEN: 'x' });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('the Pivot API at http://127.0.0.1:9 does not answer');
    expect(r.stderr).toContain('next: check PIVOT_API_URL');
  });
});

/**
 * Runs `pivot ARGS` on a real terminal (util-linux `script` gives it a pty), typing `answer`.
 * Returns what the terminal showed (stdout and stderr together).
 */
function onTerminal(args: string[], answer: string): Promise<{ code: number; shown: string }> {
  return new Promise((resolve) => {
    const command = [process.execPath, join(REPO_ROOT, 'bin', 'pivot.js'), ...args]
      .map((a) => `'${a}'`)
      .join(' ');
    const child = spawn('script', ['-qefc', command, '/dev/null'], {
      env: { ...process.env, NODE_OPTIONS: '', PIVOT_CLI_CONFIG: '/nonexistent/pivot-cli.yaml' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let shown = '';
    child.stdout.on('data', (d: Buffer) => (shown += d.toString()));
    child.stderr.on('data', (d: Buffer) => (shown += d.toString()));
    // Typed once the question is on screen, as a person would; stdin stays open until the end.
    const typeWhenAsked = setInterval(() => {
      if (shown.includes('[y/N]')) {
        clearInterval(typeWhenAsked);
        child.stdin.write(answer);
      }
    }, 100);
    child.on('exit', (code) => {
      clearInterval(typeWhenAsked);
      child.stdin.end();
      resolve({ code: code ?? 1, shown: shown.replace(/\r/g, '') });
    });
  });
}

describe("on-call's habits", () => {
  it('asks on a terminal with the plan; "n" changes nothing, "y" starts; watch rides out an API restart', async () => {
    const epoch = (await temporal.witness.state('orders')).epoch;
    const no = await onTerminal(['switchover', 'orders', '--reason', 'habits test'], 'n\n');
    expect({ code: no.code, asked: no.shown.includes('[y/N]') }).toEqual({ code: 1, asked: true });
    expect(no.shown).toContain('switchover: 1 application in 1 wave');
    expect(no.shown).toMatch(/wave 1 {2}orders: dc-a → dc-b; approval none; data loss none/);
    expect(no.shown).toContain('point of no return:');
    expect(no.shown).toContain('switchover orders? [y/N]');
    expect(no.shown).toContain('not confirmed: nothing was done');
    expect((await temporal.witness.state('orders')).epoch).toBe(epoch);
    const statusAfterNo = JSON.parse((await pivot(['status', 'orders', '-o', 'json'])).stdout) as {
      apps: AppStatus[];
    };
    expect(statusAfterNo.apps[0]).toMatchObject({ activeSite: 'dc-a', operationRunning: null });

    const yes = await onTerminal(['switchover', 'orders', '--reason', 'habits test'], 'y\n');
    expect({ code: yes.code, shown: yes.code === 0 ? '' : yes.shown }).toEqual({ code: 0, shown: '' });
    expect(yes.shown).toContain('orders: switchover dc-a → dc-b started (pivot-orders)');

    const watching = pivot(['watch', 'orders']);
    await new Promise((r) => setTimeout(r, 1500));
    await lab.crash('api');
    await new Promise((r) => setTimeout(r, 3000));
    await lab.startCrashed();
    const watched = await watching;
    expect({ code: watched.code, stderr: watched.code === 0 ? '' : watched.stderr }).toEqual({
      code: 0,
      stderr: '',
    });
    expect(watched.stderr).toContain('the API did not answer');
    expect(watched.stderr).toContain('the operation goes on without us');
    expect(watched.stderr).toMatch(/the API answers again \(after \d+ s\)/);
    expect(watched.stdout).toContain('switchover of orders: dc-a → dc-b (planned) — SUCCEEDED');

    const back = await pivot(['failback', 'orders', '--yes', '--wait', '--reason', 'cli test: home again']);
    expect(back.code).toBe(0);
  }, 240_000);

  it('prints the same status as a table, JSON and YAML', async () => {
    const [table, json, yaml] = await Promise.all([
      pivot(['status', 'orders']),
      pivot(['status', 'orders', '-o', 'json']),
      pivot(['status', 'orders', '-o', 'yaml']),
    ]);
    expect(table.stdout).toMatch(/^APP\s+ACTIVE\s+EPOCH/);
    const fromJson = JSON.parse(json.stdout) as { apps: AppStatus[] };
    const fromYaml = parseYaml(yaml.stdout) as { apps: AppStatus[] };
    // The lag moves between two reads; everything else is the same.
    const still = (r: { apps: AppStatus[] }) =>
      r.apps.map(({ replicationLagMs: _lag, withinRpo: _w, ...rest }) => rest);
    expect(still(fromYaml)).toEqual(still(fromJson));
  });

  it('talks to the installation a context names, with the token from its file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pivot-contexts-'));
    const config = join(dir, 'cli.yaml');
    const tokenFile = join(dir, 'lab.token');
    writeFileSync(tokenFile, `${(await status()).api.tokens.viewer!}\n`);
    chmodSync(tokenFile, 0o600);
    const env = { PIVOT_CLI_CONFIG: config };
    const url = (await status()).api.url;
    expect(
      (await pivot(['config', 'set-context', 'lab', '--url', url, '--token-file', tokenFile], env)).code,
    ).toBe(0);
    expect(
      (
        await pivot(
          ['config', 'set-context', 'elsewhere', '--url', 'http://127.0.0.1:9', '--token-env', 'NOPE'],
          env,
        )
      ).code,
    ).toBe(0);
    expect((await pivot(['config', 'use-context', 'lab'], env)).code).toBe(0);
    const shown = await pivot(['status', 'orders', '--json'], env);
    expect(shown.code).toBe(0);
    expect((JSON.parse(shown.stdout) as { apps: AppStatus[] }).apps[0]?.app).toBe('orders');
    // The viewer's token may read, not operate: the context's token is the one sent.
    const refused = await pivot(['switchover', 'orders', '--yes', '--reason', 'cli test'], env);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('lab-viewer may not operate');
    // --context picks another one for one command.
    const other = await pivot(['--context', 'elsewhere', 'status'], { ...env, NOPE: 'x' });
    expect(other.code).toBe(4);
    expect(other.stderr).toContain('the Pivot API at http://127.0.0.1:9 does not answer');
    expect(other.stderr).toContain('check the url of context elsewhere');
  });
});
