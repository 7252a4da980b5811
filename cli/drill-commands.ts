/**
 * `pivot drill ...`: non-disruptive DR drills through the API (docs/adr/0004-drills.md).
 * - `drill run <app...|--site s> [--wait] [--json]`: clone drills on the standby sites;
 * - `drill list [app] [--json]`: the drills whose evidence is kept;
 * - `drill report <id|app> [--json] [--out file]`: a drill's evidence, and its HTML page written
 *   to a file whose path is printed (an application name means its latest drill);
 * - `drill abort <app>`: stop a running drill (it cleans up).
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { AnyReport, DrillSummary } from '../api/contract.ts';
import type { Blackout, DrillScheduleSpec, DrillScheduleView } from '../api/schedules.ts';
import { formatPlan } from '../planner/format.ts';
import { SelectionError } from '../planner/inputs.ts';
import { ApiError, PivotApi } from './api-client.ts';
import { follow, print } from './operation-commands.ts';
import { confirmed } from './confirm.ts';
import { CliUsageError, EXIT, formatTable, printData, runCommand } from './output.ts';

export function registerDrillCommands(program: Command): void {
  const drill = program
    .command('drill')
    .description('rehearse failovers on clones, without touching production');

  drill
    .command('run [app...]')
    .description('drill applications on their standby site: clone, start, check, measure, clean up')
    .option('--site <site>', 'every application active on this site')
    .option('--wait', 'follow the drills until they end; exit 0 only if every one passed')
    .option('--json', 'print the reports as JSON')
    .option('--reason <text>', 'why (required: recorded in the evidence and the audit log)')
    .option(
      '--mode <mode>',
      'clone (default: production untouched) or switchover (a real switchover and failback, after approval)',
      'clone',
    )
    .action(
      (
        apps: string[],
        opts: { site?: string; wait?: boolean; json?: boolean; reason?: string; mode: string },
      ) =>
        runCommand(async () => {
          if (!opts.reason?.trim()) {
            throw new CliUsageError(
              'say why with --reason: a drill is recorded with its reason in its evidence and the audit log',
              `pivot drill run ${apps.join(' ') || '--site <site>'} --reason "<why>"`,
            );
          }
          const api = new PivotApi();
          let started;
          try {
            started = await api.start({
              operation: 'drill',
              apps,
              ...(opts.site ? { site: opts.site } : {}),
              reason: opts.reason,
              mode: opts.mode as 'clone' | 'switchover',
            });
          } catch (err) {
            if (err instanceof ApiError && err.status === 409 && err.body.plan) {
              process.stderr.write(`${formatPlan(err.body.plan)}\n`);
              return EXIT.failed;
            }
            throw err;
          }
          for (const r of started.refused)
            process.stderr.write(`REFUSED ${r.app}: ${r.reasons.join('; ')}\n`);
          for (const s of started.operations) {
            process.stderr.write(
              s.attached
                ? `${s.app}: a drill is already running (${s.workflowId}): attached to it\n`
                : `${s.app}: drill on ${s.to} started (${s.workflowId})\n`,
            );
          }
          if (!opts.wait) return EXIT.ok;
          const reports: AnyReport[] = [];
          for (const s of started.operations) reports.push(await follow(api, s.workflowId, undefined));
          if (opts.json) printData(reports.length === 1 ? reports[0] : reports);
          else for (const r of reports) print(r, false);
          return reports.every((r) => r.outcome === 'succeeded') ? EXIT.ok : EXIT.failed;
        }),
    );

  drill
    .command('list [app]')
    .description('the drills whose evidence is kept, newest first')
    .option('--json', 'print them as JSON')
    .action((app: string | undefined, opts: { json?: boolean }) =>
      runCommand(async () => {
        const { drills } = await new PivotApi().drills(app);
        if (opts.json) printData({ drills });
        else process.stdout.write(`${formatDrills(drills)}\n`);
        return EXIT.ok;
      }),
    );

  drill
    .command('report <id>')
    .description(
      "a drill's evidence (an application name: its latest drill); writes its HTML page and prints the path",
    )
    .option('--json', 'print the report as JSON')
    .option('--out <file>', 'where to write the HTML page (default: ./pivot-drill-<id>.html)')
    .action((idOrApp: string, opts: { json?: boolean; out?: string }) =>
      runCommand(async () => {
        const api = new PivotApi();
        const { id, report } = await findDrill(api, idOrApp);
        const file = resolve(opts.out ?? `pivot-drill-${id}.html`);
        writeFileSync(file, await api.drillHtml(id));
        print(report, opts.json);
        process.stderr.write(`HTML report: ${file}\n`);
        return EXIT.ok;
      }),
    );

  registerScheduleCommands(drill);

  drill
    .command('abort <app>')
    .description('stop the running drill of an application; it cleans up what it made')
    .option('--reason <text>', 'why')
    .action((app: string, opts: { reason?: string }) =>
      runCommand(async () => {
        await new PivotApi().decide(`drill:${app}`, 'abort', opts.reason ? { reason: opts.reason } : {});
        process.stderr.write(`abort accepted by the drill of ${app}: it is cleaning up\n`);
        return EXIT.ok;
      }),
    );
}

/** A drill by its id, or the latest drill of an application. */
async function findDrill(api: PivotApi, idOrApp: string) {
  try {
    return { id: idOrApp, report: (await api.drill(idOrApp)).report };
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
  }
  const id = await latestDrill(api, idOrApp);
  return { id, report: (await api.drill(id)).report };
}

function registerScheduleCommands(drill: Command): void {
  const schedule = drill
    .command('schedule')
    .description('drill schedules (Temporal Schedules): cron or interval, time zone, jitter, blackouts');

  schedule
    .command('create <name> [app...]')
    .description('drill these applications (or --site) on a schedule; a firing while a drill runs is skipped')
    .option('--site <site>', 'every application active on this site')
    .option('--cron <expr>', 'five-field cron, e.g. "0 3 * * 1" (Mondays 03:00)')
    .option('--every <duration>', 'a fixed interval instead, e.g. 6h')
    .option('--timezone <tz>', 'IANA time zone for --cron and blackouts, e.g. Europe/Zurich')
    .option('--jitter <duration>', 'start up to this much later, at random, e.g. 10m')
    .option(
      '--blackout <window>',
      'never fire in this window: days=SATURDAY,SUNDAY and/or hours=8-18, joined by ";" (repeatable)',
      (value: string, all: string[] = []) => [...all, value],
    )
    .option('--reason <text>', 'why (recorded)', 'scheduled DR drill')
    .option('--json', 'print the schedule as JSON')
    .action((name: string, apps: string[], opts: ScheduleOptions) =>
      runCommand(async () => {
        const spec: DrillScheduleSpec = {
          name,
          reason: opts.reason,
          ...(apps.length ? { apps } : {}),
          ...(opts.site ? { site: opts.site } : {}),
          ...(opts.cron ? { cron: opts.cron } : {}),
          ...(opts.every ? { every: opts.every } : {}),
          ...(opts.timezone ? { timezone: opts.timezone } : {}),
          ...(opts.jitter ? { jitter: opts.jitter } : {}),
          ...(opts.blackout?.length ? { blackouts: opts.blackout.map(parseBlackout) } : {}),
        };
        showSchedule((await new PivotApi().createSchedule(spec)).schedule, opts.json);
        return EXIT.ok;
      }),
    );

  schedule
    .command('list')
    .description('every drill schedule, with its next runs')
    .option('--json', 'print them as JSON')
    .action((opts: { json?: boolean }) =>
      runCommand(async () => {
        const { schedules } = await new PivotApi().schedules();
        if (opts.json) printData({ schedules });
        else if (schedules.length === 0) process.stdout.write('no drill schedule\n');
        else for (const s of schedules) showSchedule(s, false);
        return EXIT.ok;
      }),
    );

  schedule
    .command('show <name>')
    .description('a drill schedule: its spec, state, next and recent runs')
    .option('--json', 'print it as JSON')
    .action((name: string, opts: { json?: boolean }) =>
      runCommand(async () => {
        showSchedule((await new PivotApi().schedule(name)).schedule, opts.json);
        return EXIT.ok;
      }),
    );

  for (const [action, paused] of [
    ['pause', true],
    ['resume', false],
  ] as const) {
    schedule
      .command(`${action} <name>`)
      .description(`${action} a drill schedule`)
      .option('--reason <text>', 'why (kept in the schedule note)')
      .option('--json', 'print the schedule as JSON')
      .action((name: string, opts: { reason?: string; json?: boolean }) =>
        runCommand(async () => {
          showSchedule((await new PivotApi().pauseSchedule(name, paused, opts.reason)).schedule, opts.json);
          return EXIT.ok;
        }),
      );
  }

  schedule
    .command('delete <name>')
    .description('delete a drill schedule (running drills go on)')
    .option('-y, --yes', 'confirmed: do not ask (needed when no terminal is there to ask)')
    .action((name: string, opts: { yes?: boolean }) =>
      runCommand(async () => {
        const api = new PivotApi();
        const ok = await confirmed(
          {
            question: `delete the drill schedule ${name}`,
            summary: async () => scheduleText((await api.schedule(name)).schedule),
          },
          opts.yes,
        );
        if (!ok) return EXIT.failed;
        await api.deleteSchedule(name);
        process.stderr.write(`drill schedule ${name} deleted\n`);
        return EXIT.ok;
      }),
    );
}

interface ScheduleOptions {
  site?: string;
  cron?: string;
  every?: string;
  timezone?: string;
  jitter?: string;
  blackout?: string[];
  reason: string;
  json?: boolean;
}

/** `days=SATURDAY,SUNDAY;hours=0-6` → a blackout window (the API checks the values). */
export function parseBlackout(text: string): Blackout {
  const window: Blackout = { comment: text };
  for (const part of text
    .split(';')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [key, value = ''] = part.split('=', 2).map((x) => x.trim());
    if (key === 'days')
      window.daysOfWeek = value.split(',').map((d) => d.trim().toUpperCase()) as Blackout['daysOfWeek'];
    else if (key === 'hours') {
      const m = /^(\d{1,2})(?:-(\d{1,2}))?$/.exec(value);
      if (!m) throw new SelectionError(`--blackout ${text}: hours=H or hours=H-H`, 'e.g. hours=8-18');
      window.hours = { start: Number(m[1]), end: Number(m[2] ?? m[1]) };
    } else throw new SelectionError(`--blackout ${text}: unknown key ${key}`, 'use days=... and hours=...');
  }
  return window;
}

function showSchedule(s: DrillScheduleView, json?: boolean): void {
  if (json) printData(s);
  else process.stdout.write(`${scheduleText(s)}\n`);
}

function scheduleText(s: DrillScheduleView): string {
  const what = s.apps?.join(', ') ?? `site ${s.site}`;
  const when = s.cron ? `cron "${s.cron}"${s.timezone ? ` (${s.timezone})` : ''}` : `every ${s.every}`;
  const lines = [
    `${s.name}: drill ${what}, ${when}${s.jitter ? `, jitter ${s.jitter}` : ''} — ${s.paused ? 'PAUSED' : 'active'}`,
    ...(s.note ? [`  note: ${s.note}`] : []),
    ...s.blackouts.map((b) => `  blackout: ${b.comment ?? JSON.stringify(b)}`),
    `  next: ${s.nextRuns.slice(0, 3).join(', ') || '-'}`,
    `  skipped (a drill was still running): ${s.skippedOverlap}`,
  ];
  return lines.join('\n');
}

async function latestDrill(api: PivotApi, app: string): Promise<string> {
  const [latest] = (await api.drills(app)).drills;
  if (!latest) {
    throw new ApiError(
      404,
      { error: 'unknown-drill', message: `no drill of ${app} is kept` },
      `run one: \`pivot drill run ${app} --reason "<why>"\``,
    );
  }
  return latest.id;
}

function formatDrills(drills: DrillSummary[]): string {
  if (drills.length === 0) return 'no drill is kept';
  const secs = (ms?: number) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);
  return formatTable(
    ['id', 'site', 'verdict', 'rto / objective', 'rpo / objective', 'ended', 'reasons'],
    drills.map((d) => [
      d.id,
      d.site,
      d.verdict.toUpperCase(),
      `${secs(d.achieved.rtoMs)} / ${secs(d.objectives.rtoMs)}`,
      `${secs(d.achieved.rpoMs)} / ${secs(d.objectives.rpoMs)}`,
      d.endedAt ?? '-',
      d.reasons.join('; ') || '-',
    ]),
  );
}
