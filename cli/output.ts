/**
 * How every pivot command talks to people and scripts: human text on stdout, progress and errors
 * on stderr, `--json` for scripts; and the documented exit codes.
 */
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

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Runs a command body; turns errors into a readable message and an exit code. */
export async function runCommand(body: () => Promise<number | void>): Promise<void> {
  try {
    process.exitCode = (await body()) ?? EXIT.ok;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof RunbookSetError || err instanceof SelectionError) {
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
