/**
 * The operations on the command line: `pivot switchover|failover|reprotect|failback <app...|--site
 * <site>> [--to <site>]`, with `--wait` (follow the progress to the end; exit 0 only if it
 * succeeded) and `--json` (print the report); and the decisions an operation may wait for:
 * `pivot approve|abort|retry|skip <app>`, plus `pivot status <app>`. They plan first (a refused
 * plan starts nothing) and talk to Temporal directly.
 */
import { readFileSync } from 'node:fs';
import { Client, Connection, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { Command } from 'commander';
import { CONTROL_TASK_QUEUE } from '../common/task-queues.ts';
import type { PivotConfig } from '../config/types.ts';
import { fenceFor } from '../config/fence.ts';
import { findConfig, loadConfig } from '../config/load.ts';
import { formatPlan } from '../planner/format.ts';
import { gatherInputs, SelectionError } from '../planner/inputs.ts';
import { buildPlan, type AppPlan } from '../planner/plan.ts';
import type { DecisionRequest, OperationInput } from '../workflows/engine.ts';
import { operationWorkflowId, siteOperationWorkflowId } from '../workflows/ids.ts';
import type { OperationReport } from '../workflows/progress.ts';
import type { SiteOperationInput, SiteOperationReport } from '../workflows/site.ts';
import { EXIT, printJson, runCommand } from './output.ts';
import { formatReport, formatSiteReport, formatStep } from './report-format.ts';

type AppOperation = 'switchover' | 'failover' | 'reprotect' | 'failback';
const APP_OPERATIONS: AppOperation[] = ['switchover', 'failover', 'reprotect', 'failback'];

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

export async function connectClient(
  config: PivotConfig,
): Promise<{ client: Client; close: () => Promise<void> }> {
  const tls = config.temporal.tls;
  const connection = await Connection.connect({
    address: config.temporal.address,
    ...(tls
      ? {
          tls: {
            ...(tls.serverName ? { serverNameOverride: tls.serverName } : {}),
            ...(tls.caFile ? { serverRootCACertificate: readFileSync(tls.caFile) } : {}),
            ...(tls.certFile && tls.keyFile
              ? { clientCertPair: { crt: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) } }
              : {}),
          },
        }
      : {}),
  });
  return {
    client: new Client({ connection, namespace: config.temporal.namespace }),
    close: () => connection.close(),
  };
}

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
    (target: string, opts: DecisionOptions) => runCommand(() => decide('approve', target, opts)),
  );
  decision(
    'abort',
    'abort an operation before its point of no return (it rolls back), or close one that needs attention',
  )
    .option('--reason <text>', 'why')
    .action((target: string, opts: DecisionOptions) => runCommand(() => decide('abort', target, opts)));
  decision('retry', 'retry the failed step of an operation that needs attention')
    .option('--step <id>', 'the failed step (checked)')
    .action((target: string, opts: DecisionOptions) => runCommand(() => decide('retry', target, opts)));
  decision('skip', 'skip the failed step of an operation that needs attention, with a reason')
    .requiredOption('--step <id>', 'the failed step')
    .requiredOption('--reason <text>', 'why it is safe to go on (recorded)')
    .action((target: string, opts: DecisionOptions) => runCommand(() => decide('skip', target, opts)));

  program
    .command('status <app>')
    .description("an operation's progress, or the report of the last one")
    .option('--site', 'the argument names a site: the site operation')
    .option('--config <file>', 'Pivot configuration (default: $PIVOT_CONFIG, then the lab)')
    .option('--json', 'print the report as JSON')
    .action((target: string, opts: DecisionOptions) =>
      runCommand(async () => {
        const config = loadConfig(findConfig(opts.config).file);
        const { client, close } = await connectClient(config);
        try {
          const id = opts.site ? siteOperationWorkflowId(target) : operationWorkflowId(target);
          const report = await readReport(client, id, target);
          print(report, opts.json);
          return EXIT.ok;
        } finally {
          await close();
        }
      }),
    );
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

async function readReport(
  client: Client,
  workflowId: string,
  target: string,
): Promise<OperationReport | SiteOperationReport> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    const desc = await handle.describe();
    if (desc.status.name === 'RUNNING') return await handle.query<OperationReport>('progress');
    return (await handle.result()) as OperationReport;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new SelectionError(
        `no operation of ${target} is on record`,
        'start one, e.g. `pivot switchover ' + target + '`',
      );
    }
    throw err;
  }
}

async function decide(
  action: 'approve' | 'abort' | 'retry' | 'skip',
  target: string,
  opts: DecisionOptions,
): Promise<number> {
  const config = loadConfig(findConfig(opts.config).file);
  const { client, close } = await connectClient(config);
  const workflowId = opts.site ? siteOperationWorkflowId(target) : operationWorkflowId(target);
  const request: DecisionRequest = {
    by: whoAmI(opts.by),
    ...(opts.reason ? { reason: opts.reason } : {}),
    ...(opts.step ? { step: opts.step } : {}),
  };
  try {
    const report = await client.workflow
      .getHandle(workflowId)
      .executeUpdate<OperationReport | SiteOperationReport, [DecisionRequest]>(action, { args: [request] });
    if (opts.json) printJson(report);
    else process.stderr.write(`${action} accepted by ${workflowId} (${request.by})\n`);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new SelectionError(
        `no running operation of ${target}`,
        '`pivot status ' + target + '` shows the last one',
      );
    }
    if (err instanceof WorkflowUpdateFailedError) {
      process.stderr.write(
        `error: ${workflowId} refused the ${action}: ${err.cause?.message ?? err.message}\n`,
      );
      return EXIT.failed;
    }
    throw err;
  } finally {
    await close();
  }
}

export async function runOperation(
  operation: AppOperation,
  apps: string[],
  opts: OperationOptions,
): Promise<number> {
  if (apps.length > 0 && opts.site) {
    throw new SelectionError(
      'name applications or --site, not both',
      `e.g. \`pivot ${operation} --site dc-a\``,
    );
  }
  if (apps.length === 0 && !opts.site) {
    throw new SelectionError(`${operation} of what?`, `name applications, or a site with --site`);
  }
  const { config, runbooks, live } = await gatherInputs(opts.config, {
    apps,
    ...(opts.site ? { site: opts.site } : {}),
  });
  const plan = buildPlan({ operation, ...(opts.to ? { to: opts.to } : {}) }, runbooks, live, config);
  const planned: AppPlan[] = plan.waves
    .flatMap((w) => w.apps)
    .filter(
      (p) => !opts.site || p.from === opts.site || operation === 'reprotect' || operation === 'failback',
    );
  if (plan.refused.length > 0) {
    process.stderr.write(`${formatPlan(plan)}\n`);
    if (planned.length === 0 || !opts.site) return EXIT.failed;
  }
  if (planned.length === 0) {
    process.stderr.write(`nothing to ${operation}: no application is active on ${opts.site}\n`);
    return EXIT.failed;
  }
  const by = whoAmI(opts.by);
  const reason = opts.reason ?? 'requested from the CLI';
  const { client, close } = await connectClient(config);
  try {
    if (opts.site && (operation === 'switchover' || operation === 'failover')) {
      const to = planned[0]!.to;
      const input: Omit<SiteOperationInput, 'operation'> = {
        from: opts.site,
        to,
        runbooks: runbooks.filter((r) => planned.some((p) => p.app === r.metadata.name)),
        concurrency: Number(opts.concurrency ?? 2),
        requestedBy: by,
        reason,
        storageClassMap: config.storageClassMap,
        fence: fenceFor(config, opts.site, to),
      };
      const workflowId = siteOperationWorkflowId(opts.site);
      const handle = await client.workflow.start(
        operation === 'switchover' ? 'siteSwitchover' : 'siteFailover',
        {
          taskQueue: CONTROL_TASK_QUEUE,
          workflowId,
          workflowIdConflictPolicy: 'USE_EXISTING',
          args: [input],
        },
      );
      process.stderr.write(`site ${operation} of ${opts.site} → ${to}: ${workflowId}\n`);
      if (!opts.wait) return EXIT.ok;
      const report = await follow<SiteOperationReport>(handle, opts.autoApprove, (r) =>
        r.outcome === 'waiting-approval'
          ? `waiting for approval: pivot approve --site ${opts.site}`
          : undefined,
      );
      print(report, opts.json);
      return report.outcome === 'succeeded' ? EXIT.ok : EXIT.failed;
    }
    const reports: OperationReport[] = [];
    for (const p of planned) {
      const runbook = runbooks.find((r) => r.metadata.name === p.app)!;
      const input: OperationInput = {
        runbook,
        from: p.from,
        to: p.to,
        requestedBy: by,
        reason,
        trigger: 'cli',
        storageClassMap: config.storageClassMap,
        fence: fenceFor(config, p.from, p.to),
      };
      const workflowId = operationWorkflowId(p.app);
      const asked = Date.now();
      const handle = await client.workflow.start(operation, {
        taskQueue: CONTROL_TASK_QUEUE,
        workflowId,
        workflowIdConflictPolicy: 'USE_EXISTING',
        args: [input],
      });
      const desc = await handle.describe();
      const attached = desc.type !== operation || desc.startTime.getTime() < asked - 1000;
      process.stderr.write(
        attached
          ? `${p.app}: a ${desc.type} is already running (${workflowId}, started ${desc.startTime.toISOString()}): attached to it instead of starting a rival\n`
          : `${p.app}: ${operation} ${p.from} → ${p.to} started (${workflowId})\n`,
      );
      if (opts.wait)
        reports.push(
          await follow<OperationReport>(handle, opts.autoApprove, (r) =>
            r.waiting ? r.waiting.detail : undefined,
          ),
        );
    }
    if (!opts.wait) return EXIT.ok;
    if (opts.json) printJson(reports.length === 1 ? reports[0] : reports);
    else for (const r of reports) process.stdout.write(`${formatReport(r)}\n\n`);
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
async function follow<T extends OperationReport | SiteOperationReport>(
  handle: Followable,
  autoApprove: string | undefined,
  waitingFor: (r: T) => string | undefined,
): Promise<T> {
  const seen = new Map<string, string>();
  let lastWaiting: string | undefined;
  for (;;) {
    const desc = await handle.describe();
    if (desc.status.name !== 'RUNNING') {
      if (desc.status.name !== 'COMPLETED') throw new Error(`${handle.workflowId} ended ${desc.status.name}`);
      return (await handle.result()) as T;
    }
    let report: T;
    try {
      report = await handle.query<T>('progress');
    } catch {
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
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
    const waiting = waitingFor(report);
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
