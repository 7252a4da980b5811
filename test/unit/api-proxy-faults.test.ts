/**
 * The lab's API proxy decides per request what to do from the faults in force and a random draw;
 * a bad fault change is refused with every reason.
 */
import { decide, faultErrors, NO_FAULTS } from '../../lab/api-proxy/faults.ts';

describe("the API proxy's faults", () => {
  it('forwards everything when no fault is set', () => {
    expect(decide(NO_FAULTS, 'GET /api/v1/nodes', 0)).toEqual({ kind: 'forward', delayMs: 0 });
  });

  it('splits matching requests between drops, errors and forwards by their rates', () => {
    const faults = { ...NO_FAULTS, dropRate: 0.2, errorRate: 0.3, status: 429 as const, latencyMs: 50 };
    expect(decide(faults, 'GET /version', 0.1)).toEqual({ kind: 'drop', delayMs: 50 });
    expect(decide(faults, 'GET /version', 0.4)).toEqual({ kind: 'error', delayMs: 50, status: 429 });
    expect(decide(faults, 'GET /version', 0.6)).toEqual({ kind: 'forward', delayMs: 50 });
  });

  it('touches only requests that match, and a blackhole answers none of them', () => {
    const faults = { ...NO_FAULTS, blackhole: true, match: '^PATCH .*/statefulsets/' };
    expect(decide(faults, 'PATCH /apis/apps/v1/namespaces/orders/statefulsets/mysql', 0.9)).toEqual({
      kind: 'blackhole',
    });
    expect(decide(faults, 'GET /apis/apps/v1/namespaces/orders/statefulsets/mysql', 0.9)).toEqual({
      kind: 'forward',
      delayMs: 0,
    });
  });

  it('refuses a bad change with every reason', () => {
    expect(faultErrors({ errorRate: 0.5, status: 503, count: 3 })).toEqual([]);
    expect(faultErrors({ errorRate: 2, status: 404, colour: 'red' })).toEqual([
      'body must NOT have additional properties',
      'errorRate must be <= 1',
      'status must be equal to one of the allowed values',
    ]);
    expect(faultErrors({ match: '(' })[0]).toMatch(/^match: not a regular expression/);
  });
});
