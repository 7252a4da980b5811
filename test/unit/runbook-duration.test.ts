/** Durations as runbooks write them: one spelling per duration, and back again for reports. */
import { formatDuration, parseDuration } from '../../runbook/duration.ts';

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1m30s500ms', 90_500],
    ['90m', 5_400_000],
    ['0s', 0],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '5', '1.5h', '30m5h', '5 m', '-5s', '1d', '5sec', 'ms', '1h1h', ' 5s'])(
    'refuses %j',
    (text) => {
      expect(parseDuration(text)).toBeUndefined();
    },
  );

  it('refuses a duration too large to count exactly in milliseconds', () => {
    expect(parseDuration('99999999999999999h')).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it.each([
    [250, '250ms'],
    [90_500, '1m30s500ms'],
    [5_400_000, '1h30m'],
    [0, '0s'],
    [0.4, '0s'],
    [-30_000, '-30s'],
    [Infinity, 'Infinity'],
  ])('writes %d ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('writes what parseDuration reads back', () => {
    for (const ms of [1, 999, 1000, 61_001, 3_600_000, 86_400_000 + 1]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });
});
