/**
 * How the validator words values in its messages: in the YAML author's terms ("a mapping", "a
 * list"), quoted so that a message stays on one line whatever the value holds, and with a
 * "did you mean" for near misses.
 */

const MAX_QUOTED = 60;

/** A value as JSON, cut short: messages quote what the author wrote without repeating a whole block. */
export function quote(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    // Cyclic values cannot come from YAML (aliases are expanded), but a message must never throw.
    text = Object.prototype.toString.call(value);
  }
  return text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED - 1)}…` : text;
}

/**
 * A value as text for keys and messages: a string as it is, anything else quoted. Never String()
 * on data from a file: a mapping with a `toString` key makes it throw.
 */
export function plain(value: unknown): string {
  return typeof value === 'string' ? value : quote(value);
}

/** A JSON Schema type name as a YAML author says it. */
export function typeName(type: string): string {
  const names: Record<string, string> = {
    object: 'a mapping',
    array: 'a list',
    string: 'a string',
    integer: 'a whole number',
    number: 'a number',
    boolean: 'true or false',
    null: 'nothing',
  };
  return names[type] ?? type;
}

/** What a value is, for "must be a list, found a mapping". */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the string ${quote(value)}`;
  if (typeof value === 'number') return `the number ${quote(value)}`;
  if (typeof value === 'boolean') return `${String(value)}`;
  return typeof value;
}

/** `a`, `a or b`, `a, b or c`, each quoted. */
export function oneOfWords(values: readonly unknown[]): string {
  const quoted = [...new Set(values.map((v) => quote(v)))];
  if (quoted.length <= 1) return quoted.join('');
  return `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`;
}

/** Edit distance (insertions, deletions, substitutions, transpositions of neighbours). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidate the author most likely meant: same letters in another case, or within about one
 * typo per three characters. Long inputs are not compared: no name in a runbook is that long, and
 * the distance costs the product of both lengths.
 */
export function closest(word: unknown, candidates: readonly string[]): string | undefined {
  if (typeof word !== 'string' || word.length === 0 || word.length > 100) return undefined;
  const lower = word.toLowerCase();
  const sameCase = candidates.find((c) => c.toLowerCase() === lower);
  if (sameCase !== undefined) return sameCase;
  let best: { candidate: string; d: number } | undefined;
  for (const candidate of candidates) {
    const d = distance(lower, candidate.toLowerCase());
    if (d <= Math.max(1, Math.floor(candidate.length / 3)) && (!best || d < best.d)) best = { candidate, d };
  }
  return best?.candidate;
}

/** "did you mean X?" when a candidate is close, otherwise `fallback`. */
export function didYouMean(
  word: unknown,
  candidates: readonly string[],
  fallback?: string,
): string | undefined {
  const match = closest(word, candidates);
  return match !== undefined ? `did you mean ${quote(match)}?` : fallback;
}
