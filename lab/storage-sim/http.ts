/**
 * The simulator's own HTTP API (loopback only): the data-plane report that tests and reports read
 * to measure RPO and detect split brain, and fault injection.
 *
 *   GET  /healthz
 *   GET  /v1/volumes            every volume: copies, roles, write sequences, lag, split brain
 *   POST /v1/volumes/:handle/acknowledge-split-brain
 *                               clears a volume's split-brain record once the harm was repaired
 *                               (an array's alarm acknowledged); the count moves to acknowledged
 *   GET  /v1/faults             current faults and replication timing
 *   PATCH /v1/faults            {promotionDelayMs?, failNextPromotions?, failPromotionsOnSite?, linkDown?,
 *                                partitioned?, clockSkewMs?: {site: ms}, replicationIntervalMs?,
 *                                syncDurationMs?}
 */
import express, { type Request, type Response } from 'express';
import type { Server } from 'node:http';
import { volumeReport, type SimState } from './model.ts';

export interface SimHttpDeps {
  state: SimState;
  /** Persist after a change made through the API. */
  changed: () => void;
}

const NON_NEGATIVE_INT_FIELDS = [
  'promotionDelayMs',
  'fenceDelayMs',
  'failNextPromotions',
  'replicationIntervalMs',
  'syncDurationMs',
] as const;

export function startHttp(
  { state, changed }: SimHttpDeps,
  port: number,
  host = '127.0.0.1',
): Promise<Server> {
  const app = express();
  app.use(express.json({ limit: '16kb' }));
  app.get('/healthz', (_req, res) => {
    res.json({ ok: true, sites: state.sites });
  });
  app.get('/v1/volumes', (_req, res) => {
    const now = Date.now();
    res.json({
      volumes: Object.values(state.volumes).map((v) => volumeReport(state, v, now)),
      fences: state.fences,
    });
  });
  const faults = (): Record<string, unknown> => ({
    partitioned: [],
    clockSkewMs: {},
    ...state.faults,
    ...state.timing,
  });
  app.post('/v1/volumes/:handle/acknowledge-split-brain', (req: Request, res: Response) => {
    const vol = state.volumes[String(req.params['handle'])];
    if (!vol) {
      res.status(404).json({ errors: [`no volume ${String(req.params['handle'])}`] });
      return;
    }
    vol.splitBrainAcknowledged = (vol.splitBrainAcknowledged ?? 0) + vol.splitBrain.periods;
    vol.splitBrain = { periods: 0 };
    changed();
    res.json(volumeReport(state, vol, Date.now()));
  });
  app.get('/v1/faults', (_req, res) => {
    res.json(faults());
  });
  app.patch('/v1/faults', (req: Request, res: Response) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const known = new Set<string>([
      ...NON_NEGATIVE_INT_FIELDS,
      'linkDown',
      'failPromotionsOnSite',
      'partitioned',
      'clockSkewMs',
    ]);
    const errors: string[] = Object.keys(body)
      .filter((k) => !known.has(k))
      .map((k) => `unknown field ${k}`);
    for (const k of NON_NEGATIVE_INT_FIELDS) {
      const v = body[k];
      if (v !== undefined && !(Number.isInteger(v) && (v as number) >= 0))
        errors.push(`${k} must be a non-negative integer`);
    }
    if (body['linkDown'] !== undefined && typeof body['linkDown'] !== 'boolean')
      errors.push('linkDown must be a boolean');
    const onSite = body['failPromotionsOnSite'];
    if (onSite !== undefined && (typeof onSite !== 'string' || (onSite !== '' && !(onSite in state.sites)))) {
      errors.push(`failPromotionsOnSite must be "" or one of ${Object.keys(state.sites).join(', ')}`);
    }
    const partitioned = body['partitioned'];
    if (
      partitioned !== undefined &&
      !(Array.isArray(partitioned) && partitioned.every((p) => typeof p === 'string' && p in state.sites))
    ) {
      errors.push(`partitioned must be a list of sites among ${Object.keys(state.sites).join(', ')}`);
    }
    const skew = body['clockSkewMs'];
    if (
      skew !== undefined &&
      !(
        typeof skew === 'object' &&
        skew !== null &&
        Object.entries(skew).every(([k, v]) => k in state.sites && Number.isInteger(v))
      )
    ) {
      errors.push(`clockSkewMs must map sites among ${Object.keys(state.sites).join(', ')} to whole ms`);
    }
    if (errors.length > 0) {
      res.status(400).json({ errors });
      return;
    }
    if (typeof body['promotionDelayMs'] === 'number')
      state.faults.promotionDelayMs = body['promotionDelayMs'];
    if (typeof body['fenceDelayMs'] === 'number') state.faults.fenceDelayMs = body['fenceDelayMs'];
    if (typeof body['failNextPromotions'] === 'number')
      state.faults.failNextPromotions = body['failNextPromotions'];
    if (typeof body['linkDown'] === 'boolean') state.faults.linkDown = body['linkDown'];
    if (typeof onSite === 'string') state.faults.failPromotionsOnSite = onSite;
    if (Array.isArray(partitioned)) state.faults.partitioned = [...(partitioned as string[])];
    if (skew !== undefined) state.faults.clockSkewMs = { ...(skew as Record<string, number>) };
    if (typeof body['replicationIntervalMs'] === 'number')
      state.timing.replicationIntervalMs = body['replicationIntervalMs'];
    if (typeof body['syncDurationMs'] === 'number') state.timing.syncDurationMs = body['syncDurationMs'];
    changed();
    res.json(faults());
  });
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, () => resolve(server));
    server.on('error', reject);
  });
}
