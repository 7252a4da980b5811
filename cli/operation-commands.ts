/**
 * The operations on the command line: `pivot switchover|failover|reprotect|failback <app...|--site
 * <site>> [--to <site>]`, with `--wait` (follow the progress to the end; exit 0 only if it
 * succeeded) and `--json` (print the report); and the decisions an operation may wait for:
 * `pivot approve|abort|retry|skip <app>`, plus `pivot status <app>`. They plan first (a refused
 * plan starts nothing) and talk to Temporal directly, through api/operations.ts (the same code the
 * API runs).
 */
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import {
  APP_OPERATIONS,
  connectClient,
  decide,
  DecisionRefusedError,
  NoSuchOperationError,
  readReport,
  startOperations,
  workflowIdOf,
  type AppOperation,
  type DecisionAction,
  type OperationRequest,
} from '../api/operations.ts';
import { findConfig, loadConfig } from '../config/load.ts';
import { formatPlan } from '../planner/format.ts';
import { gatherInputs, SelectionError } from '../planner/inputs.ts';
import type { DecisionRequest } from '../workflows/engine.ts';
import { siteOperationWorkflowId } from '../workflows/ids.ts';
import type { OperationReport } from '../workflows/progress.ts';
import type { SiteOperationReport } from '../workflows/site.ts';
import { EXIT, printJson, runCommand } from './output.ts';
import { formatReport, formatSiteReport, formatStep } from './report-format.ts';

export interface OperationOptions {
  site?: string;
  to?: string;
  wait?: boolean;
  json?: boolean;
  reason?: string;
  by?: string;
  concurrency?: string;
  config?: string;
  /** The demo approves what waits for approval, in this name, as on-call would. */
  autoApprove?: string;
}

const whoAmI = (by?: string): string => by ?? process.env['PIVOT_USER'] ?? process.env['USER'] ?? 'cli';

export function registerOperationCommands(program: Command): void {
  for (const operation of APP_OPERATIONS) {
    program
      .command(`${operation} [app...]`)
      .description(
        {
          switchover: 'planned move with no data loss: quiesce, final sync, promote, start, repoint',
          failover: 'unplanned move when the source is down: fence it, force-promote, start, repoint',
          reprotect: 'after a failover: resync the old primary from the active site and lift its fence',
          failback: 'after a reprotect: a switchover back to the primary site',
        }[operation],
      )
      .option('--site <site>', 'every application active on this site (switchover, failover: in waves)')
      .option('--to <site>', 'the site to move to (default: the other site of each runbook)')
      .option('--wait', 'follow the progress until the end; exit 0 only if it succeeded')
      .option('--json', 'print the report as JSON')
      .option('--reason <text>', 'why (recorded in the report and the audit trail)', 'requested from the CLI')
      .option('--by <name>', 'who asks (default: $PIVOT_USER, then $USER)')
      .option('--concurrency <n>', 'site operations: applications moved at once within a wave', '2')
      .option('--config <file>', 'Pivot configuration (default: $PIVOT_CONFIG, then the lab)')
      .action((apps: string[], opts: OperationOptions) =>
        runCommand(() => runOperation(operation, apps, opts)),
      );
  }

  const decision = (name: 'approve' | 'abort' | 'retry' | 'skip', description: string) =>
    program
      .command(`${name} <app>`)
      .description(description)
      .option('--site', 'the argument names a site: decide on the site operation')
      .option('--by <name>', 'who decides (default: $PIVOT_USER, then $USER)')
      .option('--config <file>', 'Pivot configuration (default: $PIVOT_CONFIG, then the lab)')
      .option('--json', 'print the report as JSON');
  decision('approve', 'approve an operation waiting for approval').action(
    (target: string, opts: DecisionOptions) => runCommand(() => decideFromCli('approve', target, opts)),
  );
  decision(
    'abort',
    'abort an operation before its point of no return (it rolls back), or close one that needs attention',
  )
    .option('--reason <text>', 'why')
    .action((target: string, opts: DecisionOptions) =>
      runCommand(() => decideFromCli('abort', target, opts)),
    );
  decision('retry', 'retry the failed step of an operation that needs attention')
    .option('--step <id>', 'the failed step (checked)')
    .action((target: string, opts: DecisionOptions) =>
      runCommand(() => decideFromCli('retry', target, opts)),
    );
  decision('skip', 'skip the failed step of an operation that needs attention, with a reason')
    .requiredOption('--step <id>', 'the failed step')
    .requiredOption('--reason <text>', 'why it is safe to go on (recorded)')
    .action((target: string, opts: DecisionOptions) => runCommand(() => decideFromCli('skip', target, opts)));

  const reading = (name: string, description: string) =>
    program
      .command(`${name} <app>`)
      .description(description)
      .option('--site', 'the argument names a site: the site operation')
      .option('--config <file>', 'Pivot configuration (default: $PIVOT_CONFIG, then the lab)')
      .option('--json', 'print the report as JSON');

  reading(
    'watch',
    "follow an operation's steps as they happen, then print its report (exit 0 only if it succeeded)",
  ).action((target: string, opts: DecisionOptions) =>
    runCommand(() =>
      withClient(opts.config, async (client) => {
        const id = targetWorkflowId(target, opts.site);
        await lastReport(client, id, target); // says clearly when there is nothing to watch
        const report = await follow(client.workflow.getHandle(id), undefined);
        print(report, opts.json);
        return report.outcome === 'succeeded' ? EXIT.ok : EXIT.failed;
      }),
    ),
  );

  reading('status', "an operation's progress, or the report of the last one").action(
    (target: string, opts: DecisionOptions) =>
      runCommand(() =>
        withClient(opts.config, async (client) => {
          print(await lastReport(client, targetWorkflowId(target, opts.site), target), opts.json);
          return EXIT.ok;
        }),
      ),
  );
}

/** Runs `body` with a Temporal client from the configuration, and closes it. */
async function withClient<T>(
  configFile: string | undefined,
  body: (client: Client) => Promise<T>,
): Promise<T> {
  const { client, close } = await connectClient(loadConfig(findConfig(configFile).file));
  try {
    return await body(client);
  } finally {
    await close();
  }
}

/** The workflow id an operator names on the command line (`--site`: the argument is a site). */
function targetWorkflowId(target: string, site?: boolean): string {
  return site ? siteOperationWorkflowId(target) : workflowIdOf(target);
}

async function lastReport(
  client: Client,
  workflowId: string,
  target: string,
): Promise<OperationReport | SiteOperationReport> {
  try {
    return (await readReport(client, workflowId)).report;
  } catch (err) {
    if (err instanceof NoSuchOperationError) {
      throw new SelectionError(
        `no operation of ${target} is on record`,
        `start one, e.g. \`pivot switchover ${target}\``,
      );
    }
    throw err;
  }
}

interface DecisionOptions {
  site?: boolean;
  by?: string;
  config?: string;
  json?: boolean;
  reason?: string;
  step?: string;
}

function print(report: OperationReport | SiteOperationReport, json?: boolean): void {
  if (json) printJson(report);
  else process.stdout.write(`${'app' in report ? formatReport(report) : formatSiteReport(report)}\n`);
}

async function decideFromCli(action: DecisionAction, target: string, opts: DecisionOptions): Promise<number> {
  const workflowId = targetWorkflowId(target, opts.site);
  const request: DecisionRequest = {
    by: whoAmI(opts.by),
    ...(opts.reason ? { reason: opts.reason } : {}),
    ...(opts.step ? { step: opts.step } : {}),
  };
  return withClient(opts.config, async (client) => {
    try {
      const report = await decide(client, workflowId, action, request);
      if (opts.json) printJson(report);
      else process.stderr.write(`${action} accepted by ${workflowId} (${request.by})\n`);
      return EXIT.ok;
    } catch (err) {
      if (err instanceof NoSuchOperationError) {
        throw new SelectionError(
          `no running operation of ${target}`,
          `\`pivot status ${target}\` shows the last one`,
        );
      }
      if (err instanceof DecisionRefusedError) {
        process.stderr.write(`error: ${err.message}\n`);
        return EXIT.failed;
      }
      throw err;
    }
  });
}

export async function runOperation(
  operation: AppOperation,
  apps: string[],
  opts: OperationOptions,
): Promise<number> {
  const inputs = await gatherInputs(opts.config, { apps, ...(opts.site ? { site: opts.site } : {}) });
  const request: OperationRequest = {
    operation,
    apps,
    ...(opts.site ? { site: opts.site } : {}),
    ...(opts.to ? { to: opts.to } : {}),
    requestedBy: whoAmI(opts.by),
    reason: opts.reason ?? 'requested from the CLI',
    trigger: 'cli',
    concurrency: Number(opts.concurrency ?? 2),
  };
  const { client, close } = await connectClient(inputs.config);
  try {
    const { plan, started } = await startOperations(client, request, inputs);
    if (plan.refused.length > 0) process.stderr.write(`${formatPlan(plan)}\n`);
    if (started.length === 0) {
      if (plan.refused.length === 0) process.stderr.write(`nothing to ${operation} on ${opts.site}\n`);
      return EXIT.failed;
    }
    for (const s of started) {
      process.stderr.write(
        s.attached
          ? `${s.app ?? s.site}: a ${s.type} is already running (${s.workflowId}): attached to it instead of starting a rival\n`
          : `${s.app ?? `site ${s.site}`}: ${s.type} ${s.from} → ${s.to} started (${s.workflowId})\n`,
      );
    }
    if (!opts.wait) return EXIT.ok;
    const reports: Array<OperationReport | SiteOperationReport> = [];
    for (const s of started) {
      reports.push(await follow(client.workflow.getHandle(s.workflowId, s.runId), opts.autoApprove));
    }
    if (opts.json) printJson(reports.length === 1 ? reports[0] : reports);
    else for (const r of reports) print(r, false);
    return reports.every((r) => r.outcome === 'succeeded') ? EXIT.ok : EXIT.failed;
  } finally {
    await close();
  }
}

interface Followable {
  workflowId: string;
  executeUpdate(name: string, options: { args: [DecisionRequest] }): Promise<unknown>;
  describe(): Promise<{ status: { name: string } }>;
  query<T>(name: string): Promise<T>;
  result(): Promise<unknown>;
}

/**
 * Follows an operation: step changes and waits on stderr as they happen; returns the final report,
 * or the report of an operation that needs attention (it stays open, waiting for a decision).
 */
async function follow(
  handle: Followable,
  autoApprove: string | undefined,
): Promise<OperationReport | SiteOperationReport> {
  type T = OperationReport | SiteOperationReport;
  const seen = new Map<string, string>();
  let lastWaiting: string | undefined;
  const showChanges = (report: T): void => {
    if ('steps' in report) {
      for (const s of report.steps) {
        if (seen.get(s.id) !== s.state) {
          seen.set(s.id, s.state);
          if (s.state !== 'pending') process.stderr.write(`${report.app}${formatStep(s)}\n`);
        }
      }
    } else {
      for (const a of report.apps) {
        if (seen.get(a.app) !== a.outcome) {
          seen.set(a.app, a.outcome);
          process.stderr.write(`  wave ${a.wave} ${a.app}: ${a.outcome}${a.error ? `: ${a.error}` : ''}\n`);
        }
      }
    }
  };
  for (;;) {
    const desc = await handle.describe();
    if (desc.status.name !== 'RUNNING') {
      if (desc.status.name !== 'COMPLETED') throw new Error(`${handle.workflowId} ended ${desc.status.name}`);
      const final = (await handle.result()) as T;
      showChanges(final); // the steps that ended since the last look
      return final;
    }
    let report: T;
    try {
      report = await handle.query<T>('progress');
    } catch {
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    showChanges(report);
    const waiting =
      'steps' in report
        ? report.waiting?.detail
        : report.outcome === 'waiting-approval'
          ? `waiting for approval: pivot approve --site ${report.from}`
          : undefined;
    if (waiting && waiting !== lastWaiting) process.stderr.write(`  WAITING: ${waiting}\n`);
    lastWaiting = waiting;
    const approvalWanted =
      'steps' in report ? report.waiting?.for === 'approval' : report.outcome === 'waiting-approval';
    if (autoApprove && approvalWanted) {
      await handle.executeUpdate('approve', { args: [{ by: autoApprove }] });
      process.stderr.write(`  approved by ${autoApprove}\n`);
    }
    if ('steps' in report && report.outcome === 'needs-attention' && report.waiting?.for === 'decision') {
      return report;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
