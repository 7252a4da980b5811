/**
 * `pivot check` (drift between the runbooks and both sites) and `pivot plan` (what an operation
 * would do, before it does anything). Both only read. `plan` asks the API (the deployed runbooks),
 * or with `--config` plans here from a configuration and its runbook directory, as `check` does:
 * that is how a runbook author tries a runbook before it is deployed.
 */
import type { Command } from 'commander';
import { checkDrift } from '../planner/drift.ts';
import { formatDrift, formatPlan } from '../planner/format.ts';
import { gatherInputs } from '../planner/inputs.ts';
import { buildPlan, type Plan } from '../planner/plan.ts';
import { OPERATIONS, type Operation } from '../runbook/types.ts';
import { PivotApi } from './api-client.ts';
import { EXIT, printData, runCommand } from './output.ts';

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
        if (opts.json) printData({ apps: runbooks.map((r) => r.metadata.name), issues });
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
    .option(
      '--config <file>',
      'plan here, from this configuration and its runbook directory (runbook authors); without it the API plans',
    )
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
          const selection = {
            ...(opts.site ? { site: opts.site } : {}),
            ...(opts.to ? { to: opts.to } : {}),
          };
          const plan = opts.config
            ? await planHere(opts.config, operation as Operation, apps, opts)
            : await new PivotApi().plan({
                operation: operation as Operation,
                apps,
                ...selection,
                reason: 'plan from the CLI',
              });
          if (opts.json) printData(plan);
          else process.stdout.write(`${formatPlan(plan)}\n`);
          return plan.refused.length > 0 ? EXIT.failed : EXIT.ok;
        }),
    );
}

/** Plans from a configuration file and its runbooks, reading both sites directly. */
async function planHere(
  configFile: string,
  operation: Operation,
  apps: string[],
  opts: { site?: string; to?: string },
): Promise<Plan> {
  const { config, runbooks, live } = await gatherInputs(configFile, {
    apps,
    ...(opts.site ? { site: opts.site } : {}),
  });
  return buildPlan({ operation, ...(opts.to ? { to: opts.to } : {}) }, runbooks, live, config);
}
