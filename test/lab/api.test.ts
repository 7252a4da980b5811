/**
 * The API the lab runs (api/main.ts, started by `pivot lab up`), over HTTP with the lab's tokens:
 * every route against every role, every bad input refused with its documented status and nothing
 * started, responses valid against api/openapi.yaml, a switchover through the API with a duplicate
 * trigger attaching, the two-person rule, and /metrics in the Prometheus text format.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { UnsecuredJWT } from 'jose';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { parse } from 'yaml';
import { waitUntil } from '../../common/wait.ts';
import type { Role } from '../../config/types.ts';
import { LAB_OIDC } from '../../config/lab-config.ts';
import { REPO_ROOT } from '../../lab/layout.ts';
import { labJwt, status } from './helpers.ts';
import { connectPivot, type LabPivot } from './temporal.ts';

let base: string;
let tokens: Partial<Record<Role, string>>;
let pivot: LabPivot;

const spec = parse(readFileSync(join(REPO_ROOT, 'api', 'openapi.yaml'), 'utf8')) as {
  paths: Record<
    string,
    Record<
      string,
      { responses: Record<string, { $ref?: string; content?: Record<string, { schema: object }> }> }
    >
  >;
  components: { responses: Record<string, { content?: Record<string, { schema: object }> }> };
};
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema({ ...spec, $id: 'openapi.json' });
const compiled = new Map<string, ReturnType<typeof ajv.compile>>();

/** Checks a response against the schema the OpenAPI document gives for it. */
function expectDocumented(path: string, method: string, code: number, body: unknown): void {
  const op = spec.paths[path]?.[method];
  expect(op).toBeDefined();
  let response = op!.responses[String(code)];
  expect({ path, method, code, documented: response !== undefined }).toMatchObject({ documented: true });
  if (response?.$ref) response = spec.components.responses[response.$ref.split('/').pop()!];
  if (!response?.content?.['application/json']?.schema) return;
  const ref = resolveSchemaRef(path, method, code);
  const validate = compiled.get(ref) ?? ajv.compile({ $ref: ref });
  compiled.set(ref, validate);
  const ok = validate(body);
  expect({ path, method, code, errors: ok ? null : validate.errors }).toMatchObject({ errors: null });
}

/** The $ref of the JSON schema of a documented response, within the document. */
function resolveSchemaRef(path: string, method: string, code: number): string {
  const pointer = (p: string) => p.replaceAll('~', '~0').replaceAll('/', '~1');
  const response = spec.paths[path]![method]!.responses[String(code)]!;
  return response.$ref
    ? `openapi.json${response.$ref}/content/application~1json/schema`
    : `openapi.json#/paths/${pointer(path)}/${method}/responses/${code}/content/application~1json/schema`;
}

async function call(
  method: string,
  path: string,
  options: { token?: string; body?: unknown; raw?: string; contentType?: string } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (options.token) headers['authorization'] = `Bearer ${options.token}`;
  const payload = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  if (payload !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(payload !== undefined ? { body: payload } : {}),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : { text },
  };
}

beforeAll(async () => {
  const s = await status();
  base = s.api.url;
  tokens = s.api.tokens;
  pivot = await connectPivot();
});

afterAll(async () => {
  await pivot?.close();
});

const ROLES: Array<Role | 'none' | 'bogus'> = ['none', 'bogus', 'viewer', 'operator', 'approver', 'admin'];
const tokenOf = (who: Role | 'none' | 'bogus'): string | undefined =>
  who === 'none' ? undefined : who === 'bogus' ? 'pivot-lab-admin-not-the-real-one' : tokens[who];

describe('access control', () => {
  const routes: Array<{
    method: string;
    path: string;
    doc: string;
    allowed: Role[];
    body?: unknown;
    okStatus: number;
  }> = [
    {
      method: 'GET',
      path: '/v1/apps',
      doc: '/v1/apps',
      allowed: ['viewer', 'operator', 'approver', 'admin'],
      okStatus: 200,
    },
    {
      method: 'POST',
      path: '/v1/operations',
      doc: '/v1/operations',
      allowed: ['operator', 'admin'],
      body: { operation: 'switchover', apps: ['orders'], reason: 'access test', dryRun: true },
      okStatus: 200,
    },
    {
      method: 'GET',
      path: '/v1/drill-schedules',
      doc: '/v1/drill-schedules',
      allowed: ['viewer', 'operator', 'approver', 'admin'],
      okStatus: 200,
    },
    {
      method: 'POST',
      path: '/v1/drill-schedules',
      doc: '/v1/drill-schedules',
      allowed: ['operator', 'admin'],
      body: { name: 'access-test', apps: ['orders'], reason: 'access test' }, // neither cron nor every
      okStatus: 400,
    },
    {
      method: 'GET',
      path: '/v1/drill-schedules/no-such-schedule',
      doc: '/v1/drill-schedules/{name}',
      allowed: ['viewer', 'operator', 'approver', 'admin'],
      okStatus: 404,
    },
    {
      method: 'POST',
      path: '/v1/drill-schedules/no-such-schedule/pause',
      doc: '/v1/drill-schedules/{name}/pause',
      allowed: ['operator', 'admin'],
      body: {},
      okStatus: 404,
    },
    {
      method: 'DELETE',
      path: '/v1/drill-schedules/no-such-schedule',
      doc: '/v1/drill-schedules/{name}',
      allowed: ['operator', 'admin'],
      okStatus: 404,
    },
    {
      method: 'GET',
      path: '/v1/drills',
      doc: '/v1/drills',
      allowed: ['viewer', 'operator', 'approver', 'admin'],
      okStatus: 200,
    },
    {
      method: 'GET',
      path: '/v1/drills/no-such-drill',
      doc: '/v1/drills/{id}',
      allowed: ['viewer', 'operator', 'approver', 'admin'],
      okStatus: 404,
    },
    {
      method: 'GET',
      path: '/v1/drills/no-such-drill/report.html',
      doc: '/v1/drills/{id}/report.html',
      allowed: ['viewer', 'operator', 'approver', 'admin'],
      okStatus: 404,
    },
    {
      method: 'GET',
      path: '/v1/operations/no-such-app',
      doc: '/v1/operations/{id}',
      allowed: ['viewer', 'operator', 'approver', 'admin'],
      okStatus: 404,
    },
    {
      method: 'POST',
      path: '/v1/operations/no-such-app/approve',
      doc: '/v1/operations/{id}/approve',
      allowed: ['approver', 'admin'],
      body: {},
      okStatus: 404,
    },
    {
      method: 'POST',
      path: '/v1/operations/no-such-app/abort',
      doc: '/v1/operations/{id}/abort',
      allowed: ['operator', 'admin'],
      body: {},
      okStatus: 404,
    },
    {
      method: 'POST',
      path: '/v1/operations/no-such-app/retry',
      doc: '/v1/operations/{id}/retry',
      allowed: ['operator', 'admin'],
      body: {},
      okStatus: 404,
    },
    {
      method: 'POST',
      path: '/v1/operations/no-such-app/skip',
      doc: '/v1/operations/{id}/skip',
      allowed: ['operator', 'admin'],
      body: { step: 'x', reason: 'y' },
      okStatus: 404,
    },
  ];
  for (const r of routes) {
    it(`${r.method} ${r.path}: ${r.allowed.join(', ')} only`, async () => {
      for (const who of ROLES) {
        const token = tokenOf(who);
        const res = await call(r.method, r.path, {
          ...(token ? { token } : {}),
          ...(r.body !== undefined ? { body: r.body } : {}),
        });
        const expected = who === 'none' || who === 'bogus' ? 401 : r.allowed.includes(who) ? r.okStatus : 403;
        expect({ who, status: res.status }).toEqual({ who, status: expected });
        expectDocumented(r.doc, r.method.toLowerCase(), res.status, res.body);
      }
    });
  }

  it('accepts OIDC JWTs from the configured issuer, with roles from their groups', async () => {
    const viewer = await labJwt('vera', ['dr-viewers']);
    const apps = await call('GET', '/v1/apps', { token: viewer });
    expect(apps.status).toBe(200);
    expectDocumented('/v1/apps', 'get', 200, apps.body);
    const start = await call('POST', '/v1/operations', {
      token: viewer,
      body: { operation: 'switchover', apps: ['orders'], reason: 'oidc test', dryRun: true },
    });
    expect({ status: start.status, message: start.body['message'] }).toEqual({
      status: 403,
      message: `vera (oidc:${LAB_OIDC.issuer}#sub-vera) may not operate: it needs one of the roles operator, admin`,
    });
    const planner = await labJwt('otto', ['dr-oncall', 'some-unmapped-group']);
    const plan = await call('POST', '/v1/operations', {
      token: planner,
      body: { operation: 'switchover', apps: ['orders'], reason: 'oidc test', dryRun: true },
    });
    expect(plan.status).toBe(200);
    const nobody = await labJwt('nora', ['not-a-dr-group']);
    expect((await call('GET', '/v1/apps', { token: nobody })).status).toBe(403);
  });

  it.each([
    [
      'expired',
      () => labJwt('eve', ['dr-admins'], { expiresAt: Math.floor(Date.now() / 1000) - 120 }),
      'expired',
    ],
    ['for another audience', () => labJwt('eve', ['dr-admins'], { audience: 'grafana' }), 'aud'],
    [
      'signed by another key',
      () =>
        labJwt('eve', ['dr-admins'], { key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }),
      'not valid',
    ],
    [
      'unsigned (alg none)',
      () =>
        Promise.resolve(
          new UnsecuredJWT({ preferred_username: 'eve', groups: ['dr-admins'] })
            .setIssuer('https://idp.lab.pivot.invalid')
            .setAudience('pivot-lab')
            .setExpirationTime('10m')
            .encode(),
        ),
      'not valid',
    ],
  ])('refuses a JWT %s: 401, saying why', async (_what, make, why) => {
    const res = await call('GET', '/v1/apps', { token: await make() });
    expect(res.status).toBe(401);
    expect(String(res.body['message'])).toContain(why);
    expectDocumented('/v1/apps', 'get', 401, res.body);
  });

  it('answers health and metrics without a token', async () => {
    const live = await call('GET', '/livez');
    expect(live.status).toBe(200);
    expectDocumented('/livez', 'get', 200, live.body);
    const ready = await call('GET', '/readyz');
    expect(ready.status).toBe(200);
    expectDocumented('/readyz', 'get', 200, ready.body);
  });
});

describe('bad input changes nothing', () => {
  const operator = () => tokens.operator!;
  let epochBefore: number;
  beforeAll(async () => {
    epochBefore = (await pivot.witness.state('orders')).epoch;
  });
  afterAll(async () => {
    expect((await pivot.witness.state('orders')).epoch).toBe(epochBefore);
    expect(await pivot.witness.lockHolder('orders')).toBeUndefined();
  });

  it.each([
    ['malformed JSON', { raw: '{"operation": "switchover",' }, 400, 'malformed-json'],
    // JSON, but not a request: said so, not called malformed.
    ['a JSON string', { raw: '"switchover"' }, 400, 'invalid-request'],
    [
      'wrong content type',
      { raw: 'operation=switchover', contentType: 'application/x-www-form-urlencoded' },
      415,
      'unsupported-media-type',
    ],
    [
      'an oversize body',
      { body: { operation: 'switchover', apps: ['orders'], reason: 'x'.repeat(70_000) } },
      413,
      'too-large',
    ],
    [
      'an unknown operation',
      { body: { operation: 'explode', apps: ['orders'], reason: 'x' } },
      400,
      'invalid-request',
    ],
    ['no reason', { body: { operation: 'switchover', apps: ['orders'] } }, 400, 'invalid-request'],
    [
      'an unknown application',
      { body: { operation: 'switchover', apps: ['nope'], reason: 'x' } },
      404,
      'unknown',
    ],
    ['an unknown site', { body: { operation: 'switchover', site: 'dc-z', reason: 'x' } }, 404, 'unknown'],
    [
      'a refused plan',
      { body: { operation: 'switchover', apps: ['orders'], to: 'dc-a', reason: 'x' } },
      409,
      'refused',
    ],
  ])('refuses %s', async (_what, options, code, error) => {
    const res = await call('POST', '/v1/operations', { token: operator(), ...options });
    expect(res.status).toBe(code);
    expect(res.body['error']).toBe(error);
    expect(typeof res.body['message']).toBe('string');
    expectDocumented('/v1/operations', 'post', code, res.body);
  });

  it('refuses a data-loss acceptance that is no duration, and an attestation from a non-approver', async () => {
    const approve = await call('POST', '/v1/operations/orders/approve', {
      token: tokens.approver!,
      body: { acceptDataLoss: 'whatever it takes' },
    });
    expect(approve.status).toBe(400);
    expect(approve.body['message']).toBe('acceptDataLoss: a duration such as "2m", or "unbounded"');
    expectDocumented('/v1/operations/{id}/approve', 'post', 400, approve.body);
    const skip = await call('POST', '/v1/operations/orders/skip', {
      token: operator(),
      body: { step: 'fence-storage', reason: 'x', attestation: 'fenced by hand: trust me' },
    });
    expect(skip.status).toBe(403);
    expect(skip.body['message']).toContain('may not attest a fence');
    expectDocumented('/v1/operations/{id}/skip', 'post', 403, skip.body);
  });

  it('plans a drill (dryRun) on the standby without starting it', async () => {
    const res = await call('POST', '/v1/operations', {
      token: operator(),
      body: { operation: 'drill', apps: ['orders'], reason: 'x', dryRun: true },
    });
    expect(res.status).toBe(200);
    expectDocumented('/v1/operations', 'post', 200, res.body);
    expect(
      (res.body['plan'] as { waves: Array<{ apps: Array<{ to: string }> }> }).waves[0]?.apps[0]?.to,
    ).toBe('dc-b');
  });
});

async function finished(id: string): Promise<Record<string, unknown>> {
  let last: Record<string, unknown> = {};
  await waitUntil(
    `operation ${id} to end`,
    async () => {
      const res = await call('GET', `/v1/operations/${id}`, { token: tokens.viewer! });
      expectDocumented('/v1/operations/{id}', 'get', res.status, res.body);
      last = res.body;
      return (
        res.body['running'] === false || String((res.body['report'] as { currentStep?: string })?.currentStep)
      );
    },
    { timeoutMs: 120_000, intervalMs: 1000 },
  );
  return last['report'] as Record<string, unknown>;
}

describe('operations through the API', () => {
  it('switches orders over and back; a duplicate trigger attaches to the running operation', async () => {
    // The status is a shared snapshot of the sites up to 10 s old (observedAt says when it was
    // taken): wait for one taken after the moment that matters.
    const observedAfter = async (since: number) => {
      let body: Record<string, unknown> = {};
      await waitUntil(
        'a status observed after the operation',
        async () => {
          body = (await call('GET', '/v1/apps', { token: tokens.viewer! })).body;
          return Date.parse(String(body['observedAt'])) > since;
        },
        { timeoutMs: 20_000 },
      );
      return body;
    };
    const home = ((await observedAfter(Date.now()))['apps'] as Array<{ activeSite: string }>)[0]!.activeSite;
    const away = home === 'dc-a' ? 'dc-b' : 'dc-a';
    for (const to of [away, home]) {
      const first = await call('POST', '/v1/operations', {
        token: tokens.operator!,
        body: { operation: 'switchover', apps: ['orders'], to, reason: 'api test' },
      });
      expect(first.status).toBe(202);
      expectDocumented('/v1/operations', 'post', 202, first.body);
      // e.g. the same request again from another on-call engineer, while the first one runs
      const duplicate = await call('POST', '/v1/operations', {
        token: tokens.admin!,
        body: { operation: 'switchover', apps: ['orders'], to, reason: 'me too' },
      });
      const [a] = first.body['operations'] as Array<{ runId: string; attached: boolean }>;
      expect(a).toMatchObject({ attached: false });
      expect(duplicate.status).toBe(202);
      const [b] = duplicate.body['operations'] as Array<{ runId: string; attached: boolean }>;
      expect(b).toMatchObject({ runId: a!.runId, attached: true });
      const report = await finished('orders');
      expect(report).toMatchObject({ outcome: 'succeeded', to, requestedBy: 'token:lab-operator' });
    }
    const listed = { body: await observedAfter(Date.now()) };
    expectDocumented('/v1/apps', 'get', 200, listed.body);
    expect(listed.body['apps']).toEqual([
      expect.objectContaining({ app: 'orders', activeSite: home, fencedSites: [], operationRunning: null }),
    ]);
    const audit = await pivot.witness.auditTrail('orders', 50);
    expect(audit.filter((e) => e.action === 'api:switchover').map((e) => e.actor)).toEqual(
      expect.arrayContaining(['token:lab-operator']),
    );
  });

  it('enforces the two-person rule on an unplanned failover, and aborts it before it changes anything', async () => {
    const before = await pivot.witness.state('orders');
    const startedAt = new Date().toISOString();
    // One person (an OIDC identity) with both the on-call and the manager group.
    const both = await labJwt('alice', ['dr-oncall', 'dr-managers']);
    const started = await call('POST', '/v1/operations', {
      token: both,
      body: { operation: 'failover', apps: ['orders'], reason: 'two-person rule test' },
    });
    expect(started.status).toBe(202);
    await waitUntil(
      'the failover to wait for approval',
      async () => {
        const res = await call('GET', '/v1/operations/orders', { token: tokens.viewer! });
        return (res.body['report'] as { waiting?: { for: string } }).waiting?.for === 'approval';
      },
      { timeoutMs: 60_000 },
    );
    // The same person, renamed at the identity provider since: the same subject, so the same
    // principal, and still refused.
    const renamed = await labJwt('alice.smith', ['dr-managers'], { subject: 'sub-alice' });
    const self = await call('POST', '/v1/operations/orders/approve', { token: renamed, body: {} });
    expect(self.status).toBe(409);
    expect(String(self.body['message'])).toContain('two-person rule');
    expect(String(self.body['message'])).toContain(`oidc:${LAB_OIDC.issuer}#sub-alice`);
    expectDocumented('/v1/operations/{id}/approve', 'post', 409, self.body);
    const abort = await call('POST', '/v1/operations/orders/abort', {
      token: tokens.operator!,
      body: { reason: 'test over' },
    });
    expect(abort.status).toBe(200);
    expectDocumented('/v1/operations/{id}/abort', 'post', 200, abort.body);
    const report = await finished('orders');
    expect(report['outcome']).toBe('aborted');
    expect(await pivot.witness.state('orders')).toEqual(before);

    // The audit log tells the whole story, refusals included: the request (before it acted, and
    // its result), the same person's refused approval under another name, and the abort.
    const audit = await call('GET', `/v1/audit?app=orders&since=${encodeURIComponent(startedAt)}`, {
      token: tokens.viewer!,
    });
    expect(audit.status).toBe(200);
    expectDocumented('/v1/audit', 'get', 200, audit.body);
    const alice = `oidc:${LAB_OIDC.issuer}#sub-alice`;
    const story = (audit.body['records'] as Array<Record<string, unknown>>).map((r) => ({
      phase: r['phase'],
      principal: r['principal'],
      action: r['action'],
      status: r['status'],
      error: r['error'],
    }));
    expect(story).toEqual([
      {
        phase: 'intent',
        principal: alice,
        action: 'POST /v1/operations',
        status: undefined,
        error: undefined,
      },
      { phase: 'result', principal: alice, action: 'POST /v1/operations', status: 202, error: undefined },
      {
        phase: 'intent',
        principal: alice,
        action: 'POST /v1/operations/orders/approve',
        status: undefined,
        error: undefined,
      },
      {
        phase: 'result',
        principal: alice,
        action: 'POST /v1/operations/orders/approve',
        status: 409,
        error: 'refused',
      },
      {
        phase: 'intent',
        principal: 'token:lab-operator',
        action: 'POST /v1/operations/orders/abort',
        status: undefined,
        error: undefined,
      },
      {
        phase: 'result',
        principal: 'token:lab-operator',
        action: 'POST /v1/operations/orders/abort',
        status: 200,
        error: undefined,
      },
    ]);
    const records = audit.body['records'] as Array<Record<string, unknown>>;
    expect(records[0]!['reason']).toBe('two-person rule test');
    expect(String(records[0]!['address'])).toMatch(/127\.0\.0\.1/);
    expect(records[1]!['operationIds']).toEqual(['pivot-orders']);
    expect(String(records[3]!['message'])).toContain('two-person rule');
    expect(records[3]!['requestId']).toBe(records[2]!['requestId']);
    // The same as JSON lines, for a SIEM.
    const lines = await fetch(
      `${base}/v1/audit?app=orders&since=${encodeURIComponent(startedAt)}&format=jsonl`,
      {
        headers: { authorization: `Bearer ${tokens.viewer!}` },
      },
    );
    expect(lines.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    expect(
      (await lines.text())
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { id: string }).id),
    ).toEqual(records.map((r) => r['id']));
  });

  it('refreshes its status gauges in the background, whether or not anyone asks for the status', async () => {
    type Family = { name: string; metrics: Array<{ labels?: Record<string, string>; value?: string }> };
    const scrape = async () =>
      parsePrometheusTextFormat(await (await fetch(`${base}/metrics`)).text()) as Family[];
    const value = (families: Family[], name: string, labels: Record<string, string> = {}) =>
      families
        .find((f) => f.name === name)
        ?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value;
    const refreshedAt = (families: Family[]) =>
      Number(value(families, 'pivot_status_refresh_timestamp_seconds'));
    const first = await scrape();
    // Without any call to /v1/apps in between, the refresh moves on (every 15 s).
    await waitUntil(
      'a background refresh of the status gauges',
      async () => refreshedAt(await scrape()) > refreshedAt(first),
      { timeoutMs: 40_000, intervalMs: 1000 },
    );
    const now = await scrape();
    for (const site of ['dc-a', 'dc-b']) expect(value(now, 'pivot_site_reachable', { site })).toBe('1');
    expect(value(now, 'pivot_dependency_up', { dependency: 'witness' })).toBe('1');
    expect(value(now, 'pivot_dependency_up', { dependency: 'temporal' })).toBe('1');
    expect(Number(value(now, 'pivot_replication_lag_seconds', { app: 'orders' }))).toBeGreaterThanOrEqual(0);
    expect(value(now, 'pivot_rpo_objective_seconds', { app: 'orders' })).toBe('30');
  });

  it('serves /metrics in the Prometheus text format, with the operations just requested', async () => {
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    const families = parsePrometheusTextFormat(await res.text()) as Array<{
      name: string;
      metrics: Array<{ labels?: Record<string, string>; value?: string }>;
    }>;
    const requested = families.find((f) => f.name === 'pivot_operations_requested_total');
    expect(requested?.metrics).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ labels: { type: 'switchover', trigger: 'api', attached: 'false' } }),
      ]),
    );
    expect(families.map((f) => f.name)).toEqual(
      expect.arrayContaining([
        'pivot_api_requests_total',
        'pivot_api_request_duration_seconds',
        'pivot_replication_lag_seconds',
      ]),
    );
  });

  it("exposes the control worker's metrics: the operations' own (outcome, RTO, steps) and the Temporal SDK's", async () => {
    const s = await status();
    const res = await fetch(s.workerMetricsUrl);
    expect(res.status).toBe(200);
    const families = parsePrometheusTextFormat(await res.text()) as Array<{
      name: string;
      metrics: Array<{ labels?: Record<string, string> }>;
    }>;
    const names = families.map((f) => f.name);
    const operations = families.find((f) => f.name.endsWith('pivot_operations_total'));
    expect(operations?.metrics).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          labels: expect.objectContaining({
            operation: 'switchover',
            app: 'orders',
            outcome: 'succeeded',
          }) as object,
        }),
      ]),
    );
    expect(names.some((n) => n.includes('pivot_operation_duration_seconds'))).toBe(true);
    expect(names.some((n) => n.includes('pivot_step_duration_seconds'))).toBe(true);
    expect(names.some((n) => n.startsWith('temporal_'))).toBe(true);
  });

  it('limits each principal to its requests a minute, and only that principal', async () => {
    // A principal of its own (an OIDC user), so that no other test meets its limit.
    const token = await labJwt('rate-limit-test', ['dr-viewers']);
    const statuses = await Promise.all(
      Array.from({ length: 620 }, () => call('GET', '/v1/operations/no-such-app', { token })),
    );
    const limited = statuses.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(620 - 600);
    expect(limited[0]?.body['error']).toBe('rate-limited');
    expectDocumented('/v1/operations/{id}', 'get', 429, limited[0]?.body);
    expect((await call('GET', '/v1/operations/no-such-app', { token: tokens.viewer! })).status).toBe(404);
  });

  it('limits requests without a valid credential per client address, and only that address', async () => {
    // From 127.0.0.2 (loopback too), so that the other suites' refusals from 127.0.0.1 are not limited.
    const from2 = (token?: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          `${base}/v1/apps`,
          { localAddress: '127.0.0.2', headers: token ? { authorization: `Bearer ${token}` } : {} },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end();
      });
    const statuses: number[] = [];
    for (let i = 0; i < 70; i++) statuses.push(await from2(i % 2 ? 'guessed-token' : undefined));
    expect(statuses.slice(0, 60).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(60).every((s) => s === 429)).toBe(true);
    expect(await from2(tokens.viewer)).toBe(200);
    expect((await call('GET', '/v1/apps')).status).toBe(401);
  });
});
