/**
 * `pivot runbook ...`: check runbook files before anything depends on them, and print the JSON
 * Schema that editors use to check them as they are typed. Both only read: no site, no Temporal,
 * nothing is contacted or changed.
 */
import { registerDiscoverCommand } from './discover-command.ts';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { RunbookError } from '../runbook/errors.ts';
import { RUNBOOK_SCHEMA } from '../runbook/schema.ts';
import type { Runbook } from '../runbook/types.ts';
import {
  formatRunbookError,
  validateRunbookSet,
  validateRunbookText,
  type RunbookValidation,
} from '../runbook/validate.ts';
import { EXIT, printData, runCommand } from './output.ts';

export interface RunbookFileReport {
  file: string;
  valid: boolean;
  errors: RunbookError[];
  /** With defaults filled in, when valid. */
  runbook?: Runbook;
}

async function validateFile(file: string, knownSites: string[] | undefined): Promise<RunbookValidation> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const error: RunbookError = {
      file,
      line: 1,
      column: 1,
      path: '',
      rule: 'file',
      message: `cannot read the file: ${err instanceof Error ? err.message : String(err)}`,
    };
    return { file, errors: [error], locate: () => error };
  }
  return validateRunbookText(text, file, knownSites ? { knownSites } : {});
}

/**
 * Validates files one by one and then as a set (names, dependencies); each error is reported
 * with the file it is in.
 */
export async function validateRunbookFiles(
  files: string[],
  knownSites?: string[],
): Promise<RunbookFileReport[]> {
  // A file named twice would otherwise collide with itself on metadata.name.
  const unique = [...new Set(files)];
  const validations = await Promise.all(unique.map((f) => validateFile(f, knownSites)));
  const setErrors = validateRunbookSet(validations);
  return validations.map((v) => {
    const errors = [...v.errors, ...setErrors.filter((e) => e.file === v.file)].sort(
      (a, b) => a.line - b.line || a.column - b.column,
    );
    const valid = errors.length === 0;
    return { file: v.file, valid, errors, ...(valid && v.runbook ? { runbook: v.runbook } : {}) };
  });
}

function summary(runbook: Runbook): string {
  const { spec } = runbook;
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  return [
    `${runbook.metadata.name} (${spec.sites.primary} → ${spec.sites.secondary})`,
    count(spec.workloads.length, 'workload'),
    count(spec.volumes.length, 'volume group'),
    count(spec.hooks.length, 'hook'),
    `tier ${spec.priority.tier}`,
  ].join(', ');
}

export function registerRunbookCommands(program: Command): void {
  const runbook = program.command('runbook').description('check, draft and describe runbooks');
  registerDiscoverCommand(runbook);

  runbook
    .command('validate')
    .description(
      'check runbook files, alone and together (unique names, dependencies); reads the files only. ' +
        'Exit 0 when all are valid, 2 with every error (file:line:column) otherwise',
    )
    .argument('<file...>', 'runbook files; give all of a site together so that dependsOn can be checked')
    .option(
      '--sites <names>',
      'comma-separated site names that spec.sites must be among (as in the configuration)',
    )
    .option('--json', 'print {files: [{file, valid, errors}]}')
    .action((files: string[], opts: { json?: boolean; sites?: string }) =>
      runCommand(async () => {
        const knownSites = opts.sites
          ?.split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        const reports = await validateRunbookFiles(files, knownSites);
        const invalid = reports.filter((r) => !r.valid);
        if (opts.json) {
          printData({ files: reports.map(({ file, valid, errors }) => ({ file, valid, errors })) });
        } else {
          for (const report of reports) {
            if (report.runbook) process.stdout.write(`ok ${report.file}: ${summary(report.runbook)}\n`);
            for (const e of report.errors) process.stdout.write(`${formatRunbookError(e)}\n`);
          }
          if (invalid.length > 0) {
            const count = invalid.reduce((n, r) => n + r.errors.length, 0);
            process.stderr.write(
              `${invalid.length} of ${reports.length} file${reports.length === 1 ? '' : 's'} invalid, ${count} error${count === 1 ? '' : 's'}\n`,
            );
          }
        }
        return invalid.length > 0 ? EXIT.usage : EXIT.ok;
      }),
    );

  runbook
    .command('schema')
    .description('print the JSON Schema of runbooks (runbooks/runbook.schema.json is this output)')
    .action(() =>
      runCommand(() => {
        printData(RUNBOOK_SCHEMA);
        return Promise.resolve();
      }),
    );
}
