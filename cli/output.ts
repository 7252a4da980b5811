/**
 * How every pivot command talks to people and scripts: human text on stdout, progress and errors
 * on stderr, `-o json|yaml` (or `--json`) for scripts; and the documented exit codes.
 */
import Table from 'cli-table3';
import { Option, type Command } from 'commander';
import { stringify as toYaml } from 'yaml';
import { ConfigError } from '../config/load.ts';
import { ApiError, ApiUnreachableError } from './api-client.ts';
import { isLabError } from '../lab/errors.ts';
import { RunbookSetError, SelectionError } from '../planner/inputs.ts';

export const EXIT = {
  ok: 0,
  /** The operation failed or was refused (a part did not start, drift found, a plan refused). */
  failed: 1,
  /** The input was wrong: unknown site or application, bad flag, invalid runbook or configuration. */
  usage: 2,
  /** The API refused the credential (401) or its role (403). */
  denied: 3,
  /** The API did not answer, failed (5xx) or asked to slow down (429): try again later. */
  unavailable: 4,
} as const;

/** The exit code for an HTTP status the API answered with. */
export function exitForStatus(status: number): number {
  if (status === 401 || status === 403) return EXIT.denied;
  if (status === 409) return EXIT.failed;
  if (status === 429 || status >= 500) return EXIT.unavailable;
  return EXIT.usage;
}

export function stepPrinter(quiet = false): { step(message: string): void } {
  const started = Date.now();
  return {
    step(message: string) {
      if (quiet) return;
      const s = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
      process.stderr.write(`[${s}s] ${message}\n`);
    },
  };
}

export const OUTPUT_FORMATS = ['table', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** The format this invocation prints data in (set once, before the command runs). */
let format: OutputFormat = 'table';

/**
 * Gives every command that prints data (those with `--json`) the option `-o, --output
 * table|json|yaml`, as kubectl and velero do; `--json` stays as an alias of `-o json`. Commands
 * test `opts.json` for "a script reads this" and print with `printData`, which honours the format.
 */
export function addOutputOptions(program: Command): void {
  const visit = (cmd: Command): void => {
    if (cmd.options.some((o) => o.long === '--json')) {
      cmd.addOption(
        new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table'),
      );
    }
    cmd.commands.forEach(visit);
  };
  visit(program);
  program.hook('preAction', (_program, action) => {
    const opts = action.opts<{ json?: boolean; output?: OutputFormat }>();
    format = opts.json ? 'json' : (opts.output ?? 'table');
    if (format !== 'table') action.setOptionValue('json', true);
  });
}

/** Data for scripts, in the chosen format (JSON unless `-o yaml`). */
export function printData(value: unknown): void {
  process.stdout.write(format === 'yaml' ? toYaml(value) : `${JSON.stringify(value, null, 2)}\n`);
}

/** A table in kubectl's style (upper-case headers, columns two spaces apart, no borders). */
export function formatTable(header: string[], rows: string[][]): string {
  const table = new Table({
    head: header.map((h) => h.toUpperCase()),
    chars: Object.fromEntries(
      [
        'top',
        'top-mid',
        'top-left',
        'top-right',
        'bottom',
        'bottom-mid',
        'bottom-left',
        'bottom-right',
        'left',
        'left-mid',
        'mid',
        'mid-mid',
        'right',
        'right-mid',
        'middle',
      ].map((c) => [c, '']),
    ),
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 2 },
  });
  table.push(...rows);
  return table
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n');
}

/** A mistake on the command line found after parsing (a missing confirmation, a bad context). */
export class CliUsageError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'CliUsageError';
  }
}

/** Runs a command body; turns errors into a readable message and an exit code. */
export async function runCommand(body: () => Promise<number | void>): Promise<void> {
  try {
    process.exitCode = (await body()) ?? EXIT.ok;
  } catch (err) {
    if (
      err instanceof ConfigError ||
      err instanceof RunbookSetError ||
      err instanceof SelectionError ||
      err instanceof CliUsageError
    ) {
      const hint = 'hint' in err && err.hint ? `\n  next: ${err.hint}` : '';
      process.stderr.write(`error: ${err.message}${hint}\n`);
      process.exitCode = EXIT.usage;
      return;
    }
    if (err instanceof ApiError || err instanceof ApiUnreachableError) {
      const hint = err.hint ? `\n  next: ${err.hint}` : '';
      process.stderr.write(`error: ${err.message}${hint}\n`);
      process.exitCode = err instanceof ApiError ? exitForStatus(err.status) : EXIT.unavailable;
      return;
    }
    if (isLabError(err)) {
      process.stderr.write(`error: ${err.describe()}\n`);
      process.exitCode = err.part === 'lab' ? EXIT.usage : EXIT.failed;
      return;
    }
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = EXIT.failed;
  }
}
