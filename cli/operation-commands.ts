/**
 * The operations on the command line, all through the API (cli/api-client.ts):
 * - `pivot switchover|failover|reprotect|failback <app...|--site <site>> [--to <site>]`, with
 *   `--wait` (follow the progress to the end; exit 0 only if it succeeded) and `--json`;
 * - the decisions an operation may wait for: `pivot approve|abort|retry|skip <app>`;
 * - `pivot watch <app>` (live per-step progress), `pivot report <app>` (progress or last report),
 *   `pivot status [app...]` (every application: active site, epoch, lag vs RPO, drift).
 * The API plans first: a refused plan starts nothing and the CLI prints why.
 */
import type { Command } from 'commander';
import { DEFAULT_CONCURRENCY, type AnyReport, type AppStatus } from '../api/contract.ts';
import { APP_OPERATIONS, type AppOperation, type DecisionAction } from '../api/operations.ts';
import { formatPlan, formatPlanSummary } from '../planner/format.ts';
import { ApiError, ApiUnreachableError, PivotApi } from './api-client.ts';
import { confirmed } from './confirm.ts';
import { CliUsageError, EXIT, formatTable, printData, runCommand } from './output.ts';
import { formatReport, formatSiteReport, formatStep } from './report-format.ts';

export interface OperationOptions {
  site?: string;
  to?: string;
  wait?: boolean;
  json?: boolean;
  reason?: string;
  concurrency?: string;
  /** Confirmed already: no question (scripts, or a person who passed --yes). */
  yes?: boolean;
  /** The demo approves what waits for approval (with the approver's token), as on-call would. */
  autoApprove?: string;
}

interface TargetOptions {
  site?: boolean;
  json?: boolean;
  reason?: string;
  step?: string;
  acceptDataLoss?: string;
  attest?: string;
  yes?: boolean;
}

const YES = ['-y, --yes', 'confirmed: do not ask (needed when no terminal is there to ask)'] as const;

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
      .option('--reason <text>', 'why (required: recorded in the report and the audit log)')
      .option(
        '--concurrency <n>',
        'site operations: applications moved at once within a wave',
        String(DEFAULT_CONCURRENCY),
      )
      .option(...YES)
      .action((apps: string[], opts: OperationOptions) =>
        runCommand(() => runOperation(operation, apps, opts)),
      );
  }

  const command = (name: string, description: string) =>
    program
      .command(`${name} <app>`)
      .description(description)
      .option('--site', 'the argument names a site: the site operation')
      .option('--json', 'print the report as JSON');
  const decision = (action: DecisionAction, description: string) =>
    command(action, description).action((target: string, opts: TargetOptions) =>
      runCommand(() => decideFromCli(action, target, opts)),
    );

  decision('approve', 'approve an operation waiting for approval')
    .option('--reason <text>', 'why')
    .option(
      '--accept-data-loss <duration>',
      'a failover whose expected loss exceeds its RPO objective: the loss you accept ("5m", or "unbounded")',
    );
  decision(
    'abort',
    'abort an operation before its point of no return (it rolls back), or close one that needs attention',
  )
    .option('--reason <text>', 'why')
    .option(...YES);
  decision('retry', 'retry the failed step of an operation that needs attention').option(
    '--step <id>',
    'the failed step (checked)',
  );
  decision('skip', 'skip the failed step of an operation that needs attention, with a reason')
    .requiredOption('--step <id>', 'the failed step')
    .requiredOption('--reason <text>', 'why it is safe to go on (recorded)')
    .option(...YES)
    .option(
      '--attest <text>',
      'a failed storage fence (approvers only, not the requester): how the old primary was fenced instead ("fenced by hand: ...")',
    );

  command(
    'watch',
    "follow an operation's steps as they happen, then print its report (exit 0 only if it succeeded)",
  ).action((target: string, opts: TargetOptions) =>
    runCommand(async () => {
      const report = await follow(new PivotApi(), targetId(target, opts.site), undefined);
      print(report, opts.json);
      return report.outcome === 'succeeded' ? EXIT.ok : EXIT.failed;
    }),
  );

  command('report', "an operation's progress, or the report of the last one").action(
    (target: string, opts: TargetOptions) =>
      runCommand(async () => {
        print((await new PivotApi().operation(targetId(target, opts.site))).report, opts.json);
        return EXIT.ok;
      }),
  );

  program
    .command('status [app...]')
    .description('every application (or those named): active site, epoch, fences, lag vs RPO, drift')
    .option('--json', 'print the status as JSON')
    .action((apps: string[], opts: { json?: boolean }) =>
      runCommand(async () => {
        const all = (await new PivotApi().apps()).apps;
        const unknown = apps.filter((a) => !all.some((s) => s.app === a));
        if (unknown.length > 0) {
          throw new ApiError(
            404,
            { error: 'unknown', message: `unknown application: ${unknown.join(', ')}` },
            `known: ${all.map((s) => s.app).join(', ') || 'none'}`,
          );
        }
        const shown = apps.length > 0 ? all.filter((s) => apps.includes(s.app)) : all;
        if (opts.json) printData({ apps: shown });
        else process.stdout.write(`${formatStatus(shown)}\n`);
        return shown.every((s) => s.withinRpo && s.drift.errors === 0) ? EXIT.ok : EXIT.failed;
      }),
    );
}

/** The operation id an operator names on the command line (`--site`: the argument is a site). */
const targetId = (target: string, site?: boolean): string => (site ? `site:${target}` : target);

export function print(report: AnyReport, json?: boolean): void {
  if (json) printData(report);
  else process.stdout.write(`${'app' in report ? formatReport(report) : formatSiteReport(report)}\n`);
}

function formatStatus(apps: AppStatus[]): string {
  const secs = (ms: number | null) => (ms === null ? '-' : `${(ms / 1000).toFixed(1)} s`);
  const rows = apps.map((a) => [
    a.app,
    a.activeSite ?? '?',
    String(a.epoch),
    a.fencedSites.join(',') || '-',
    `${secs(a.replicationLagMs)} / ${secs(a.rpoObjectiveMs)}${a.withinRpo ? '' : ' BREACH'}`,
    a.drift.errors + a.drift.warnings === 0
      ? 'none'
      : `${a.drift.errors} errors, ${a.drift.warnings} warnings`,
    a.operationRunning ?? '-',
  ]);
  return formatTable(['app', 'active', 'epoch', 'fenced', 'lag / rpo', 'drift', 'operation'], rows);
}

async function decideFromCli(action: DecisionAction, target: string, opts: TargetOptions): Promise<number> {
  const id = targetId(target, opts.site);
  const api = new PivotApi();
  if (action === 'abort' || action === 'skip') {
    const question =
      action === 'abort'
        ? `abort the operation of ${target} (it rolls back what it did, or closes it if past its point of no return)`
        : `skip the failed step ${opts.step} of ${target}'s operation and go on`;
    const ok = await confirmed(
      {
        question,
        summary: async () => {
          const { report } = await api.operation(id);
          return 'app' in report ? formatReport(report) : formatSiteReport(report);
        },
      },
      opts.yes,
    );
    if (!ok) return EXIT.failed;
  }
  const { report } = await api.decide(id, action, {
    ...(opts.reason ? { reason: opts.reason } : {}),
    ...(opts.step ? { step: opts.step } : {}),
    ...(opts.acceptDataLoss ? { acceptDataLoss: opts.acceptDataLoss } : {}),
    ...(opts.attest ? { attestation: opts.attest } : {}),
  });
  if (opts.json) printData(report);
  else process.stderr.write(`${action} accepted by the operation of ${target}\n`);
  return EXIT.ok;
}

export async function runOperation(
  operation: AppOperation,
  apps: string[],
  opts: OperationOptions,
): Promise<number> {
  if (!opts.reason?.trim()) {
    throw new CliUsageError(
      `say why with --reason: a ${operation} is recorded with its reason in the audit log`,
      `pivot ${operation} ${apps.join(' ') || `--site ${opts.site ?? '<site>'}`} --reason "<why>"`,
    );
  }
  const api = new PivotApi();
  const request = {
    operation,
    apps,
    ...(opts.site ? { site: opts.site } : {}),
    ...(opts.to ? { to: opts.to } : {}),
    reason: opts.reason,
    concurrency: Number(opts.concurrency ?? DEFAULT_CONCURRENCY),
  };
  const what = opts.site ? `every application active on ${opts.site}` : apps.join(', ');
  const ok = await confirmed(
    {
      question: `${operation} ${what}${opts.to ? ` to ${opts.to}` : ''}`,
      summary: async () => {
        const plan = await api.plan(request);
        if (plan.waves.length > 0) return formatPlanSummary(plan);
        process.stderr.write(`${formatPlan(plan)}\n`);
        return false;
      },
    },
    opts.yes,
  );
  if (!ok) return EXIT.failed;
  let started;
  try {
    started = await api.start(request);
  } catch (err) {
    if (err instanceof ApiError && err.status === 409 && err.body.plan) {
      process.stderr.write(`${formatPlan(err.body.plan)}\n`);
      return EXIT.failed;
    }
    throw err;
  }
  if (started.refused.length > 0) {
    for (const r of started.refused) process.stderr.write(`REFUSED ${r.app}: ${r.reasons.join('; ')}\n`);
  }
  for (const s of started.operations) {
    process.stderr.write(
      s.attached
        ? `${s.app ?? s.site}: a ${s.type} is already running (${s.workflowId}): attached to it instead of starting a rival\n`
        : `${s.app ?? `site ${s.site}`}: ${s.type} ${s.from} → ${s.to} started (${s.workflowId})\n`,
    );
  }
  if (!opts.wait) return EXIT.ok;
  const reports: AnyReport[] = [];
  for (const s of started.operations) reports.push(await follow(api, s.workflowId, opts.autoApprove));
  if (opts.json) printData(reports.length === 1 ? reports[0] : reports);
  else for (const r of reports) print(r, false);
  return reports.every((r) => r.outcome === 'succeeded') ? EXIT.ok : EXIT.failed;
}

/** How long `--wait` and `watch` keep trying through an API that does not answer, before giving up. */
export const RIDE_OUT_MS = 10 * 60_000;

/** The API did not answer, failed, or asked to slow down: worth asking again (exit code 4's kind). */
export function isTransient(err: unknown): boolean {
  return (
    err instanceof ApiUnreachableError ||
    (err instanceof ApiError && (err.status === 429 || err.status >= 500))
  );
}

/**
 * Calls `read` until it answers, riding out transient errors (an API restarting, a 503 from its
 * ingress, a 429) with backoff from 1 s to 15 s, and saying so on stderr; after `limitMs` without an
 * answer, or on any other error, it throws.
 */
export async function rideOut<T>(
  read: () => Promise<T>,
  { limitMs = RIDE_OUT_MS, sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)) } = {},
): Promise<T> {
  let since: number | undefined;
  for (let delay = 1000; ; delay = Math.min(delay * 2, 15_000)) {
    try {
      const value = await read();
      if (since !== undefined) {
        process.stderr.write(
          `  the API answers again (after ${Math.round((Date.now() - since) / 1000)} s)\n`,
        );
      }
      return value;
    } catch (err) {
      if (!isTransient(err)) throw err;
      since ??= Date.now();
      if (Date.now() - since > limitMs) throw err;
      process.stderr.write(
        `  the API did not answer (${(err as Error).message}): retrying in ${delay / 1000} s; the operation goes on without us\n`,
      );
      await sleep(delay);
    }
  }
}

/**
 * Follows an operation through the API: step changes and waits on stderr as they happen; returns
 * the final report, or the report of an operation that needs attention (it stays open, waiting
 * for a decision). `autoApprove` (the demo): approve what waits for approval, with that reason.
 */
export async function follow(api: PivotApi, id: string, autoApprove: string | undefined): Promise<AnyReport> {
  const seen = new Map<string, string>();
  let lastWaiting: string | undefined;
  const showChanges = (report: AnyReport): void => {
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
    const { running, report } = await rideOut(() => api.operation(id));
    showChanges(report);
    if (!running) return report;
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
      const { report: after } = await api.decide(id, 'approve', { reason: autoApprove });
      const by = 'decisions' in after ? after.decisions.at(-1)?.by : undefined;
      process.stderr.write(`  approved${by ? ` by ${by}` : ''}: ${autoApprove}\n`);
    }
    if ('steps' in report && report.outcome === 'needs-attention' && report.waiting?.for === 'decision') {
      return report;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
