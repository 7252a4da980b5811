/**
 * The schema pass of the validator: Ajv checks the document against RUNBOOK_SCHEMA with every
 * error collected, and each Ajv error becomes a finding worded for the author: the field, what
 * was found, what was expected. Ajv reports an exactly-one-of failure as one error per branch plus
 * one for the oneOf itself; those become a single finding per place.
 */
import { Ajv, type ErrorObject } from 'ajv';
import type { FieldPath, RunbookFinding } from './errors.ts';
import { PATTERNS, RUNBOOK_SCHEMA } from './schema.ts';
import { describeValue, didYouMean, oneOfWords, quote, typeName } from './wording.ts';

// verbose: errors carry the failing schema, its parent and the data, which the wording needs.
// strictRequired is off because exactly-one-of branches name fields their parent declares.
const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, verbose: true });
const validate = ajv.compile(RUNBOOK_SCHEMA);

type Loose = Record<string, unknown>;
const isRecord = (v: unknown): v is Loose => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Ajv's JSON pointer as a path, with list indexes as numbers (read from the data itself). */
function toFieldPath(pointer: string, root: unknown): Array<string | number> {
  if (pointer === '') return [];
  const path: Array<string | number> = [];
  let value = root;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(value)) {
      path.push(Number(key));
      value = value[Number(key)];
    } else {
      path.push(key);
      value = isRecord(value) ? value[key] : undefined;
    }
  }
  return path;
}

function patternMeaning(pattern: unknown): string | undefined {
  return Object.values(PATTERNS).find((p) => p.pattern === pattern)?.means;
}

/** What a field's schema accepts, in words. */
function expectedOf(schema: unknown): string | undefined {
  if (!isRecord(schema)) return undefined;
  if ('const' in schema) return quote(schema.const);
  if (Array.isArray(schema.enum)) return `one of ${oneOfWords(schema.enum)}`;
  if (typeof schema.pattern === 'string') return patternMeaning(schema.pattern);
  if (typeof schema.type === 'string') return typeName(schema.type);
  return undefined;
}

/** The first sentence of a field's description: the hint for a missing field. */
function purposeOf(schema: unknown): string | undefined {
  if (!isRecord(schema) || typeof schema.description !== 'string') return undefined;
  return schema.description.split(/(?<=\.)\s/)[0];
}

function patternHint(pattern: unknown, data: unknown): string | undefined {
  if (typeof data !== 'string' && typeof data !== 'number') return undefined;
  const text = String(data);
  if (pattern === PATTERNS.duration.pattern) {
    if (/^\d+$/.test(text)) return `add a unit, such as ${quote(`${text}s`)}`;
    return 'use whole numbers with h, m, s or ms, largest unit first: 90s, 1m30s, 1h';
  }
  const lower = text.toLowerCase();
  if (lower !== text && new RegExp(String(pattern)).test(lower)) return `did you mean ${quote(lower)}?`;
  return undefined;
}

/** For a value of the wrong type: what it would take to make it right, when that is obvious. */
function typeHint(schema: unknown, data: unknown): string | undefined {
  if (!isRecord(schema)) return undefined;
  if (typeof schema.pattern === 'string') return patternHint(schema.pattern, data);
  const numeric = schema.type === 'integer' || schema.type === 'number';
  if (numeric && typeof data === 'string' && data.trim() !== '' && !Number.isNaN(Number(data))) {
    return 'write the number without quotes';
  }
  if (schema.type === 'array' && data !== null && typeof data !== 'object')
    return `write it as a list: [${quote(data)}]`;
  return undefined;
}

/** One exactly-one-of failure: the branches are `{ required: [field] }` (see schema.ts). */
function exactlyOneOf(e: ErrorObject, path: FieldPath): RunbookFinding | undefined {
  // `required` holds for anything that is not a mapping: a wrong type is reported on its own.
  if (!isRecord(e.data)) return undefined;
  const fields = (Array.isArray(e.schema) ? (e.schema as unknown[]) : []).map((b) =>
    isRecord(b) && Array.isArray(b.required) ? String(b.required[0]) : '?',
  );
  const expected = `exactly one of ${fields.map((f) => `\`${f}\``).join(', ')}`;
  const passing = (e.params as { passingSchemas?: number[] | null }).passingSchemas;
  if (Array.isArray(passing)) {
    const [first, second] = passing.map((i) => fields[i] ?? '?');
    return {
      rule: 'schema',
      path: [...path, second!],
      anchor: 'key',
      message: `\`${first}\` and \`${second}\` are both given`,
      expected,
      hint: `keep only one of them`,
    };
  }
  return {
    rule: 'schema',
    path,
    anchor: 'value',
    message: `none of ${fields.map((f) => `\`${f}\``).join(', ')} is given`,
    expected,
    hint: purposeOf(e.parentSchema),
  };
}

function word(e: ErrorObject, path: FieldPath): RunbookFinding | undefined {
  const params = e.params as Loose;
  const data: unknown = e.data;
  // Findings may leave expected/hint undefined: the source map drops absent ones when it places them.
  const finding = (
    f: Omit<RunbookFinding, 'rule' | 'path' | 'anchor'>,
    at: Partial<RunbookFinding> = {},
  ): RunbookFinding => ({ rule: 'schema', path, anchor: 'value', ...f, ...at });

  switch (e.keyword) {
    case 'required': {
      const field = String(params.missingProperty);
      const fieldSchema = isRecord(e.parentSchema?.properties) ? e.parentSchema.properties[field] : undefined;
      const expected = expectedOf(fieldSchema);
      return finding(
        {
          message: `missing required field \`${field}\``,
          expected,
          hint: purposeOf(fieldSchema),
        },
        { path: [...path, field], anchor: 'parent' },
      );
    }
    case 'additionalProperties': {
      const field = String(params.additionalProperty);
      const allowed = Object.keys(isRecord(e.parentSchema?.properties) ? e.parentSchema.properties : {});
      return finding(
        {
          message: `unknown field ${quote(field)}`,
          expected: allowed.length > 0 ? `one of the fields ${allowed.join(', ')}` : 'no fields',
          hint: didYouMean(field, allowed),
        },
        { path: [...path, field], anchor: 'key' },
      );
    }
    case 'type': {
      const types = Array.isArray(params.type) ? (params.type as string[]) : [String(params.type)];
      return finding({
        message: `found ${describeValue(data)}`,
        expected: expectedOf(e.parentSchema) ?? types.map(typeName).join(' or '),
        hint: typeHint(e.parentSchema, data),
      });
    }
    case 'enum': {
      const allowed = Array.isArray(params.allowedValues) ? (params.allowedValues as unknown[]) : [];
      return finding({
        message: `unknown value ${quote(data)}`,
        expected: `one of ${oneOfWords(allowed)}`,
        hint: didYouMean(data, allowed.map(String)),
      });
    }
    case 'const':
      return finding({
        message: `wrong value ${quote(data)}`,
        expected: quote(params.allowedValue),
        hint: didYouMean(data, [String(params.allowedValue)]),
      });
    case 'pattern':
      return finding({
        message: `invalid value ${quote(data)}`,
        expected: patternMeaning(params.pattern) ?? `text matching ${String(params.pattern)}`,
        hint: patternHint(params.pattern, data),
      });
    case 'minLength':
      return finding({ message: 'empty text', expected: `at least ${String(params.limit)} character(s)` });
    case 'maxLength':
      return finding({
        message: `too long (${typeof data === 'string' ? data.length : '?'} characters)`,
        expected: `at most ${String(params.limit)} characters`,
      });
    case 'minItems':
      return finding({
        message: Array.isArray(data) && data.length === 0 ? 'empty list' : 'too few entries',
        expected: `at least ${String(params.limit)} entr${params.limit === 1 ? 'y' : 'ies'}`,
      });
    case 'minProperties':
      return finding({
        message: 'empty mapping',
        expected: `at least ${String(params.limit)} entr${params.limit === 1 ? 'y' : 'ies'}`,
        hint: purposeOf(e.parentSchema),
      });
    case 'uniqueItems': {
      const [earlier, later] = [Number(params.j), Number(params.i)].sort((a, b) => a - b);
      const items = Array.isArray(data) ? (data as unknown[]) : [];
      return finding(
        {
          message: `${quote(items[later!])} is listed twice`,
          expected: 'each value once',
          hint: `the same value is at index ${earlier}`,
        },
        { path: [...path, later!] },
      );
    }
    case 'minimum':
      return finding({ message: `${quote(data)} is too small`, expected: `${String(params.limit)} or more` });
    case 'maximum':
      return finding({ message: `${quote(data)} is too large`, expected: `at most ${String(params.limit)}` });
    case 'oneOf':
      return exactlyOneOf(e, path);
    case 'if':
      // "must match then schema": the errors of the `then` branch say what is wrong.
      return undefined;
    default:
      return finding({ message: e.message ?? `fails ${e.keyword}` });
  }
}

/** Whether `e` is one branch's error of the oneOf error `one`: reported through `one` alone. */
function isBranchOf(e: ErrorObject, one: ErrorObject): boolean {
  return (
    e !== one && e.instancePath.startsWith(one.instancePath) && e.schemaPath.startsWith(`${one.schemaPath}/`)
  );
}

/** The schema findings of a document (the value YAML parsed to); none when it has the runbook shape. */
export function schemaFindings(document: unknown): RunbookFinding[] {
  if (validate(document)) return [];
  const errors = validate.errors ?? [];
  const oneOfs = errors.filter((e) => e.keyword === 'oneOf');
  const findings: RunbookFinding[] = [];
  for (const e of errors) {
    if (oneOfs.some((one) => isBranchOf(e, one))) continue;
    const finding = word(e, toFieldPath(e.instancePath, document));
    if (finding) findings.push(finding);
  }
  return findings;
}
