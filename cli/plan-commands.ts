/**
 * `pivot check` (drift between the runbooks and both sites) and `pivot plan` (what an operation
 * would do, before it does anything). Both only read.
 */
import type { Command } from 'commander';
import { checkDrift } from '../planner/drift.ts';
import { formatDrift, formatPlan } from '../planner/format.ts';
import { gatherInputs } from '../planner/inputs.ts';
import { buildPlan } from '../planner/plan.ts';
import { OPERATIONS, type Operation } from '../runbook/types.ts';
import { EXIT, printJson, runCommand } from './output.ts';

export function registerPlanCommands(program: Command): void {
  program
    .command('check [app...]')
    .description('compare the runbooks with both sites and report every drift (exit 1 if any error)')
    .option('--config <file>', 'Pivot configuration (default: $PIVOT_CONFIG, then the lab)')
    .option('--json', 'print the issues as JSON')
    .action((apps: string[], opts: { config?: string; json?: boolean }) =>
      runCommand(async () => {
        const { config, runbooks, live } = await gatherInputs(opts.config, { apps });
        const issues = runbooks.flatMap((r) => checkDrift(r, live, config));
        if (opts.json) printJson({ apps: runbooks.map((r) => r.metadata.name), issues });
        else
          process.stdout.write(
            `${formatDrift(
              issues,
              runbooks.map((r) => r.metadata.name),
            )}\n`,
          );
        return issues.some((i) => i.severity === 'error') ? EXIT.failed : EXIT.ok;
      }),
    );

  program
    .command('plan')
    .description(
      'print what an operation would do, step by step, without changing anything (exit 1 if refused)',
    )
    .argument('<operation>', OPERATIONS.join(' | '))
    .argument('[app...]', 'applications (default: all, or those of --site)')
    .option('--site <site>', 'every application of this site')
    .option('--to <site>', 'the site to move to')
    .option('--config <file>', 'Pivot configuration (default: $PIVOT_CONFIG, then the lab)')
    .option('--json', 'print the plan as JSON')
    .action(
      (
        operation: string,
        apps: string[],
        opts: { site?: string; to?: string; config?: string; json?: boolean },
      ) =>
        runCommand(async () => {
          if (!(OPERATIONS as readonly string[]).includes(operation)) {
            process.stderr.write(
              `error: unknown operation "${operation}"\n  next: use one of ${OPERATIONS.join(', ')}\n`,
            );
            return EXIT.usage;
          }
          const { config, runbooks, live } = await gatherInputs(opts.config, {
            apps,
            ...(opts.site ? { site: opts.site } : {}),
          });
          const plan = buildPlan(
            { operation: operation as Operation, ...(opts.to ? { to: opts.to } : {}) },
            runbooks,
            live,
            config,
          );
          if (opts.json) printJson(plan);
          else process.stdout.write(`${formatPlan(plan)}\n`);
          return plan.refused.length > 0 ? EXIT.failed : EXIT.ok;
        }),
    );
}
