/**
 * Structured logging: one JSON object per line (pino), with the component that wrote it. Daemons
 * (the storage simulator, workers) log to their own file; the CLI prints human text instead and
 * uses this only for --verbose diagnostics.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(component: string, destination?: string): Logger {
  const level = process.env['PIVOT_LOG_LEVEL'] ?? 'info';
  return pino(
    { level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime },
    destination ? pino.destination({ dest: destination, sync: false, mkdir: true }) : pino.destination(2),
  );
}
