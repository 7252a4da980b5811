/** `pivot lab ...`: bring the two-datacenter lab up and down, inspect it, break it on purpose. */
import { InvalidArgumentError, type Command } from 'commander';
import { LabError } from '../lab/errors.ts';
import { labLayout } from '../lab/layout.ts';
import { ApiProxyClient } from '../lab/api-proxy/client.ts';
import { StorageSimClient, formatVolumes } from '../lab/storage-sim/client.ts';
import { Lab } from '../lab/lab.ts';
import type { LabStatus } from '../lab/status.ts';
import { EXIT, printData, runCommand, stepPrinter } from './output.ts';

export function formatStatus(s: LabStatus): string {
  const mark = (state: string): string => (state === 'running' ? 'running' : state.toUpperCase());
  const lines = [`lab ${mark(s.state)}   (${s.labDir})`, ''];
  for (const site of s.sites) {
    lines.push(
      `site ${site.name.padEnd(6)} ${mark(site.state).padEnd(10)} ${site.apiServerUrl}   nodes ready: ${site.readyNodes ?? '-'}`,
    );
    lines.push(
      `            kubeconfig ${site.kubeconfig} (context ${site.context || '-'}), client CIDRs ${site.clientCidrs.join(', ')}`,
    );
  }
  lines.push(
    `temporal    ${mark(s.temporal.state).padEnd(10)} ${s.temporal.address} (namespace ${s.temporal.namespace}), web UI ${s.temporal.webUiUrl}`,
  );
  lines.push(`redis       ${mark(s.redis.state).padEnd(10)} ${s.redis.url}`);
  lines.push(`storage-sim ${mark(s.storageSimulator.state).padEnd(10)} ${s.storageSimulator.url}`);
  lines.push(
    `api-proxy   ${mark(s.apiProxy.state).padEnd(10)} ${s.apiProxy.url} (Pivot reaches the sites through ${Object.values(s.apiProxy.siteUrls).join(', ')})`,
  );
  lines.push(
    `api         ${mark(s.api.state).padEnd(10)} ${s.api.url} (tokens per role: pivot lab status --json)`,
  );
  lines.push(
    `workers     ${s.workers.map((w) => `${w.name.replace(/^worker-/, '')} ${mark(w.state)}`).join(', ')}`,
  );
  lines.push('', `sample application: ${s.seeded ? 'seeded' : 'not seeded'}; logs in ${s.labDir}/logs`);
  return lines.join('\n');
}

export function registerLabCommands(program: Command): void {
  const lab = program
    .command('lab')
    .description(
      'the local two-datacenter lab (real Temporal, two Kubernetes sites, Redis, simulated storage)',
    );

  lab
    .command('up')
    .description(
      'start every part of the lab and seed the sample application; a running lab is left as it is',
    )
    .option('--json', 'print the lab status as JSON')
    .action((opts: { json?: boolean }) =>
      runCommand(async () => {
        const { status, alreadyRunning, seconds } = await new Lab(stepPrinter()).up();
        if (opts.json) printData(status);
        else process.stdout.write(`${formatStatus(status)}\n`);
        process.stderr.write(
          alreadyRunning
            ? 'lab was already running: nothing changed\n'
            : `lab up in ${seconds.toFixed(1)} s\n`,
        );
      }),
    );

  lab
    .command('status')
    .description('the state of every part, with URLs, kubeconfigs and log files')
    .option('--json', 'print as JSON (shape: docs/lab.md)')
    .action((opts: { json?: boolean }) =>
      runCommand(async () => {
        const status = await new Lab(stepPrinter(true)).status();
        if (opts.json) printData(status);
        else process.stdout.write(`${formatStatus(status)}\n`);
      }),
    );

  lab
    .command('down')
    .description('stop every part of the lab (state is kept unless --purge)')
    .option('--purge', 'also delete the lab state: the next up starts from a freshly seeded lab')
    .action((opts: { purge?: boolean }) =>
      runCommand(async () => {
        const { leftovers } = await new Lab(stepPrinter()).down({ purge: !!opts.purge });
        if (leftovers.length > 0) {
          process.stderr.write(`error: processes still running after down: ${leftovers.join(', ')}\n`);
          return EXIT.failed;
        }
        process.stderr.write('lab down: no lab process left\n');
      }),
    );

  lab
    .command('kill-site <site>')
    .description("stop one site's control plane, keeping its data (a datacenter loss)")
    .action((site: string) =>
      runCommand(async () => {
        await new Lab(stepPrinter()).killSite(site);
        process.stderr.write(`${site} is down\n`);
      }),
    );

  lab
    .command('partition-site <site>')
    .description(
      'cut a site off: its API and worker stop answering, its replication link goes down, its pods keep writing until fenced',
    )
    .action((site: string) =>
      runCommand(async () => {
        await new Lab(stepPrinter()).partitionSite(site);
        process.stderr.write(`${site} is cut off (revive-site heals it)\n`);
      }),
    );

  lab
    .command('api-faults [site]')
    .description(
      "fail Pivot's calls to a site's API server (through the lab's API proxy): errors, cut connections, latency, a blackhole; with no option, lift the site's faults; with no site, show them",
    )
    .option('--error-rate <share>', 'share of requests answered with --status (0 to 1)', Number)
    .option('--status <code>', 'the error answered: 500, 502, 503, 504 or 429', Number)
    .option('--drop-rate <share>', 'share of requests whose connection is cut (0 to 1)', Number)
    .option('--latency <ms>', 'delay added to each request', Number)
    .option('--blackhole', 'answer nothing at all')
    .option('--match <regex>', 'only requests whose "METHOD /path" matches')
    .option('--count <n>', 'only the next n matching requests', Number)
    .action(
      (
        site: string | undefined,
        o: {
          errorRate?: number;
          status?: number;
          dropRate?: number;
          latency?: number;
          blackhole?: boolean;
          match?: string;
          count?: number;
        },
      ) =>
        runCommand(async () => {
          const proxy = new ApiProxyClient((await new Lab(stepPrinter()).status()).apiProxy.url);
          const report = site
            ? await proxy.setFaults(site, {
                ...(o.errorRate !== undefined ? { errorRate: o.errorRate } : {}),
                ...(o.status !== undefined ? { status: o.status as 503 } : {}),
                ...(o.dropRate !== undefined ? { dropRate: o.dropRate } : {}),
                ...(o.latency !== undefined ? { latencyMs: o.latency } : {}),
                ...(o.blackhole ? { blackhole: true } : {}),
                ...(o.match !== undefined ? { match: o.match } : {}),
                ...(o.count !== undefined ? { count: o.count } : {}),
              })
            : await proxy.report();
          printData(report);
        }),
    );

  lab
    .command('revive-site <site>')
    .description("restart a killed or cut-off site's control plane with its data (the datacenter returns)")
    .action((site: string) =>
      runCommand(async () => {
        await new Lab(stepPrinter()).reviveSite(site);
        process.stderr.write(`${site} is back\n`);
      }),
    );

  lab
    .command('restart-workers')
    .description(
      "restart Pivot's workers (the control worker and one per running site), e.g. after a code change",
    )
    .action(() =>
      runCommand(async () => {
        await new Lab(stepPrinter()).restartWorkers();
      }),
    );

  lab
    .command('storage')
    .description(
      "the simulated array's volumes: roles, write sequences, lag, data not on the primary, split brain",
    )
    .option('--json', 'print the report as JSON')
    .action((opts: { json?: boolean }) =>
      runCommand(async () => {
        const volumes = await storageSim().volumes();
        if (opts.json) printData(volumes);
        else process.stdout.write(`${formatVolumes(volumes)}\n`);
      }),
    );

  lab
    .command('fault')
    .description('inject or clear storage faults; with no option, print the current ones')
    .option('--link <state>', 'replication link: down | up')
    .option('--fail-promotions <n>', 'fail the next N promotions', integer)
    .option('--promotion-delay-ms <ms>', 'delay every promotion by this long', integer)
    .option('--replication-interval-ms <ms>', 'how often replicas are synced', integer)
    .option('--sync-duration-ms <ms>', 'how long one sync takes', integer)
    .option('--json', 'print the resulting settings as JSON')
    .action((opts: FaultOptions) =>
      runCommand(async () => {
        if (opts.link !== undefined && opts.link !== 'up' && opts.link !== 'down') {
          throw new LabError(
            `--link takes "up" or "down", not "${opts.link}"`,
            'lab',
            'e.g. pivot lab fault --link down',
          );
        }
        const change = {
          ...(opts.link ? { linkDown: opts.link === 'down' } : {}),
          ...(opts.failPromotions !== undefined ? { failNextPromotions: opts.failPromotions } : {}),
          ...(opts.promotionDelayMs !== undefined ? { promotionDelayMs: opts.promotionDelayMs } : {}),
          ...(opts.replicationIntervalMs !== undefined
            ? { replicationIntervalMs: opts.replicationIntervalMs }
            : {}),
          ...(opts.syncDurationMs !== undefined ? { syncDurationMs: opts.syncDurationMs } : {}),
        };
        const client = storageSim();
        const settings = Object.keys(change).length ? await client.setFaults(change) : await client.faults();
        if (opts.json) printData(settings);
        else
          process.stdout.write(
            `${Object.entries(settings)
              .map(([k, v]) => `${k}: ${String(v)}`)
              .join('\n')}\n`,
          );
      }),
    );
}

interface FaultOptions {
  link?: string;
  failPromotions?: number;
  promotionDelayMs?: number;
  replicationIntervalMs?: number;
  syncDurationMs?: number;
  json?: boolean;
}

function storageSim(): StorageSimClient {
  return new StorageSimClient(`http://127.0.0.1:${labLayout().ports.storageSim}`);
}

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}
