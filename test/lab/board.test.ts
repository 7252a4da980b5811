/**
 * The status board in a real browser (playwright-core driving Debian's chromium) against the lab's
 * API: signing in, a session that cannot change anything without its CSRF token, a switchover
 * followed live, an unplanned failover approved from the page by an approver while a viewer
 * cannot, and a drill's evidence opened from it. Screenshots of the estate, a running operation
 * and an approval are saved under artifacts/board/.
 */
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { waitUntil } from '../../common/wait.ts';
import type { Role } from '../../config/types.ts';
import { REPO_ROOT } from '../../lab/layout.ts';
import type { OperationReport } from '../../workflows/progress.ts';
import { status } from './helpers.ts';
import { connectPivot, type LabPivot } from './temporal.ts';

const ARTIFACTS = join(REPO_ROOT, 'artifacts', 'board');
let base: string;
let tokens: Partial<Record<Role, string>>;
let browser: Browser;
let pivot: LabPivot;
const contexts: BrowserContext[] = [];

async function call(method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

async function report(app: string): Promise<{ running: boolean; report: OperationReport }> {
  return (await call('GET', `/v1/operations/${app}`, tokens.viewer!)).body as {
    running: boolean;
    report: OperationReport;
  };
}

async function finished(app: string): Promise<OperationReport> {
  let last: OperationReport | undefined;
  await waitUntil(
    `the operation of ${app} to end`,
    async () => {
      const r = await report(app);
      last = r.report;
      return !r.running;
    },
    { timeoutMs: 240_000, intervalMs: 1000 },
  );
  return last!;
}

async function activeSiteOf(app: string): Promise<string> {
  const apps = (await call('GET', '/v1/apps', tokens.viewer!)).body['apps'] as Array<{
    app: string;
    activeSite: string;
  }>;
  return apps.find((a) => a.app === app)!.activeSite;
}

/** A fresh browser (its own cookies) signed in with the role's token, the board showing the estate. */
async function signedIn(role: Role, viewport = { width: 1280, height: 900 }): Promise<Page> {
  const context = await browser.newContext({ viewport });
  contexts.push(context);
  const page = await context.newPage();
  await page.goto(`${base}/board`);
  await page.getByLabel('Token').fill(tokens[role]!);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#estate tr[data-app="orders"]').waitFor({ timeout: 30_000 });
  return page;
}

const csrfOf = async (page: Page) =>
  ((await (await page.request.get(`${base}/board/session`)).json()) as { csrf: string }).csrf;

const shot = async (page: Page, name: string) => {
  const file = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  expect(statSync(file).size).toBeGreaterThan(10_000);
};

beforeAll(async () => {
  const s = await status();
  base = s.api.url;
  tokens = s.api.tokens;
  pivot = await connectPivot();
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await pivot?.close();
});

describe('the status board', () => {
  it('signs in only with a valid token, by keyboard, and shows the estate without any outside resource', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    contexts.push(context);
    const page = await context.newPage();
    const outside: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(base) && !r.url().startsWith('data:')) outside.push(r.url());
    });
    const response = await page.goto(`${base}/board`);
    expect(response?.headers()['content-security-policy']).toContain("default-src 'none'");

    await page.getByLabel('Token').fill('not-a-token');
    await page.keyboard.press('Enter');
    await page.locator('#sign-in-error').filter({ hasText: /token/ }).waitFor();
    expect((await context.cookies()).filter((c) => c.name === 'pivot_session')).toEqual([]);

    // Keyboard only: the token field has the focus after a refusal, Enter submits.
    await page.keyboard.type(tokens.viewer!);
    await page.keyboard.press('Enter');
    const row = page.locator('#estate tr[data-app="orders"]');
    await row.waitFor();
    expect(await row.textContent()).toMatch(/orders.*dc-[ab]/);
    // The lag is said in words as well as drawn.
    expect(await row.textContent()).toMatch(/(within RPO|past RPO|unknown)/);
    const cookie = (await context.cookies()).find((c) => c.name === 'pivot_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(await page.evaluate<string>('document.cookie')).not.toContain('pivot_session');
    expect(await page.locator('#who-name').textContent()).toContain('lab-viewer');
    await shot(page, 'estate');

    const phone = await signedIn('viewer', { width: 390, height: 844 });
    const overflow = await phone.evaluate<number>('document.body.scrollWidth - window.innerWidth');
    expect(overflow).toBeLessThanOrEqual(0);
    await shot(phone, 'estate-phone');
    expect(outside).toEqual([]);

    // Signing out ends the session in the API, not only the cookie in this browser.
    const withOldCookie = () =>
      fetch(`${base}/v1/apps`, { headers: { cookie: `pivot_session=${cookie!.value}` } });
    expect((await withOldCookie()).status).toBe(200);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#sign-in').waitFor();
    expect((await withOldCookie()).status).toBe(401);
  });

  it("refuses a change made with a session's cookie but without its CSRF token", async () => {
    const page = await signedIn('operator');
    const body = { operation: 'switchover', apps: ['orders'], reason: 'csrf test', dryRun: true };
    const without = await page.request.post(`${base}/v1/operations`, { data: body });
    expect(without.status()).toBe(403);
    expect(((await without.json()) as { error: string }).error).toBe('csrf');
    const wrong = await page.request.post(`${base}/v1/operations`, {
      data: body,
      headers: { 'x-csrf-token': 'x'.repeat(32) },
    });
    expect(wrong.status()).toBe(403);
    const withToken = await page.request.post(`${base}/v1/operations`, {
      data: body,
      headers: { 'x-csrf-token': await csrfOf(page) },
    });
    expect(withToken.status()).toBe(200);
    expect(((await withToken.json()) as { dryRun: boolean }).dryRun).toBe(true);
    // Reading needs no CSRF token.
    expect((await page.request.get(`${base}/v1/board`)).status()).toBe(200);
  });

  it('shows a switchover as it happens, its steps live and the point of no return marked', async () => {
    const page = await signedIn('viewer');
    const home = await activeSiteOf('orders');
    const away = home === 'dc-a' ? 'dc-b' : 'dc-a';
    const started = await call('POST', '/v1/operations', tokens.operator!, {
      operation: 'switchover',
      apps: ['orders'],
      to: away,
      reason: 'board test: switchover',
    });
    expect(started.status).toBe(202);
    const card = page.locator('#operations article.running[data-workflow="pivot-orders"]');
    await card.locator('li.step.running').first().waitFor({ timeout: 60_000 });
    expect(await card.locator('h3').textContent()).toContain(`switchover · orders · ${home} → ${away}`);
    expect(await card.locator('li.ponr').textContent()).toContain('Point of no return');
    await shot(page, 'running-operation');
    // A step that was running is shown succeeded later, without reloading the page.
    await card.locator('li.step.succeeded').nth(2).waitFor({ timeout: 120_000 });
    expect((await finished('orders')).outcome).toBe('succeeded');
    const closed = page.locator('#operations article.closed[data-workflow="pivot-orders"]').first();
    await closed.locator('.tag', { hasText: 'succeeded' }).waitFor({ timeout: 30_000 });
    const link = await closed.getByRole('link', { name: 'Workflow in Temporal' }).getAttribute('href');
    expect(link).toMatch(/\/namespaces\/[^/]+\/workflows\/pivot-orders\//);
    await page.locator(`#estate tr[data-app="orders"] td`, { hasText: away }).first().waitFor();
  }, 300_000);

  it('lets an approver approve an unplanned failover from the page, with a reason; a viewer cannot', async () => {
    const viewer = await signedIn('viewer');
    const approver = await signedIn('approver');
    const from = await activeSiteOf('orders');
    const to = from === 'dc-a' ? 'dc-b' : 'dc-a';
    const started = await call('POST', '/v1/operations', tokens.operator!, {
      operation: 'failover',
      apps: ['orders'],
      to,
      reason: 'board test: failover',
    });
    expect(started.status).toBe(202);
    const seen = (p: Page) => p.locator('#approvals article[data-workflow="pivot-orders"]');
    await seen(viewer).waitFor({ timeout: 90_000 });
    // The viewer sees the decision and what it costs, but has no button, and the API refuses it.
    expect(await seen(viewer).getByRole('button').count()).toBe(0);
    expect(await seen(viewer).textContent()).toContain('you may see this decision, not take it');
    expect(await seen(viewer).locator('.loss').textContent()).toMatch(/Expected data loss/);
    const refused = await viewer.request.post(`${base}/v1/operations/orders/approve`, {
      data: { reason: 'a viewer tries' },
      headers: { 'x-csrf-token': await csrfOf(viewer) },
    });
    expect(refused.status()).toBe(403);
    expect((await report('orders')).report.waiting?.for).toBe('approval');

    const card = seen(approver);
    await card.waitFor();
    await shot(approver, 'approval');
    // No reason, no approval.
    await card.getByRole('button', { name: 'Approve' }).click();
    await card.locator('.result', { hasText: 'Say why' }).waitFor();
    expect((await report('orders')).report.waiting?.for).toBe('approval');
    await card.getByLabel('Reason (recorded with your decision)').fill('dc outage drill in the board test');
    await card.getByRole('button', { name: 'Approve' }).click();
    await waitUntil(
      'the approval to be taken',
      async () => {
        const said = (await card.locator('.result').allTextContents()).join('');
        if (said.startsWith('Refused')) throw new Error(said);
        return (await report('orders')).report.waiting === undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const done = await finished('orders');
    expect(done).toMatchObject({ outcome: 'succeeded', to });
    expect(done.decisions).toEqual([
      expect.objectContaining({
        action: 'approve',
        by: 'token:lab-approver',
        reason: 'dc outage drill in the board test',
      }),
    ]);
    await seen(approver).waitFor({ state: 'detached', timeout: 30_000 });
    const audit = await pivot.witness.auditTrail('orders', 20);
    expect(audit.find((e) => e.action === 'api:approve')).toMatchObject({ actor: 'token:lab-approver' });

    // Home again: the old primary is reprotected (it is the replica, as before the test).
    const reprotect = await call('POST', '/v1/operations', tokens.operator!, {
      operation: 'reprotect',
      apps: ['orders'],
      reason: 'board test: clean up',
    });
    expect(reprotect.status).toBe(202);
    expect((await finished('orders')).outcome).toBe('succeeded');
  }, 420_000);

  it("opens a drill's evidence from the board, with the session's cookie", async () => {
    const drill = await call('POST', '/v1/operations', tokens.operator!, {
      operation: 'drill',
      apps: ['orders'],
      reason: 'board test: evidence',
    });
    expect(drill.status).toBe(202);
    await waitUntil(
      'the drill of orders to end',
      async () => (await report('drill:orders')).running === false,
      { timeoutMs: 240_000, intervalMs: 2000 },
    );
    const page = await signedIn('viewer');
    const row = page.locator('#drills tbody tr').first();
    await row.waitFor({ timeout: 30_000 });
    expect(await row.textContent()).toContain('orders');
    const [evidence] = await Promise.all([
      page.context().waitForEvent('page'),
      row.getByRole('link', { name: 'Evidence' }).click(),
    ]);
    await evidence.waitForLoadState();
    expect(await evidence.title()).toMatch(/^DR drill .*: (PASS|FAIL)$/);
    expect(await evidence.locator('h1').textContent()).toContain('DR drill of orders');
    await shot(evidence, 'evidence');
  }, 300_000);
});
