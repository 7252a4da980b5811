/**
 * The API's audit log on the lab's real Redis: records read back in order, filtered by
 * application and time across pages, and nothing kept past the configured retention.
 */
import { Redis } from 'ioredis';
import { AuditLog } from '../../api/audit.ts';
import { status, uniqueName } from './helpers.ts';

let redis: Redis;
beforeAll(async () => {
  redis = new Redis((await status()).redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
});
afterAll(async () => {
  await redis.quit();
});

const DAY = 24 * 3600 * 1000;
const record = (action: string, apps?: string[]) => ({
  phase: 'result' as const,
  requestId: action,
  principal: 'token:test',
  address: '127.0.0.1',
  action,
  ...(apps ? { apps } : {}),
  status: 200,
});

describe('the audit log', () => {
  it('reads back in order, by application and from a time, across pages', async () => {
    let now = Date.parse('2027-01-01T00:00:00Z');
    const log = new AuditLog(redis, 30, uniqueName('pivot-audit-test'), () => now);
    for (let i = 0; i < 1200; i++) {
      now += 1;
      await log.write(record(`POST /v1/operations/${i % 3 === 0 ? 'orders' : 'ledger'}/abort`));
    }
    await log.write(record('POST /v1/operations', ['orders', 'payments']));
    const all = await log.read({ limit: 10_000, sinceMs: 0 });
    expect(all).toHaveLength(1201);
    expect(all.map((r) => r.requestId).slice(0, 2)).toEqual([
      'POST /v1/operations/orders/abort',
      'POST /v1/operations/ledger/abort',
    ]);
    const orders = await log.read({ limit: 10_000, app: 'orders', sinceMs: 0 });
    expect(orders).toHaveLength(401);
    expect(orders.at(-1)!.apps).toEqual(['orders', 'payments']);
    expect(await log.read({ limit: 10, app: 'payments', sinceMs: 0 })).toHaveLength(1);
    expect(await log.read({ limit: 5, sinceMs: 0 })).toHaveLength(5);
    // From a time: only what was written since.
    const since = Date.parse(all[1000]!.at);
    expect(await log.read({ limit: 10_000, sinceMs: since })).toHaveLength(201);
  });

  it('keeps records for the configured days, not a count', async () => {
    let now = Date.parse('2027-01-01T00:00:00Z');
    const log = new AuditLog(redis, 2, uniqueName('pivot-audit-test'), () => now);
    await log.write(record('POST /v1/operations', ['old']));
    now += 3 * DAY;
    // The next write trims, exactly: nothing older than the retention is kept.
    for (let i = 0; i < 200; i++) await log.write(record('POST /v1/operations', ['new']));
    expect(await log.read({ limit: 10_000, app: 'old', sinceMs: 0 })).toEqual([]);
    expect(await log.read({ limit: 10_000, app: 'new', sinceMs: 0 })).toHaveLength(200);
  });
});
