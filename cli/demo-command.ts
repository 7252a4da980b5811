/**
 * `pivot demo` (npm run demo): the main job on the local lab. Until the failover workflows exist it
 * brings the lab up and shows it: both sites, the sample application running on dc-a and standing
 * by on dc-b, and its volumes replicating, as the simulated array reports them.
 */
import type { Command } from 'commander';
import { Lab } from '../lab/lab.ts';
import { SAMPLE_APP } from '../lab/seed.ts';
import { formatStatus } from './lab-commands.ts';
import { runCommand, stepPrinter } from './output.ts';
import { StorageSimClient, formatVolumes } from '../lab/storage-sim/client.ts';

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('bring the lab up and show the sample application replicating between the sites')
    .action(() =>
      runCommand(async () => {
        const lab = new Lab(stepPrinter());
        const { status, seconds } = await lab.up();
        const out: string[] = [formatStatus(status), '', `lab ready in ${seconds.toFixed(1)} s`, ''];
        for (const site of status.sites) {
          const api = lab.site(site.name);
          const pods = await api.core.listNamespacedPod({ namespace: SAMPLE_APP.namespace });
          const running = pods.items
            .filter((p) => p.status?.phase === 'Running')
            .map((p) => p.metadata?.name);
          out.push(
            `${site.name}: ${running.length} pods running in ${SAMPLE_APP.namespace}${running.length ? `: ${running.join(', ')}` : ' (standing by)'}`,
          );
        }
        const volumes = await new StorageSimClient(status.storageSimulator.url).volumes();
        out.push('', 'replicated volumes (simulated array):', formatVolumes(volumes));
        process.stdout.write(`${out.join('\n')}\n`);
      }),
    );
}
