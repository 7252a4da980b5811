/**
 * `pivot` as on-call uses it, through the lab's API: status, plan, an operation and its report,
 * decisions, `--json`, and the documented exit codes for each kind of failure (docs/cli.md).
 */
import type { AppStatus } from '../../api/contract.ts';
import type { Plan } from '../../planner/plan.ts';
import type { OperationReport } from '../../workflows/progress.ts';
import { labJwt, pivot, status } from './helpers.ts';
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
    const over = await pivot(['switchover', 'orders', '--wait', '--json', '--reason', 'cli test']);
    expect({ code: over.code, stderr: over.code === 0 ? '' : over.stderr }).toEqual({ code: 0, stderr: '' });
    const report = JSON.parse(over.stdout) as OperationReport;
    expect(report).toMatchObject({
      operation: 'switchover',
      to: 'dc-b',
      outcome: 'succeeded',
      trigger: 'cli',
      requestedBy: 'lab-operator',
      reason: 'cli test',
    });
    expect(over.stderr).toContain('orders: switchover dc-a → dc-b started (pivot-orders)');
    expect(over.stderr).toMatch(/✓ promote-target/);

    const back = await pivot(['failback', 'orders', '--wait']);
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
    const both = await pivot(['switchover', 'orders', '--site', 'dc-a']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('name applications or a site, not both');
    const report = await pivot(['report', 'payments']);
    expect(report.code).toBe(2);
    expect(report.stderr).toContain('no operation pivot-payments is on record');
  });

  it('3: a refused credential, or a role that may not do it; nothing starts', async () => {
    const epoch = (await temporal.witness.state('orders')).epoch;
    const bogus = await pivot(['status'], { PIVOT_TOKEN: 'pivot-lab-viewer-guessed' });
    expect(bogus.code).toBe(3);
    expect(bogus.stderr).toContain('a valid bearer token is required');
    const viewer = await pivot(['switchover', 'orders'], {
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
    expect(noToken.stderr).toContain('PIVOT_TOKEN is not');
    expect((await temporal.witness.state('orders')).epoch).toBe(epoch);
  });

  it('4: the API does not answer', async () => {
    const r = await pivot(['status'], { PIVOT_API_URL: 'http://127.0.0.1:9', PIVOT_TOKEN: 'x' });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('the Pivot API at http://127.0.0.1:9 does not answer');
    expect(r.stderr).toContain('next: check PIVOT_API_URL');
  });
});
