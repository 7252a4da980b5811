/**
 * Records a workflow's history from the lab's Temporal as a replay fixture:
 *   node --import tsx test/record-history.ts WORKFLOW_ID[:RUN_ID] NAME
 * (a run id picks one of the runs that shared an application's workflow id) writes test/unit/histories/NAME.binpb (binary protobuf, as the server sent it).
 */
import { Client, Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab } from '../lab/lab.ts';
import { REPO_ROOT } from '../lab/layout.ts';

const [target, name] = process.argv.slice(2);
if (!target || !name) throw new Error('usage: record-history.ts WORKFLOW_ID[:RUN_ID] NAME');
// A run id is a UUID after the last ':' (workflow ids may contain ':', e.g. pivot-drill:<app>).
const withRun = /^(.*):([0-9a-f]{8}-[0-9a-f-]{27})$/.exec(target);
const [workflowId, runId] = withRun ? [withRun[1]!, withRun[2]] : [target, undefined];
const status = await new Lab({ step: () => undefined }).status();
const connection = await Connection.connect({ address: status.temporal.address });
const history = await new Client({ connection, namespace: status.temporal.namespace }).workflow
  .getHandle(workflowId, runId)
  .fetchHistory();
const file = join(REPO_ROOT, 'test', 'unit', 'histories', `${name}.binpb`);
writeFileSync(file, proto.temporal.api.history.v1.History.encode(history).finish());
process.stdout.write(`${file}: ${history.events?.length ?? 0} events\n`);
await connection.close();
