/**
 * The validator faces whatever is in a file: arbitrary text, arbitrary data, and runbooks broken in
 * every way an edit can break them. It must never throw, and must always answer with either a
 * runbook or at least one error that has a place in the file.
 */
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import {
  formatRunbookError,
  validateRunbookSet,
  validateRunbookText,
  type RunbookValidation,
} from '../../runbook/validate.ts';

const ORDERS = readFileSync(new URL('../../runbooks/orders.yaml', import.meta.url), 'utf8');

/** Bounded so that the unit suite stays fast; a failure prints the seed to replay it. */
const RUNS = { numRuns: 300 };

/**
 * The answer is a runbook or errors, never both nor neither; every error is placed and printable;
 * and none is an internal error, the validator's own failure turned into a report. Problems are
 * collected and asserted once: an expect per error would make up most of the run time.
 */
function expectWellFormed(result: RunbookValidation, text: string): void {
  // YAML also breaks lines at U+0085 and U+2028/9, which split() here does not: allow for them,
  // while a line far past the end would still show a wrong offset.
  const maxLine = text.split(/\r\n|\r|\n/).length + (text.match(/[\u0085\u2028\u2029]/g)?.length ?? 0);
  const problems = result.errors.flatMap((e) => {
    const line = formatRunbookError(e);
    return [
      e.file !== 'fuzz.yaml' && `wrong file: ${line}`,
      !(Number.isInteger(e.line) && e.line >= 1 && e.line <= maxLine) && `bad line: ${line}`,
      !(Number.isInteger(e.column) && e.column >= 1) && `bad column: ${line}`,
      (typeof e.path !== 'string' || e.message.length === 0) && `no path or message: ${line}`,
      /[\r\n]/.test(line) && `not one line: ${line}`,
      e.rule === 'internal' && `internal error: ${line}`,
    ].filter((p): p is string => typeof p === 'string');
  });
  expect(problems).toEqual([]);
  expect(result.runbook === undefined).toBe(result.errors.length > 0);
}

function check(text: string): RunbookValidation {
  const result = validateRunbookText(text, 'fuzz.yaml', { knownSites: ['dc-a', 'dc-b'] });
  expectWellFormed(result, text);
  return result;
}

/** Fragments that steer random text into the YAML parser's corners. */
const yamlToken = fc.constantFrom(
  ':',
  ': ',
  '- ',
  '\n',
  '\n  ',
  '\t',
  '[',
  ']',
  '{',
  '}',
  ',',
  '&a ',
  '*a',
  '!!str ',
  '!!map',
  '!tag ',
  '---\n',
  '...\n',
  '# c',
  '"',
  "'",
  '|\n',
  '>-\n',
  '? ',
  '<<: ',
  '%YAML 1.2\n',
  'apiVersion: pivot.dev/v1alpha1\n',
  'kind: Runbook\n',
  'spec:\n',
  'workloads:',
  'name',
  '0x1F',
  '1e9',
  'null',
  '~',
  '\u0085',
  '\uFEFF',
);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Path = Array<string | number>;

/** Every path to a value in `doc`, the root excepted. */
function pathsOf(doc: Json, prefix: Path = []): Path[] {
  if (Array.isArray(doc)) return doc.flatMap((v, i) => [[...prefix, i], ...pathsOf(v, [...prefix, i])]);
  if (doc !== null && typeof doc === 'object') {
    return Object.entries(doc).flatMap(([k, v]) => [[...prefix, k], ...pathsOf(v, [...prefix, k])]);
  }
  return [];
}

function parentOf(doc: Json, path: Path): Json {
  return path.slice(0, -1).reduce<Json>((node, key) => (node as Record<string | number, Json>)[key]!, doc);
}

interface Mutation {
  target: number;
  kind: 'drop' | 'rename' | 'retype' | 'duplicate' | 'add';
  name: string;
  value: Json;
}

const mutation: fc.Arbitrary<Mutation> = fc.record({
  target: fc.nat(),
  kind: fc.constantFrom('drop', 'rename', 'retype', 'duplicate', 'add'),
  name: fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.constantFrom('name', 'kind', 'namespace', 'timeout', 'hook'),
  ),
  value: fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
});

/** One edit of the kind an author makes by mistake, at one place of the document. */
function mutate(doc: Json, m: Mutation): Json {
  const paths = pathsOf(doc);
  if (paths.length === 0) return doc;
  const path = paths[m.target % paths.length]!;
  const key = path[path.length - 1]!;
  const parent = parentOf(doc, path) as Record<string | number, Json> | Json[];
  if (Array.isArray(parent)) {
    const i = key as number;
    if (m.kind === 'drop') parent.splice(i, 1);
    else if (m.kind === 'duplicate') parent.splice(i, 0, structuredClone(parent[i]!));
    else if (m.kind === 'add') parent.push(m.value);
    else parent[i] = m.value;
    return doc;
  }
  const k = String(key);
  if (m.kind === 'drop') delete parent[k];
  else if (m.kind === 'rename') {
    parent[m.name] = parent[k]!;
    if (m.name !== k) delete parent[k];
  } else if (m.kind === 'add') parent[m.name] = m.value;
  // A mapping cannot hold a key twice once parsed: copy the value under another key instead (the
  // text-level edits below repeat keys in the YAML itself).
  else if (m.kind === 'duplicate') parent[m.name] = structuredClone(parent[k]!);
  else parent[k] = m.value;
  return doc;
}

describe('the validator on arbitrary input', () => {
  it('answers any text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (text) => {
        check(text);
      }),
      RUNS,
    );
  });

  it('answers any mix of YAML syntax', () => {
    fc.assert(
      fc.property(fc.array(yamlToken, { maxLength: 60 }), (tokens) => {
        check(tokens.join(''));
      }),
      RUNS,
    );
  });

  it('answers any JSON document, which is also YAML', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
        check(JSON.stringify(value));
      }),
      RUNS,
    );
  });
});

describe('the validator on broken runbooks', () => {
  const orders = parse(ORDERS) as Json;

  it('answers runbooks/orders.yaml with fields dropped, renamed, retyped, duplicated or added', () => {
    const intact = check(ORDERS);
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
        const doc = mutations.reduce(mutate, structuredClone(orders));
        const text = stringify(doc);
        const result = check(text);
        // Each broken runbook also goes through the set checks, next to the intact one.
        const set = validateRunbookSet([intact, result]);
        expect(set.filter((e) => e.line < 1 || e.column < 1 || e.rule === 'internal')).toEqual([]);
      }),
      RUNS,
    );
  });

  it('answers runbooks/orders.yaml with lines deleted, repeated or cut', () => {
    const lines = ORDERS.split('\n');
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ line: fc.nat(), kind: fc.constantFrom('delete', 'repeat', 'cut'), at: fc.nat() }),
          {
            minLength: 1,
            maxLength: 5,
          },
        ),
        (edits) => {
          const edited = [...lines];
          for (const e of edits) {
            const i = e.line % edited.length;
            if (e.kind === 'delete') edited.splice(i, 1);
            else if (e.kind === 'repeat') edited.splice(i, 0, edited[i]!);
            else edited[i] = edited[i]!.slice(0, e.at % (edited[i]!.length + 1));
            if (edited.length === 0) edited.push('');
          }
          check(edited.join('\n'));
        },
      ),
      RUNS,
    );
  });
});
