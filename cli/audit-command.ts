/**
 * `pivot audit [--app A] [--since 24h] [--jsonl]`: what was asked of the API, by whom and from
 * where, and what came of it (GET /v1/audit). JSON lines go to a SIEM as they are.
 */
import type { Command } from 'commander';
import type { AuditRecord } from '../api/audit.ts';
import { PivotApi } from './api-client.ts';
import { EXIT, formatTable, printData, runCommand } from './output.ts';

export function formatAudit(records: AuditRecord[]): string {
  if (records.length === 0) return 'no audit record';
  return formatTable(
    ['time', 'phase', 'principal', 'from', 'action', 'status', 'reason or refusal'],
    records.map((r) => [
      r.at,
      r.phase,
      r.display ? `${r.display} (${r.principal ?? ''})` : (r.principal ?? '-'),
      r.address,
      r.action,
      r.status === undefined ? '' : String(r.status),
      r.status !== undefined && r.status >= 400 ? `${r.error ?? ''}: ${r.message ?? ''}` : (r.reason ?? ''),
    ]),
  );
}

export function registerAuditCommand(program: Command): void {
  program
    .command('audit')
    .description(
      'the audit log: every change asked of the API, before it acted and its result, refusals included',
    )
    .option('--app <name>', 'only the records about this application')
    .option('--since <when>', 'from this long ago ("24h") or this time (RFC 3339)', '24h')
    .option('--limit <n>', 'at most this many records', '1000')
    .option('--json', 'print them as JSON')
    .option('--jsonl', 'print them as JSON lines (one record a line, for a SIEM)')
    .action((opts: { app?: string; since: string; limit: string; json?: boolean; jsonl?: boolean }) =>
      runCommand(async () => {
        const { records } = await new PivotApi().audit({
          app: opts.app,
          since: opts.since,
          limit: opts.limit,
        });
        if (opts.jsonl) process.stdout.write(records.map((r) => `${JSON.stringify(r)}\n`).join(''));
        else if (opts.json) printData({ records });
        else process.stdout.write(`${formatAudit(records)}\n`);
        return EXIT.ok;
      }),
    );
}
