/**
 * The API process: `api/main.ts [--config FILE]` listens on the configuration's `api.listen`, over
 * HTTPS with `api.tls` (api/tls.ts), else plain HTTP. `pivot lab up` runs it as the lab's `api`
 * daemon.
 */
import { parseArgs } from 'node:util';
import { identifyProcess } from '../common/k8s.ts';
import { createLogger } from '../common/logging.ts';
import { findConfig, loadConfig } from '../config/load.ts';
import { gatherInputsFor } from '../planner/inputs.ts';
import { witnessFor, witnessRedis } from '../witness/connect.ts';
import { createApp, STATUS_AGES } from './app.ts';
import { BoardFeed } from './board/feed.ts';
import { estate } from './estate.ts';
import { StatusMonitor } from './monitor.ts';
import { drillSummary } from './contract.ts';
import type { DrillReport } from '../workflows/drill.ts';
import { sharedSnapshot } from './shared-snapshot.ts';
import { ApiMetrics } from './metrics.ts';
import { connectClient } from './operations.ts';
import { createHttpsApiServer, type HttpsApiServer } from './tls.ts';

const { values } = parseArgs({ options: { config: { type: 'string' } } });
const config = loadConfig(findConfig(values.config).file);
const log = createLogger('api');
identifyProcess('api');
const redis = witnessRedis(config);
const { client, close } = await connectClient(config);
const witness = witnessFor(config, redis);
const status = sharedSnapshot(() => gatherInputsFor(config, {}), STATUS_AGES);
const metrics = new ApiMetrics();
const feed = new BoardFeed({
  client,
  witness,
  estate: () => estate({ config, witness, status, metrics }),
  ...(config.api.board?.temporalUiUrl ? { temporalUiUrl: config.api.board.temporalUiUrl } : {}),
  log,
});
const app = createApp({
  config,
  client,
  witness,
  redis,
  gather: (selection) => gatherInputsFor(config, selection),
  status,
  metrics,
  feed,
  log,
});
// A certificate that does not load stops the API here, before anything runs.
const https: HttpsApiServer | undefined = config.api.tls
  ? await createHttpsApiServer(app, config.api.tls, { log })
  : undefined;
const monitor = new StatusMonitor({
  config,
  client,
  redis,
  status,
  feed,
  metrics,
  log,
  drills: async () =>
    (await witness.drills(500)).map((json) => drillSummary(JSON.parse(json) as DrillReport)),
});
monitor.start();
const [host, port] = config.api.listen.split(':') as [string, string];
const ready = () => {
  log.info(
    {
      listen: config.api.listen,
      scheme: https ? 'https' : 'http',
      tokens: (config.api.tokens ?? []).map((t) => t.name),
    },
    'api ready',
  );
};
const server = https ? https.server.listen(Number(port), host, ready) : app.listen(Number(port), host, ready);
const stop = () => {
  monitor.stop();
  const closed = () => {
    void close().then(() => redis.disconnect());
  };
  if (https) void https.close().then(closed, closed);
  else server.close(closed);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
