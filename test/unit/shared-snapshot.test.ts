/** api/shared-snapshot.ts: one read for many callers, served stale only within its bounds. */
import { sharedSnapshot } from '../../api/shared-snapshot.ts';

function reads() {
  let clock = 0;
  let count = 0;
  const pending: Array<{ resolve: (n: number) => void; reject: (e: Error) => void }> = [];
  const read = () =>
    new Promise<number>((resolve, reject) => {
      count += 1;
      pending.push({ resolve, reject });
    });
  return {
    read,
    now: () => clock,
    advance: (ms: number) => (clock += ms),
    get count() {
      return count;
    },
    /** Answers the oldest read in flight. */
    answer: (n: number) => pending.shift()!.resolve(n),
    fail: () => pending.shift()!.reject(new Error('site unreachable')),
  };
}

const AGES = { refreshAfterMs: 2000, maxAgeMs: 10_000 };

describe('a shared snapshot', () => {
  it('makes concurrent callers share one read', async () => {
    const r = reads();
    const get = sharedSnapshot(r.read, AGES, r.now);
    const callers = [get(), get(), get()];
    expect(r.count).toBe(1);
    r.answer(1);
    expect(await Promise.all(callers)).toEqual([1, 1, 1]);
  });

  it('serves a fresh answer without reading', async () => {
    const r = reads();
    const get = sharedSnapshot(r.read, AGES, r.now);
    const first = get();
    r.answer(1);
    await first;
    r.advance(1999);
    expect(await get()).toBe(1);
    expect(r.count).toBe(1);
  });

  it('serves a stale answer at once while one new read runs, then the new one', async () => {
    const r = reads();
    const get = sharedSnapshot(r.read, AGES, r.now);
    const first = get();
    r.answer(1);
    await first;
    r.advance(5000);
    expect(await get()).toBe(1);
    expect(await get()).toBe(1);
    expect(r.count).toBe(2);
    r.answer(2);
    await new Promise((resolve) => setImmediate(resolve));
    expect(await get()).toBe(2);
  });

  it('never serves an answer older than its bound: callers wait for a new read', async () => {
    const r = reads();
    const get = sharedSnapshot(r.read, AGES, r.now);
    const first = get();
    r.answer(1);
    await first;
    r.advance(10_000);
    let settled = false;
    const late = get().then((v) => ((settled = true), v));
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    r.answer(2);
    expect(await late).toBe(2);
  });

  it('keeps no failed read: the caller sees the error and the next one reads again', async () => {
    const r = reads();
    const get = sharedSnapshot(r.read, AGES, r.now);
    const first = get();
    r.fail();
    await expect(first).rejects.toThrow('site unreachable');
    const second = get();
    expect(r.count).toBe(2);
    r.answer(3);
    expect(await second).toBe(3);
  });

  it('counts the age from when the read started, not when it answered', async () => {
    const r = reads();
    const get = sharedSnapshot(r.read, AGES, r.now);
    const first = get();
    r.advance(9000); // a slow read of both sites
    r.answer(1);
    await first;
    r.advance(1000);
    let settled = false;
    const next = get().then((v) => ((settled = true), v));
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    r.answer(2);
    expect(await next).toBe(2);
  });
});
