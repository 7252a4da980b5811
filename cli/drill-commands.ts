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
import { formatPlan } from '../planner/format.ts';
import { ApiError, PivotApi } from './api-client.ts';
import { follow, print } from './operation-commands.ts';
import { EXIT, printJson, runCommand } from './output.ts';

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
    .option('--reason <text>', 'why (recorded in the evidence)', 'drill requested from the CLI')
    .action((apps: string[], opts: { site?: string; wait?: boolean; json?: boolean; reason: string }) =>
      runCommand(async () => {
        const api = new PivotApi();
        let started;
        try {
          started = await api.start({
            operation: 'drill',
            apps,
            ...(opts.site ? { site: opts.site } : {}),
            reason: opts.reason,
          });
        } catch (err) {
          if (err instanceof ApiError && err.status === 409 && err.body.plan) {
            process.stderr.write(`${formatPlan(err.body.plan)}\n`);
            return EXIT.failed;
          }
          throw err;
        }
        for (const r of started.refused) process.stderr.write(`REFUSED ${r.app}: ${r.reasons.join('; ')}\n`);
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
        if (opts.json) printJson(reports.length === 1 ? reports[0] : reports);
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
        if (opts.json) printJson({ drills });
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

async function latestDrill(api: PivotApi, app: string): Promise<string> {
  const [latest] = (await api.drills(app)).drills;
  if (!latest) {
    throw new ApiError(
      404,
      { error: 'unknown-drill', message: `no drill of ${app} is kept` },
      `run one: \`pivot drill run ${app}\``,
    );
  }
  return latest.id;
}

function formatDrills(drills: DrillSummary[]): string {
  if (drills.length === 0) return 'no drill is kept';
  const secs = (ms?: number) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);
  return drills
    .map(
      (d) =>
        `${d.id.padEnd(32)} ${d.site.padEnd(6)} ${d.verdict.toUpperCase().padEnd(5)} RTO ${secs(d.achieved.rtoMs)} / ${secs(d.objectives.rtoMs)}  RPO ${secs(d.achieved.rpoMs)} / ${secs(d.objectives.rpoMs)}  ${d.endedAt ?? ''}${d.reasons.length ? `\n    ${d.reasons.join('\n    ')}` : ''}`,
    )
    .join('\n');
}
