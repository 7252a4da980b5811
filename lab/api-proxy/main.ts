/**
 * Entry point of the lab's API proxy daemon: `node --import tsx lab/api-proxy/main.ts CONFIG`.
 * CONFIG (JSON, ApiProxyConfig) names each site's listener and upstream, and the admin port.
 *
 * Admin API (loopback only):
 *   GET    /healthz
 *   GET    /v1/faults            the faults in force and the counters, per site
 *   PUT    /v1/faults/:site      replace a site's faults (ApiFaults; fields not given mean none)
 *   DELETE /v1/faults            lift every fault on every site
 */
import express, { type Request, type Response } from 'express';
import { readFileSync } from 'node:fs';
import { createLogger } from '../../common/logging.ts';
import { faultErrors, type ApiFaults } from './faults.ts';
import { SiteProxy, type ProxiedSite } from './proxy.ts';

export interface ApiProxyConfig {
  sites: ProxiedSite[];
  adminPort: number;
}

async function main(): Promise<void> {
  const configPath = process.argv[2];
  if (!configPath) throw new Error('usage: api-proxy CONFIG.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as ApiProxyConfig;
  const log = createLogger('api-proxy');
  const proxies = new Map(config.sites.map((s) => [s.name, new SiteProxy(s)]));
  for (const p of proxies.values()) await p.listen();

  const report = () =>
    Object.fromEntries([...proxies].map(([name, p]) => [name, { faults: p.faults, counters: p.counters }]));
  const app = express();
  app.use(express.json({ limit: '4kb' }));
  app.get('/healthz', (_req, res) => {
    res.json({ ok: true, sites: [...proxies.keys()] });
  });
  app.get('/v1/faults', (_req, res) => {
    res.json(report());
  });
  app.put('/v1/faults/:site', (req: Request<{ site: string }>, res: Response) => {
    const proxy = proxies.get(req.params.site);
    if (!proxy) {
      res.status(404).json({ error: `no site ${req.params.site}; sites: ${[...proxies.keys()].join(', ')}` });
      return;
    }
    const errors = faultErrors(req.body);
    if (errors.length > 0) {
      res.status(400).json({ error: 'invalid faults; nothing changed', details: errors });
      return;
    }
    proxy.setFaults(req.body as Partial<ApiFaults>);
    log.info({ site: req.params.site, faults: proxy.faults }, 'faults set');
    res.json(report());
  });
  app.delete('/v1/faults', (_req, res) => {
    for (const p of proxies.values()) p.setFaults({});
    log.info('faults lifted');
    res.json(report());
  });
  const server = app.listen(config.adminPort, '127.0.0.1');
  log.info(
    { adminPort: config.adminPort, sites: config.sites.map((s) => [s.name, s.listenPort]) },
    'api proxy started',
  );

  const stop = (signal: string): void => {
    log.info({ signal }, 'stopping');
    server.close();
    void Promise.all([...proxies.values()].map((p) => p.close())).then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`api-proxy: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
