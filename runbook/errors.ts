/**
 * What the validator reports: every problem of a runbook file as data, with the file, line and
 * column where it is written, the path of the field, and what was expected. Problems are values,
 * not thrown errors, because a file has many of them and all are reported at once.
 */

/** The kinds of problems, each with what it means; `rule` in every RunbookError. */
export const RUNBOOK_RULES = {
  file: 'the file could not be read',
  yaml: 'the file is not well-formed YAML, or holds more than one document',
  schema: 'the document does not have the runbook shape: an unknown or missing field, a wrong type or value',
  duration: 'a well-formed duration that cannot be used: too large, or zero where time must pass',
  duplicate: 'two entries of a list name the same thing',
  reference: 'a name that refers to nothing: a hook, site, namespace or runbook that does not exist',
  dependency: 'runbooks that depend on each other in a cycle, or on a runbook of a later tier',
  internal: 'the validator itself failed on this input: a bug in Pivot, reported rather than thrown',
} as const;
export type RunbookRule = keyof typeof RUNBOOK_RULES;

/** A path into the document: keys and list indexes, as in `spec.workloads[1].kind`. */
export type FieldPath = ReadonlyArray<string | number>;

/** Where a finding points: at the field's value, at its key, or at the mapping that holds it. */
export type Anchor = 'value' | 'key' | 'parent';

/** A problem before it is located in the file: what the schema pass and the rules produce. */
export interface RunbookFinding {
  rule: RunbookRule;
  path: FieldPath;
  /**
   * `key` for unknown or duplicated fields (the name is what is wrong), `parent` for a missing
   * field (it has no position of its own), `value` for everything else.
   */
  anchor: Anchor;
  message: string;
  expected?: string;
  hint?: string;
}

export interface RunbookError {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based, in characters. */
  column: number;
  /** The field, like `spec.workloads[1].kind`; empty for the document as a whole. */
  path: string;
  rule: RunbookRule;
  message: string;
  expected?: string;
  hint?: string;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** `spec.workloads[1].kind`; keys that are not identifiers are quoted: `selector["app.kubernetes.io/name"]`. */
export function formatPath(path: FieldPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (IDENTIFIER.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** One line: `file:line:col: path: message (expected X) — hint: Y`. */
export function formatRunbookError(e: RunbookError): string {
  const line = [
    `${e.file}:${e.line}:${e.column}: `,
    e.path ? `${e.path}: ` : '',
    e.message,
    e.expected ? ` (expected ${e.expected})` : '',
    e.hint ? ` — hint: ${e.hint}` : '',
  ].join('');
  // Values are quoted as JSON, so only a message from the YAML parser could hold a line break.
  return line.replace(/\s*[\r\n]+\s*/g, ' ');
}
