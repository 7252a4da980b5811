/**
 * `pivot demo` (npm run demo): the main job on the local lab. It brings the lab up, then moves the
 * sample application `orders` as an on-call engineer would: a planned switchover to the other
 * site with live progress; that site then dies and an unplanned failover brings orders back
 * (approved with the lab's approver token); the dead site returns, stays fenced, and is reprotected. Each
 * operation prints its report (RTO, RPO, measured loss, steps). It runs again from any state the
 * previous run left.
 */
import type { Command } from 'commander';
import { waitUntil } from '../common/wait.ts';
import { Lab } from '../lab/lab.ts';
import { SITE_NAMES, type SiteName } from '../lab/layout.ts';
import { SAMPLE_APP } from '../lab/seed.ts';
import { StorageSimClient, formatVolumes } from '../lab/storage-sim/client.ts';
import { PivotApi } from './api-client.ts';
import { formatStatus } from './lab-commands.ts';
import { runOperation } from './operation-commands.ts';
import { EXIT, runCommand, stepPrinter } from './output.ts';

const APP = 'orders';

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'on the lab: switch orders over to the other site, kill that site, fail over back, reprotect; print the reports',
    )
    .action(() =>
      runCommand(async () => {
        const progress = stepPrinter();
        const lab = new Lab(progress);
        const { status, seconds } = await lab.up();
        process.stdout.write(`${formatStatus(status)}\n\nlab ready in ${seconds.toFixed(1)} s\n\n`);
        const sim = new StorageSimClient(status.storageSimulator.url);
        const current = (await new PivotApi().apps()).apps.find((a) => a.app === APP);
        if (!current?.activeSite)
          throw new Error(`cannot tell where ${APP} is active: ${JSON.stringify(current)}`);
        const home = current.activeSite as SiteName;
        const away = SITE_NAMES.find((s) => s !== home)!;
        // Everything goes through the lab's API, as on-call's CLI would: started with the lab's
        // operator token, approved with its approver token (the two-person rule is on).
        const opts = { wait: true, yes: true, autoApprove: 'demo: standing in for on-call' };

        const banner = (text: string) => process.stdout.write(`\n=== ${text}\n\n`);
        banner(`1. planned switchover of ${APP}: ${home} → ${away} (no data may be lost)`);
        let code = await runOperation('switchover', [APP], {
          ...opts,
          reason: 'demo: planned maintenance of ' + home,
        });
        if (code !== EXIT.ok) return code;

        banner(`2. ${away} dies: kill-site ${away}, then an unplanned failover back to ${home}`);
        await lab.killSite(away);
        progress.step(`${away} is down (its API server, controllers and Pivot's site worker)`);
        code = await runOperation('failover', [APP], { ...opts, reason: `demo: ${away} lost` });
        if (code !== EXIT.ok) return code;

        banner(
          `3. ${away} returns: its site guard keeps ${APP} down there and its volumes stay fenced; reprotect`,
        );
        await lab.reviveSite(away);
        progress.step(`${away} is back, with ${APP} still scaled up there as it was when it died`);
        const api = lab.site(away);
        await waitUntil(
          `${away}'s site guard to scale ${APP} down`,
          async () => {
            const pods = await api.core.listNamespacedPod({ namespace: SAMPLE_APP.namespace });
            const running = pods.items.filter(
              (p) => p.metadata?.labels?.['app.kubernetes.io/part-of'] === APP,
            );
            return running.length === 0 || `${running.length} pods`;
          },
          { timeoutMs: 60_000 },
        );
        const fenced = (await sim.volumes())
          .filter((v) => v.origin.namespace === SAMPLE_APP.namespace)
          .every((v) => v.copies.find((c) => c.site === away)?.fenced);
        progress.step(
          `${away}: its site guard scaled ${APP} to 0; its volumes ${fenced ? 'are fenced at the array' : 'are NOT fenced'}`,
        );
        code = await runOperation('reprotect', [APP], { ...opts, reason: `demo: ${away} is back` });
        if (code !== EXIT.ok) return code;

        banner('the simulated array now');
        process.stdout.write(
          `${formatVolumes((await sim.volumes()).filter((v) => v.origin.namespace === SAMPLE_APP.namespace))}\n`,
        );
        process.stdout.write(
          `\n${APP} is active on ${home} again and replicating to ${away}. Run \`npm run demo\` again to repeat.\n`,
        );
        return EXIT.ok;
      }),
    );
}
