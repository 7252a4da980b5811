/**
 * The runbook validator: YAML text in, a Runbook with its defaults filled in, or every problem of
 * the file with its line, column and field path. Three passes: YAML syntax, the JSON Schema
 * (schema-check.ts), and the rules a schema cannot express (rules.ts); then, across files, the
 * names and dependencies of a set of runbooks. It reads nothing but the text it is given, and
 * never throws: whatever goes wrong becomes an error of the file.
 */
import { LineCounter, parseAllDocuments, type Document, type YAMLError } from 'yaml';
import { withDefaults, type WrittenRunbook } from './defaults.ts';
import { checkDependencies, type DependencyNode } from './dependencies.ts';
import type { RunbookError, RunbookFinding } from './errors.ts';
import { ruleFindings, type RunbookRuleContext } from './rules.ts';
import { schemaFindings } from './schema-check.ts';
import { RunbookSourceMap, isEmptyPlaceholder } from './source-map.ts';
import type { Runbook } from './types.ts';
import { didYouMean, oneOfWords, quote } from './wording.ts';

export { formatRunbookError, type RunbookError } from './errors.ts';

export interface RunbookValidation {
  file: string;
  /** Present when the file has no error: the runbook with every default filled in. */
  runbook?: Runbook;
  /** Every problem of the file, in the order they appear in it. */
  errors: RunbookError[];
  /**
   * metadata.name as written, when it is a string, even if the runbook has errors: lets a set of
   * runbooks tell a reference to a broken runbook from a reference to none.
   */
  name?: string;
  /** Places a finding about this file (the set checks use it to point into the file). */
  locate(finding: RunbookFinding): RunbookError;
}

/** A few YAML problems authors meet most, with what to do about them. */
const YAML_HINTS: Record<string, string> = {
  DUPLICATE_KEY: 'a field may appear once in a mapping: remove or merge the repeated one',
  TAB_AS_INDENT: 'indent with spaces, not tabs',
  BAD_INDENT: 'check the indentation of this line against the lines above',
  MISSING_CHAR: 'a bracket or quote is not closed',
  BLOCK_AS_IMPLICIT_KEY: 'a key and its ":" must be on one line',
  MULTILINE_IMPLICIT_KEY: 'a key and its ":" must be on one line',
};

const PARSE_OPTIONS = {
  prettyErrors: false,
  uniqueKeys: true,
  // Plain YAML 1.2: "yes", "on" and dates stay strings, `<<` is an ordinary (and so unknown) key.
  version: '1.2',
  merge: false,
} as const;

/** YAML's defence against alias bombs ("billion laughs"), kept explicit because arbitrary files arrive here. */
const MAX_ALIAS_COUNT = 100;

function yamlError(map: RunbookSourceMap, file: string, e: YAMLError): RunbookError {
  const { line, column } = map.position(e.pos[0]);
  const hint = YAML_HINTS[e.code];
  return {
    file,
    line,
    column,
    path: '',
    rule: 'yaml',
    message: e.message,
    ...(hint ? { hint } : {}),
  };
}

/** Findings on the same field with the same message are one problem, wherever they came from. */
function dedupe(errors: RunbookError[]): RunbookError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const key = `${e.line}:${e.column}:${e.path}:${e.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const byPosition = (a: RunbookError, b: RunbookError) => a.line - b.line || a.column - b.column;

function internalError(file: string, err: unknown): RunbookError {
  return {
    file,
    line: 1,
    column: 1,
    path: '',
    rule: 'internal',
    message: `the validator failed: ${err instanceof Error ? err.message : String(err)}`,
    hint: 'this is a bug in Pivot; please report it with the file',
  };
}

/** The YAML problems of the file: syntax errors, warnings (such as unknown tags), extra documents. */
function yamlErrors(documents: Document.Parsed[], map: RunbookSourceMap, file: string): RunbookError[] {
  const errors = documents.flatMap((doc) =>
    [...doc.errors, ...doc.warnings].map((e) => yamlError(map, file, e)),
  );
  // Extra documents are an error rather than ignored: which one would be the runbook?
  for (const doc of documents.slice(1)) {
    // A stray `---` at the end of a file makes an empty document: nothing there to be confused by.
    if (!doc.contents || isEmptyPlaceholder(doc.contents)) continue;
    errors.push({
      file,
      ...map.position(doc.contents.range[0]),
      path: '',
      rule: 'yaml',
      message: 'a second YAML document: a runbook file holds exactly one',
      hint: 'put each runbook in a file of its own',
    });
  }
  return errors;
}

/** The document as plain data, or the error that prevents it. */
function toData(
  doc: Document.Parsed,
  map: RunbookSourceMap,
  file: string,
): { data: unknown; error?: undefined } | { error: RunbookError } {
  const at = { file, ...map.position(doc.range[0]), path: '' };
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // The one way a well-formed document fails to convert: too many aliases to expand.
    return {
      error: {
        ...at,
        rule: 'yaml',
        message: err instanceof Error ? err.message : String(err),
        hint: `a runbook needs few aliases (*name); at most ${MAX_ALIAS_COUNT} are expanded`,
      },
    };
  }
  if (data === null || data === undefined) {
    return {
      error: {
        ...at,
        rule: 'schema',
        message: 'the document is empty',
        expected: 'a runbook, starting with apiVersion: pivot.dev/v1alpha1',
      },
    };
  }
  return { data };
}

type Checked = Omit<RunbookValidation, 'locate'> & { map: RunbookSourceMap };

function check(text: string, file: string, context: RunbookRuleContext, lines: LineCounter): Checked {
  const documents = parseAllDocuments(text, { ...PARSE_OPTIONS, lineCounter: lines });
  const first: Document.Parsed | undefined = documents[0];
  const map = new RunbookSourceMap(first?.contents ?? null, lines);
  const errors = yamlErrors(documents, map, file);
  if (!first) {
    errors.push({
      file,
      line: 1,
      column: 1,
      path: '',
      rule: 'yaml',
      message: 'the file is empty',
      expected: 'a runbook',
    });
    return { file, errors, map };
  }
  // The tree of a document with syntax errors is a guess: checking its shape would mostly report
  // consequences of the syntax errors.
  if (documents.some((doc) => doc.errors.length > 0)) return { file, errors: errors.sort(byPosition), map };

  const converted = toData(first, map, file);
  if (converted.error) return { file, errors: [...errors, converted.error].sort(byPosition), map };
  const { data } = converted;

  const findings = [...schemaFindings(data), ...ruleFindings(data, context)];
  errors.push(...findings.map((f) => map.toError(file, f)));
  const name = (data as { metadata?: { name?: unknown } }).metadata?.name;
  const result: Checked = {
    file,
    errors: dedupe(errors).sort(byPosition),
    map,
    ...(typeof name === 'string' ? { name } : {}),
  };
  // No error: the document passed the schema, so it has the shape of a WrittenRunbook.
  if (result.errors.length === 0) result.runbook = withDefaults(data as WrittenRunbook);
  return result;
}

/**
 * Validates one runbook file's text. `file` is only used in the errors. With `knownSites` (the
 * sites of the Pivot configuration), spec.sites must name two of them.
 */
export function validateRunbookText(
  text: string,
  file: string,
  context: RunbookRuleContext = {},
): RunbookValidation {
  const lines = new LineCounter();
  let map = new RunbookSourceMap(null, lines);
  const locate = (finding: RunbookFinding): RunbookError => {
    try {
      return map.toError(file, finding);
    } catch (err) {
      return { ...internalError(file, err), message: finding.message };
    }
  };
  try {
    if (typeof text !== 'string') throw new TypeError(`expected the file's text, got ${typeof text}`);
    const { map: parsedMap, ...result } = check(text, file, context, lines);
    map = parsedMap;
    return { ...result, locate };
  } catch (err) {
    return { file, errors: [internalError(file, err)], locate };
  }
}

/**
 * The checks across a set of runbooks, each the result of validateRunbookText: unique
 * metadata.name, and priority.dependsOn naming runbooks of the set, no later tier, no cycle. Each
 * error is placed at the entry that causes it. Runbooks with errors of their own take no part
 * except through their name. Never throws.
 */
export function validateRunbookSet(validations: readonly RunbookValidation[]): RunbookError[] {
  try {
    return checkSet(validations);
  } catch (err) {
    return [internalError(validations[0]?.file ?? '-', err)];
  }
}

function checkSet(validations: readonly RunbookValidation[]): RunbookError[] {
  const errors: RunbookError[] = [];
  const firstWithName = new Map<string, RunbookValidation>();
  for (const v of validations) {
    if (v.name === undefined) continue;
    const first = firstWithName.get(v.name);
    if (!first) {
      firstWithName.set(v.name, v);
      continue;
    }
    const at = first.locate({ rule: 'duplicate', path: ['metadata', 'name'], anchor: 'value', message: '' });
    errors.push(
      v.locate({
        rule: 'duplicate',
        path: ['metadata', 'name'],
        anchor: 'value',
        message: `runbook name ${quote(v.name)} is already used by ${first.file}:${at.line}:${at.column}`,
        expected: 'a name no other runbook has',
      }),
    );
  }

  const valid = validations.filter((v): v is RunbookValidation & { runbook: Runbook } => !!v.runbook);
  const nodes: DependencyNode[] = valid.map((v) => ({
    name: v.runbook.metadata.name,
    tier: v.runbook.spec.priority.tier,
    dependsOn: v.runbook.spec.priority.dependsOn,
  }));
  const broken = new Set(validations.flatMap((v) => (!v.runbook && v.name !== undefined ? [v.name] : [])));
  const names = nodes.map((n) => n.name);
  for (const problem of checkDependencies(nodes, broken)) {
    const v = valid[problem.node]!;
    const path = ['spec', 'priority', 'dependsOn', problem.entry];
    if (problem.kind === 'unknown') {
      errors.push(
        v.locate({
          rule: 'reference',
          path,
          anchor: 'value',
          message: `no runbook named ${quote(problem.name)} among the files validated`,
          expected:
            names.length > 1
              ? `one of ${oneOfWords(names.filter((n) => n !== v.runbook.metadata.name))}`
              : 'the metadata.name of another runbook',
          hint: didYouMean(
            problem.name,
            names,
            'validate every runbook together: pivot runbook validate runbooks/*.yaml',
          )!,
        }),
      );
    } else if (problem.kind === 'later-tier') {
      errors.push(
        v.locate({
          rule: 'dependency',
          path,
          anchor: 'value',
          message: `${quote(problem.name)} is in tier ${problem.tier}, after this runbook's tier ${v.runbook.spec.priority.tier}`,
          expected: `a runbook in tier ${v.runbook.spec.priority.tier} or lower: a dependency moves first`,
          hint: 'lower the tier of the dependency, or raise this one',
        }),
      );
    } else {
      errors.push(
        v.locate({
          rule: 'dependency',
          path,
          anchor: 'value',
          message: `dependency cycle: ${problem.cycle.join(' → ')}`,
          expected: 'runbooks that depend on each other in one direction only',
          hint: 'remove one dependsOn entry of the cycle',
        }),
      );
    }
  }
  return errors;
}
