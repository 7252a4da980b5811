/**
 * How every pivot command talks to people and scripts: human text on stdout, progress and errors
 * on stderr, `--json` for scripts; and the documented exit codes.
 */
import { isLabError } from '../lab/errors.ts';

export const EXIT = {
  ok: 0,
  /** The operation failed (a part did not start, a site is down...). */
  failed: 1,
  /** The command line was wrong (unknown site, bad flag). */
  usage: 2,
} as const;

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
    if (isLabError(err)) {
      process.stderr.write(`error: ${err.describe()}\n`);
      process.exitCode = err.part === 'lab' ? EXIT.usage : EXIT.failed;
      return;
    }
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = EXIT.failed;
  }
}
