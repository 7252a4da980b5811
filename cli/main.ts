/**
 * `pivot`: the command line for on-call humans and scripts. Each command group registers itself
 * from its own module; output and exit codes follow cli/output.ts.
 */
import { Command, CommanderError } from 'commander';
import { registerDemoCommand } from './demo-command.ts';
import { registerDrillCommands } from './drill-commands.ts';
import { registerLabCommands } from './lab-commands.ts';
import { registerOperationCommands } from './operation-commands.ts';
import { registerPlanCommands } from './plan-commands.ts';
import { EXIT } from './output.ts';
import { registerRunbookCommands } from './runbook-commands.ts';

const program = new Command('pivot')
  .description('Pivot: cross-datacenter DR failover for stateful Kubernetes workloads')
  .showHelpAfterError()
  .exitOverride();

registerLabCommands(program);
registerDemoCommand(program);
registerRunbookCommands(program);
registerPlanCommands(program);
registerOperationCommands(program);
registerDrillCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    throw err;
  }
}
