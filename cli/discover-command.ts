/** `pivot runbook discover`: a draft runbook from a live namespace, for a person to review. */
import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { connectConfiguredSite } from '../common/k8s.ts';
import { findConfig, loadConfig } from '../config/load.ts';
import { SelectionError } from '../planner/inputs.ts';
import { observeSite } from '../planner/live-state.ts';
import { discoverRunbook } from '../runbook/discover.ts';
import { runCommand } from './output.ts';

export function registerDiscoverCommand(runbook: Command): void {
  runbook
    .command('discover')
    .description(
      'draft a runbook from what runs in a namespace on one site; REVIEW comments mark what was guessed',
    )
    .requiredOption('--site <site>', 'the site where the application runs now')
    .requiredOption('--namespace <ns>', 'the namespace to read')
    .option('--name <app>', 'the application name (default: the namespace)')
    .option('-o, --output <file>', 'write the runbook there instead of stdout')
    .option('--config <file>', 'Pivot configuration (default: $PIVOT_CONFIG, then the lab)')
    .action((opts: { site: string; namespace: string; name?: string; output?: string; config?: string }) =>
      runCommand(async () => {
        const config = loadConfig(findConfig(opts.config).file);
        const site = config.sites.find((s) => s.name === opts.site);
        if (!site)
          throw new SelectionError(
            `unknown site ${opts.site}`,
            `known sites: ${config.sites.map((s) => s.name).join(', ')}`,
          );
        const api = connectConfiguredSite(site);
        const snapshot = await observeSite(api, [opts.namespace]);
        if (!snapshot.reachable)
          throw new Error(`site ${site.name} did not answer: ${snapshot.error ?? 'unknown error'}`);
        const services = await api.core.listNamespacedService({ namespace: opts.namespace });
        const serviceSelectors = Object.fromEntries(
          services.items
            .filter((s) => s.spec?.selector && s.spec.clusterIP !== 'None')
            .map((s) => [s.metadata!.name!, s.spec!.selector!]),
        );
        const others = config.sites.filter((s) => s.name !== site.name);
        const { yaml, review } = discoverRunbook({
          snapshot,
          namespace: opts.namespace,
          serviceSelectors,
          ...(others.length === 1 ? { standby: others[0]!.name } : {}),
          ...(opts.name ? { name: opts.name } : {}),
        });
        if (opts.output) {
          writeFileSync(opts.output, yaml);
          process.stderr.write(`wrote ${opts.output}; ${review.length} things to review\n`);
        } else process.stdout.write(yaml);
      }),
    );
}
