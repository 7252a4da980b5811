/**
 * The `pivot` command tree. Each command group registers itself from its own module; output and
 * exit codes follow cli/output.ts. Built apart from cli/main.ts so that completion and tests can
 * read the tree without running a command.
 */
import { Command } from 'commander';
import { PIVOT_VERSION } from '../common/version.ts';
import { registerCompletion } from './completion.ts';
import { registerConfigCommands } from './config-commands.ts';
import { registerDemoCommand } from './demo-command.ts';
import { registerDrillCommands } from './drill-commands.ts';
import { registerAuditCommand } from './audit-command.ts';
import { registerLabCommands } from './lab-commands.ts';
import { registerOperationCommands } from './operation-commands.ts';
import { addOutputOptions } from './output.ts';
import { registerPlanCommands } from './plan-commands.ts';
import { registerRunbookCommands } from './runbook-commands.ts';

export function buildProgram(): Command {
  const program = new Command('pivot')
    .description('Pivot: cross-datacenter DR failover for stateful Kubernetes workloads')
    .version(PIVOT_VERSION, '-V, --version', 'print the version of this pivot')
    .option(
      '--context <name>',
      'the installation to talk to, from `pivot config get-contexts` (or $PIVOT_CONTEXT)',
    )
    .option(
      '--ca-file <file>',
      "the CA (PEM) that signed an https API's certificate, trusted instead of the system's (or $PIVOT_CA_FILE)",
    )
    .showHelpAfterError()
    .exitOverride();

  registerLabCommands(program);
  registerDemoCommand(program);
  registerRunbookCommands(program);
  registerPlanCommands(program);
  registerOperationCommands(program);
  registerDrillCommands(program);
  registerAuditCommand(program);
  registerConfigCommands(program);
  registerCompletion(program);
  addOutputOptions(program);

  program.hook('preAction', () => {
    const { context, caFile } = program.opts<{ context?: string; caFile?: string }>();
    if (context) process.env['PIVOT_CONTEXT'] = context;
    if (caFile) process.env['PIVOT_CA_FILE'] = caFile;
  });
  return program;
}
