/**
 * Entry point of the storage simulator daemon: `node --import tsx lab/storage-sim/main.ts CONFIG`.
 * The lab starts it; CONFIG (JSON, see SimConfig) names the sites, their kubeconfigs and client
 * CIDRs, the state file and the HTTP port. State is reloaded on start, so a restart loses nothing.
 */
import { readFileSync } from 'node:fs';
import { connectSite } from '../../common/k8s.ts';
import { createLogger } from '../../common/logging.ts';
import { sleep } from '../../common/wait.ts';
import { StorageSimController } from './controller.ts';
import { startHttp } from './http.ts';
import { emptyState } from './model.ts';
import { StateStore } from './state-store.ts';

export interface SimConfig {
  sites: Array<{ name: string; kubeconfig: string; clientCidrs: string[] }>;
  port: number;
  stateFile: string;
  /** One observation + data-plane period. */
  periodMs: number;
  replicationIntervalMs: number;
  syncDurationMs: number;
}

async function main(): Promise<void> {
  const configPath = process.argv[2];
  if (!configPath) throw new Error('usage: storage-sim CONFIG.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as SimConfig;
  const log = createLogger('storage-sim');
  const store = new StateStore(config.stateFile);
  const state =
    store.load() ??
    emptyState(Object.fromEntries(config.sites.map((s) => [s.name, s.clientCidrs])), {
      replicationIntervalMs: config.replicationIntervalMs,
      syncDurationMs: config.syncDurationMs,
    });
  const sites = config.sites.map((s) => connectSite(s.name, s.kubeconfig));
  const controller = new StorageSimController(sites, state, log);
  controller.syncs.start();
  const server = await startHttp({ state, changed: () => store.save(state) }, config.port);
  log.info({ port: config.port, volumes: Object.keys(state.volumes).length }, 'storage simulator started');

  let stopping = false;
  const stop = (signal: string): void => {
    log.info({ signal }, 'stopping');
    stopping = true;
    controller.syncs.stop();
    server.close();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  let lastSlowWarning = 0;
  while (!stopping) {
    const started = Date.now();
    try {
      await controller.tick(started);
    } catch (err) {
      log.error({ err }, 'period failed');
    }
    store.save(state);
    const tookMs = Date.now() - started;
    if (tookMs > 4 * config.periodMs && started - lastSlowWarning > 10_000) {
      lastSlowWarning = started;
      log.warn(
        {
          tookMs,
          periodMs: config.periodMs,
          volumes: Object.keys(state.volumes).length,
          syncsToPublish: controller.syncs.size,
          phasesMs: controller.lastTick,
        },
        'period ran long: the array answers late',
      );
    }
    await sleep(Math.max(0, config.periodMs - tookMs));
  }
  store.save(state);
}

main().catch((err: unknown) => {
  process.stderr.write(`storage-sim: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
