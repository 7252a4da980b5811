/**
 * Durations as runbooks write them: whole numbers of hours, minutes, seconds and milliseconds, in
 * that order, each at most once ("250ms", "30s", "5m", "1h30m", "1m30s500ms"). The order is fixed
 * so that one duration has one spelling and a typo such as "30m5h" is an error, not a surprise.
 */

/**
 * The grammar of a duration, shared with the JSON Schema (runbook/schema.ts) so that an editor
 * and the validator agree. `(?!$)` refuses the empty string; `\d+m` followed by `s` backtracks
 * into `\d+ms`, so "5ms" is five milliseconds, not five minutes and a stray "s".
 */
export const DURATION_PATTERN = '^(?!$)(\\d+h)?(\\d+m)?(\\d+s)?(\\d+ms)?$';

const DURATION_RE = new RegExp(DURATION_PATTERN);
const PART_RE = /(\d+)(ms|h|m|s)/g;

const UNIT_MS = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;

/**
 * Milliseconds of a duration text; undefined when it is not a duration or is too large to be
 * counted exactly in milliseconds (beyond Number.MAX_SAFE_INTEGER, about 285,000 years).
 */
export function parseDuration(text: string): number | undefined {
  if (typeof text !== 'string' || !DURATION_RE.test(text)) return undefined;
  let ms = 0;
  for (const [, digits, unit] of text.matchAll(PART_RE)) {
    ms += Number(digits) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/**
 * The canonical text of a duration: "1h30m", "250ms", "0s"; fractions of a millisecond are
 * rounded. Negative values (a clock skew in a measured lag) keep their sign, and non-finite ones
 * print as they are, so that a report never hides them; neither of these parses back.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  let rest = Math.round(ms);
  const parts: string[] = [];
  for (const unit of ['h', 'm', 's', 'ms'] as const) {
    const n = Math.floor(rest / UNIT_MS[unit]);
    rest -= n * UNIT_MS[unit];
    if (n > 0) parts.push(`${n}${unit}`);
  }
  return parts.join('') || '0s';
}
