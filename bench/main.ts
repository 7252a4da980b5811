/**
 * `npm run bench -- --apps N [--pvcs-per-app K] [--operation switchover|failover]`: one benchmark
 * run on the lab (started if it is not running). Prints the table and a last line of ratios, and
 * writes both as JSON and Markdown under artifacts/bench/. docs/performance.md says how to read them.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { Lab } from '../lab/lab.ts';
import { lastLine, runBench, writeResult } from './run.ts';

const positive = (max: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`an integer from 1 to ${max}`);
  return n;
};

const program = new Command('bench')
  .description(
    "moves N applications off a lab site with Pivot and with a kubectl runbook, and against the lab's floor",
  )
  .requiredOption('--apps <n>', 'applications to seed and move', positive(1000))
  .option('--pvcs-per-app <k>', 'replicated claims per application', positive(20), 1)
  .addOption(
    new Option('--operation <op>', 'the site operation')
      .choices(['switchover', 'failover'])
      .default('switchover'),
  )
  .option(
    '--concurrency <n>',
    'applications moved at once within a wave (default: all of them)',
    positive(1000),
  )
  .option(
    '--kubectl-sample <n>',
    'applications the kubectl runbook moves; its time is scaled to N',
    positive(1000),
    10,
  )
  .option('--keep', 'leave the applications on the lab afterwards', false)
  .option(
    '--rpo <duration>',
    "the runbooks' RPO objective; a site operation's plan refuses replicas older than it",
    '30s',
  )
  .action(
    async (opts: {
      apps: number;
      pvcsPerApp: number;
      operation: 'switchover' | 'failover';
      concurrency?: number;
      kubectlSample: number;
      keep: boolean;
      rpo: string;
    }) => {
      const log = (line: string) =>
        process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
      const lab = new Lab({ step: (text: string) => log(text) });
      await lab.up();
      const result = await runBench(lab, { ...opts, concurrency: opts.concurrency ?? opts.apps, log });
      const { json, table } = writeResult(result);
      process.stdout.write(`\n${table}\n\nwritten: ${json} (and .md)\n${lastLine(result)}\n`);
      const problems = [...result.endState.pivot, ...result.endState.kubectl];
      if (problems.length > 0 || result.pivot.outcome !== 'succeeded') process.exitCode = 1;
    },
  );

await program.parseAsync();
