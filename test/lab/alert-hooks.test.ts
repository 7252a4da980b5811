/**
 * The alert hooks of the lab's API: every bad delivery refused with its documented status and
 * nothing started; Alertmanager's bearer and basic auth; a resolve during the hold-down cancels; a
 * trigger whose start is refused gives its cool-down back;
 * and a storm of 1,000 deliveries of the same firing "datacenter down" alert starts exactly one
 * unplanned failover, which waits for approval, completes after `pivot approve`, and is then
 * reprotected and failed back so that the lab is as before.
 */
import { waitUntil } from '../../common/wait.ts';
import type { LabStatus } from '../../lab/status.ts';
import type { AlertTriggerReport } from '../../workflows/alert.ts';
import type { OperationReport } from '../../workflows/progress.ts';
import { grafanaBody, signedHeaders } from './alerts.ts';
import { pivot as cli, resetSim, status } from './helpers.ts';
import { connectPivot, type LabPivot } from './temporal.ts';

let s: LabStatus;
let hooks: NonNullable<LabStatus['api']['hooks']>;
let temporal: LabPivot;
const testStarted = Date.now();

beforeAll(async () => {
  s = await status();
  hooks = s.api.hooks!;
  temporal = await connectPivot();
});

afterAll(async () => {
  await resetSim();
  await temporal?.close();
});

function signed(
  body: string,
  ts = Math.floor(Date.now() / 1000),
  secret = hooks.hmacSecret,
): Record<string, string> {
  return signedHeaders(hooks, body, ts, secret);
}

async function deliver(
  source: 'grafana' | 'alertmanager' | (string & {}),
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${s.api.url}/hooks/${source}`, { method: 'POST', headers, body });
  const text = await res.text();
  return {
    status: res.status,
    body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

/** Runs of a workflow id started since the suite began. */
async function runsSince(workflowId: string, type: string): Promise<number> {
  let n = 0;
  for await (const w of temporal.client.workflow.list({
    query: `WorkflowId = '${workflowId}' AND WorkflowType = '${type}' AND StartTime > '${new Date(testStarted).toISOString()}'`,
  })) {
    void w;
    n += 1;
  }
  return n;
}

const OTHER = { alertname: 'DiskAlmostFull', datacenter: 'dc-a' }; // matches no rule

describe('alert hook refusals', () => {
  it.each([
    [
      'a wrong signature',
      () => ({
        body: grafanaBody('firing', OTHER),
        headers: signed(grafanaBody('firing', OTHER), undefined, 'not-the-secret'),
      }),
      401,
      'unauthenticated',
    ],
    [
      'a stale timestamp',
      () => ({
        body: grafanaBody('firing', OTHER, 'stale'),
        headers: signed(grafanaBody('firing', OTHER, 'stale'), Math.floor(Date.now() / 1000) - 3600),
      }),
      401,
      'stale',
    ],
    [
      'no authentication',
      () => ({ body: grafanaBody('firing', OTHER), headers: { 'content-type': 'application/json' } }),
      401,
      'unauthenticated',
    ],
    [
      'malformed JSON',
      () => ({ body: '{"alerts": [', headers: signed('{"alerts": [') }),
      400,
      'malformed-json',
    ],
    [
      'a wrong content type',
      () => ({
        body: grafanaBody('firing', OTHER, 'ct'),
        headers: { ...signed(grafanaBody('firing', OTHER, 'ct')), 'content-type': 'text/plain' },
      }),
      415,
      'unsupported-media-type',
    ],
    [
      'an oversize body',
      () => ({
        body: grafanaBody('firing', OTHER, 'x'.repeat(300_000)),
        headers: signed(grafanaBody('firing', OTHER, 'x'.repeat(300_000))),
      }),
      413,
      'too-large',
    ],
    [
      'a body that is not an alert delivery',
      () => ({ body: '{"hello": "world"}', headers: signed('{"hello": "world"}') }),
      400,
      'invalid-request',
    ],
  ])('refuses %s', async (_what, make, code, error) => {
    const { body, headers } = make();
    const res = await deliver('grafana', body, headers);
    expect({ status: res.status, error: res.body['error'] }).toEqual({ status: code, error });
  });

  it('answers 404 to a source that is not configured, and counts nothing under its name', async () => {
    const invented = `made-up-${Date.now()}`;
    const res = await deliver(invented, grafanaBody('firing', OTHER), signed(grafanaBody('firing', OTHER)));
    expect({ status: res.status, error: res.body['error'] }).toEqual({ status: 404, error: 'not-found' });
    const metrics = await (await fetch(`${s.api.url}/metrics`)).text();
    expect(metrics).toContain('pivot_alert_deliveries_total{source="grafana"');
    expect(metrics).not.toContain(invented);
  });

  it('refuses a replayed signed delivery', async () => {
    const body = grafanaBody('firing', OTHER, 'replay');
    const headers = signed(body);
    expect((await deliver('grafana', body, headers)).status).toBe(202);
    const again = await deliver('grafana', body, headers);
    expect({ status: again.status, error: again.body['error'] }).toEqual({ status: 409, error: 'replayed' });
  });

  it('takes Alertmanager deliveries with its bearer token or basic auth, and refuses a wrong password', async () => {
    const body = grafanaBody('firing', OTHER, 'am').replace('"version":"1"', '"version":"4"');
    const basic = (user: string, pass: string) =>
      `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    const json = { 'content-type': 'application/json' };
    expect(
      (await deliver('alertmanager', body, { ...json, authorization: `Bearer ${hooks.bearerToken}` })).status,
    ).toBe(202);
    expect(
      (
        await deliver('alertmanager', body, {
          ...json,
          authorization: basic(hooks.basicUser, hooks.basicPassword),
        })
      ).status,
    ).toBe(202);
    expect(
      (await deliver('alertmanager', body, { ...json, authorization: basic(hooks.basicUser, 'wrong') }))
        .status,
    ).toBe(401);
    const grafanaShaped = await deliver('alertmanager', grafanaBody('firing', OTHER, 'v1'), {
      ...json,
      authorization: `Bearer ${hooks.bearerToken}`,
    });
    expect({ status: grafanaShaped.status, error: grafanaShaped.body['error'] }).toEqual({
      status: 400,
      error: 'invalid-request',
    });
  });

  it('started nothing for any of them', async () => {
    expect(await runsSince('pivot-alert-dc-a-down', 'alertTrigger')).toBe(0);
    expect(await runsSince('pivot-orders', 'failover')).toBe(0);
  });
});

describe('alert routing', () => {
  it('cancels when the alert resolves during the hold-down', async () => {
    const labels = { alertname: 'DatacenterDown', datacenter: 'dc-b' };
    const firing = grafanaBody('firing', labels, 'flap');
    expect((await deliver('grafana', firing, signed(firing))).body).toMatchObject({
      routed: [{ rule: 'dc-b-down', status: 'firing' }],
    });
    const resolved = grafanaBody('resolved', labels, 'flap');
    expect((await deliver('grafana', resolved, signed(resolved))).status).toBe(202);
    const report = (await temporal.client.workflow
      .getHandle('pivot-alert-dc-b-down')
      .result()) as AlertTriggerReport;
    expect(report).toMatchObject({ outcome: 'cancelled', deliveries: 3 });
    expect(await runsSince('pivot-orders', 'failover')).toBe(0);
  });

  it('gives the cool-down back when its start is refused: the next firing is not suppressed', async () => {
    // dc-b-down would fail orders over to dc-a, where it runs already: the plan refuses it.
    const labels = { alertname: 'DatacenterDown', datacenter: 'dc-b' };
    for (const round of ['first', 'second']) {
      const body = grafanaBody('firing', labels, `refused ${round}`);
      expect((await deliver('grafana', body, signed(body))).status).toBe(202);
      const report = (await temporal.client.workflow
        .getHandle('pivot-alert-dc-b-down')
        .result()) as AlertTriggerReport;
      // Kept, the first round's cool-down would suppress the second.
      expect({ round, outcome: report.outcome }).toEqual({ round, outcome: 'refused' });
    }
    expect(await runsSince('pivot-orders', 'failover')).toBe(0);
  });

  it('starts exactly one failover for a storm of 1,000 deliveries; it waits for approval and completes after `pivot approve`', async () => {
    const labels = { alertname: 'DatacenterDown', datacenter: 'dc-a' };
    const statuses: number[] = [];
    for (let batch = 0; batch < 20; batch += 1) {
      statuses.push(
        ...(await Promise.all(
          Array.from({ length: 50 }, async (_, i) => {
            const body = grafanaBody('firing', labels, `delivery ${batch * 50 + i}`);
            return (await deliver('grafana', body, signed(body))).status;
          }),
        )),
      );
    }
    expect(statuses.filter((x) => x !== 202)).toEqual([]);
    let report: OperationReport | undefined;
    await waitUntil(
      'the failover to wait for approval',
      async () => {
        try {
          report = await temporal.client.workflow
            .getHandle('pivot-orders')
            .query<OperationReport>('progress');
        } catch {
          return 'not started';
        }
        return (
          (report.operation === 'failover' && report.waiting?.for === 'approval') ||
          `${report.operation} ${report.currentStep}`
        );
      },
      { timeoutMs: 60_000 },
    );
    expect(report).toMatchObject({ requestedBy: 'alert:dc-a-down', from: 'dc-a', to: 'dc-b' });
    const watching = cli(['watch', 'orders']);
    await new Promise((r) => setTimeout(r, 5000)); // the watcher is following before the approval
    // On-call approves with its own credential (PIVOT_TOKEN), through the API.
    const approved = await cli(['approve', 'orders', '--reason', 'dc-a confirmed down'], {
      PIVOT_TOKEN: (await status()).api.tokens.approver!,
    });
    expect(approved.code).toBe(0);
    const result = (await temporal.client.workflow.getHandle('pivot-orders').result()) as OperationReport;
    expect(result.outcome).toBe('succeeded');
    expect(result.decisions).toEqual([
      expect.objectContaining({ action: 'approve', by: 'token:lab-approver', reason: 'dc-a confirmed down' }),
    ]);
    // `pivot watch` showed the steps as they happened, in order, and the report at the end.
    const watched = await watching;
    expect(watched.code).toBe(0);
    const seen = ['approval', 'fence-witness', 'fence-storage', 'promote-target', 'record-active-site'].map(
      (step) => watched.stderr.indexOf(`✓ ${step}`),
    );
    expect(seen.every((at) => at >= 0) ? '' : watched.stderr).toBe('');
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    expect(watched.stdout).toContain('failover of orders: dc-a → dc-b (unplanned) — SUCCEEDED');
    // More deliveries after the operation: the rule is cooling down; still one failover.
    const late = grafanaBody('firing', labels, 'late');
    expect((await deliver('grafana', late, signed(late))).status).toBe(202);
    await waitUntil(
      'the late trigger to be suppressed',
      async () => {
        const r = await temporal.client.workflow
          .getHandle('pivot-alert-dc-a-down')
          .query<AlertTriggerReport>('progress');
        return r.outcome === 'suppressed' || r.outcome;
      },
      { timeoutMs: 30_000 },
    );
    expect(await runsSince('pivot-orders', 'failover')).toBe(1);

    // Home again, as a user would: reprotect dc-a, then fail back.
    for (const op of ['reprotect', 'failback']) {
      const r = await cli([op, 'orders', '--yes', '--wait', '--json', '--reason', 'alert test: home again']);
      expect({ op, code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ op, code: 0, stderr: '' });
    }
    const home = (await temporal.client.workflow.getHandle('pivot-orders').result()) as OperationReport;
    expect(home).toMatchObject({ operation: 'failback', to: 'dc-a', outcome: 'succeeded' });
  }, 400_000);
});
