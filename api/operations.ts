/**
 * The one place that turns a request into operations, for the API and the CLI alike: plan first
 * (a refused plan starts nothing), then start each application's workflow under its own id
 * (`pivot-<app>`) with USE_EXISTING, so that a duplicate trigger gets the running operation back;
 * read an operation's report; send it a decision.
 */
import {
  Client,
  Connection,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { CONTROL_TASK_QUEUE } from '../common/task-queues.ts';
import { DEFAULT_CONCURRENCY } from './contract.ts';
import { fenceFor } from '../config/fence.ts';
import { temporalConnectionOptions } from '../common/temporal-connection.ts';
import type { PivotConfig } from '../config/types.ts';
import { SelectionError, type Inputs } from '../planner/inputs.ts';
import { buildPlan, type AppPlan, type Plan } from '../planner/plan.ts';
import type { DecisionRequest, OperationInput } from '../workflows/engine.ts';
import { sha256Hex } from '../common/digest.ts';
import { PIVOT_VERSION } from '../common/version.ts';
import type { DrillInput } from '../workflows/drill.ts';
import type { SwitchoverDrillInput } from '../workflows/switchover-drill.ts';
import { drillWorkflowId, operationWorkflowId, siteOperationWorkflowId } from '../workflows/ids.ts';
import type { OperationReport } from '../workflows/progress.ts';
import type { SiteOperationInput, SiteOperationReport } from '../workflows/site.ts';

export const APP_OPERATIONS = ['switchover', 'failover', 'reprotect', 'failback'] as const;
/** Every operation a request may ask for: the four that move an application, and the drill. */
export const REQUESTABLE = [...APP_OPERATIONS, 'drill'] as const;
export type AppOperation = (typeof REQUESTABLE)[number];
export const DECISIONS = ['approve', 'abort', 'retry', 'skip'] as const;
export type DecisionAction = (typeof DECISIONS)[number];

export interface OperationRequest {
  operation: AppOperation;
  apps?: string[];
  site?: string;
  to?: string;
  requestedBy: string;
  reason: string;
  /** cli, api, alert:<rule>, schedule... */
  trigger: string;
  concurrency?: number;
  /** Drills: on clones (default), or a real switchover and failback. */
  mode?: 'clone' | 'switchover';
}

export interface StartedOperation {
  workflowId: string;
  runId: string;
  /** The workflow type that runs (a duplicate trigger may find another operation running). */
  type: string;
  app?: string;
  site?: string;
  from: string;
  to: string;
  /** An operation of this application was already running: the request attached to it. */
  attached: boolean;
}

export interface StartResult {
  plan: Plan;
  started: StartedOperation[];
}

export async function connectClient(
  config: PivotConfig,
): Promise<{ client: Client; close: () => Promise<void> }> {
  const connection = await Connection.connect(temporalConnectionOptions(config.temporal));
  return {
    client: new Client({ connection, namespace: config.temporal.namespace }),
    close: () => connection.close(),
  };
}

/** The plan of a request; the applications it would move (those of the site, for a site request). */
export function planRequest(request: OperationRequest, inputs: Inputs): { plan: Plan; planned: AppPlan[] } {
  const { operation, site } = request;
  if (request.apps?.length && site) {
    throw new SelectionError(
      'name applications or a site, not both',
      `e.g. \`pivot ${operation} --site dc-a\``,
    );
  }
  if (!request.apps?.length && !site) {
    throw new SelectionError(`${operation} of what?`, 'name applications, or a site');
  }
  const plan = buildPlan(
    { operation, ...(request.to ? { to: request.to } : {}) },
    inputs.runbooks,
    inputs.live,
    inputs.config,
  );
  const planned = plan.waves
    .flatMap((w) => w.apps)
    .filter((p) => !site || p.from === site || operation === 'reprotect' || operation === 'failback');
  return { plan, planned };
}

/**
 * The applications the witness names active on `site` that this request does not move: a fence on
 * `site`'s networks would cut them off from their storage too.
 */
function cutOffBy(site: string, planned: AppPlan[], inputs: Inputs): string[] {
  return Object.entries(inputs.live.witness ?? {})
    .filter(([app, w]) => w.activeSite === site && !planned.some((p) => p.app === app))
    .map(([app]) => app)
    .sort();
}

async function startOne(
  client: Client,
  type: string,
  workflowId: string,
  args: unknown[],
): Promise<{ handle: WorkflowHandle; runId: string; type: string; attached: boolean }> {
  const asked = Date.now();
  const handle = await client.workflow.start(type, {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId,
    workflowIdConflictPolicy: 'USE_EXISTING',
    args,
  });
  const desc = await handle.describe();
  return {
    handle,
    runId: desc.runId,
    type: desc.type,
    attached: desc.type !== type || desc.startTime.getTime() < asked - 1000,
  };
}

/**
 * Starts what a request plans (nothing if the plan refuses every application; for named
 * applications, nothing if it refuses any). A site switchover or failover is one site workflow.
 */
export async function startOperations(
  client: Client,
  request: OperationRequest,
  inputs: Inputs,
): Promise<StartResult> {
  // A trigger for an application (or site) with an operation under way attaches to it, whatever
  // the plan would say now: the running operation is the answer.
  const running = await runningOperations(client, request);
  if (running.length > 0) {
    return { plan: planRequest(request, inputs).plan, started: running };
  }
  const { config, runbooks } = inputs;
  const { plan, planned } = planRequest(request, inputs);
  if (planned.length === 0 || (plan.refused.length > 0 && !request.site)) return { plan, started: [] };
  const { operation, site } = request;
  if (operation === 'drill') {
    const started: StartedOperation[] = [];
    for (const input of drillInputs(request, inputs, planned)) {
      const app = input.runbook.metadata.name;
      const workflowId = drillWorkflowId(app);
      const s =
        request.mode === 'switchover'
          ? await startOne(client, 'switchoverDrill', workflowId, [
              {
                switchover: {
                  runbook: input.runbook,
                  from: input.active,
                  to: input.site,
                  requestedBy: request.requestedBy,
                  reason: request.reason,
                  trigger: request.trigger,
                  storageClassMap: config.storageClassMap,
                },
                approvalRequired: (config.drills?.switchoverApproval ?? 'required') === 'required',
                twoPersonRule: config.api.twoPersonRule ?? false,
                versions: input.versions,
                retentionDays: input.retentionDays,
              } satisfies SwitchoverDrillInput,
            ])
          : await startOne(client, 'drill', workflowId, [input]);
      started.push({
        workflowId,
        runId: s.runId,
        type: s.type,
        app,
        from: input.active,
        to: input.site,
        attached: s.attached,
      });
    }
    return { plan, started };
  }
  if (site && (operation === 'switchover' || operation === 'failover')) {
    const to = planned[0]!.to;
    const input: Omit<SiteOperationInput, 'operation'> = {
      from: site,
      to,
      runbooks: runbooks.filter((r) => planned.some((p) => p.app === r.metadata.name)),
      concurrency: request.concurrency ?? DEFAULT_CONCURRENCY,
      requestedBy: request.requestedBy,
      reason: request.reason,
      storageClassMap: config.storageClassMap,
      fence: { ...fenceFor(config, site, to), cutsOff: cutOffBy(site, planned, inputs) },
      ...(config.api.twoPersonRule ? { twoPersonRule: true } : {}),
    };
    const workflowId = siteOperationWorkflowId(site);
    const s = await startOne(
      client,
      operation === 'switchover' ? 'siteSwitchover' : 'siteFailover',
      workflowId,
      [input],
    );
    return {
      plan,
      started: [{ workflowId, runId: s.runId, type: s.type, site, from: site, to, attached: s.attached }],
    };
  }
  const started: StartedOperation[] = [];
  for (const p of planned) {
    const runbook = runbooks.find((r) => r.metadata.name === p.app)!;
    const input: OperationInput = {
      runbook,
      from: p.from,
      to: p.to,
      requestedBy: request.requestedBy,
      reason: request.reason,
      trigger: request.trigger,
      storageClassMap: config.storageClassMap,
      fence: { ...fenceFor(config, p.from, p.to), cutsOff: cutOffBy(p.from, planned, inputs) },
      ...(config.api.twoPersonRule ? { twoPersonRule: true } : {}),
    };
    const workflowId = operationWorkflowId(p.app);
    const s = await startOne(client, operation, workflowId, [input]);
    started.push({
      workflowId,
      runId: s.runId,
      type: s.type,
      app: p.app,
      from: p.from,
      to: p.to,
      attached: s.attached,
    });
  }
  return { plan, started };
}

/**
 * The drills a request plans: one per application, on its standby (for a site, every application
 * active there), with the versions and retention the evidence records.
 */
export function drillInputs(request: OperationRequest, inputs: Inputs, planned?: AppPlan[]): DrillInput[] {
  const { config, runbooks } = inputs;
  return (planned ?? planRequest(request, inputs).planned).map((p) => {
    const runbook = runbooks.find((r) => r.metadata.name === p.app)!;
    return {
      runbook,
      active: p.from,
      site: p.to,
      requestedBy: request.requestedBy,
      reason: request.reason,
      trigger: request.trigger,
      versions: {
        pivot: PIVOT_VERSION,
        runbook: `sha256:${sha256Hex(JSON.stringify(runbook)).slice(0, 16)}`,
      },
      retentionDays: config.drills?.retentionDays ?? 400,
    };
  });
}

/** The operations under way for the request's applications (or site), as attached results. */
async function runningOperations(client: Client, request: OperationRequest): Promise<StartedOperation[]> {
  const idOf = request.operation === 'drill' ? drillWorkflowId : operationWorkflowId;
  const ids =
    request.site && request.operation !== 'drill'
      ? [{ workflowId: siteOperationWorkflowId(request.site), site: request.site }]
      : (request.apps ?? []).map((app) => ({ workflowId: idOf(app), app }));
  const found: StartedOperation[] = [];
  for (const id of ids) {
    try {
      const desc = await client.workflow.getHandle(id.workflowId).describe();
      if (desc.status.name !== 'RUNNING') continue;
      const input = await client.workflow
        .getHandle(id.workflowId)
        .query<{ from: string; to: string }>('progress');
      found.push({
        ...id,
        runId: desc.runId,
        type: desc.type,
        from: input.from,
        to: input.to,
        attached: true,
      });
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }
  return found;
}

export class NoSuchOperationError extends Error {
  constructor(readonly target: string) {
    super(`no operation ${target} is on record`);
    this.name = 'NoSuchOperationError';
  }
}

/** An operation refused a decision (its validator said why). */
export class DecisionRefusedError extends Error {
  constructor(
    readonly workflowId: string,
    readonly action: string,
    reason: string,
  ) {
    super(`${workflowId} refused the ${action}: ${reason}`);
    this.name = 'DecisionRefusedError';
  }
}

/** The workflow id an operator names: an application, `site:<site>`, `drill:<app>`, or a workflow id. */
export function workflowIdOf(target: string): string {
  if (target.startsWith('pivot-')) return target;
  if (target.startsWith('site:')) return siteOperationWorkflowId(target.slice(5));
  if (target.startsWith('drill:')) return drillWorkflowId(target.slice(6));
  return operationWorkflowId(target);
}

/** The progress of a running operation, or the report of the last one under this id. */
export async function readReport(
  client: Client,
  workflowId: string,
): Promise<{ running: boolean; report: OperationReport | SiteOperationReport }> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    const desc = await handle.describe();
    if (desc.status.name === 'RUNNING') {
      return { running: true, report: await handle.query<OperationReport>('progress') };
    }
    if (desc.status.name === 'COMPLETED') {
      return { running: false, report: (await handle.result()) as OperationReport };
    }
    // Failed, terminated, timed out or cancelled without a report of its own: its last progress.
    return { running: false, report: await handle.query<OperationReport>('progress') };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new NoSuchOperationError(workflowId);
    throw err;
  }
}

export async function decide(
  client: Client,
  workflowId: string,
  action: DecisionAction,
  request: DecisionRequest,
): Promise<OperationReport | SiteOperationReport> {
  try {
    return await client.workflow
      .getHandle(workflowId)
      .executeUpdate<OperationReport | SiteOperationReport, [DecisionRequest]>(action, { args: [request] });
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      // An Update finds no open workflow: say whether one ever ran under this id.
      const ended = await client.workflow
        .getHandle(workflowId)
        .describe()
        .catch(() => undefined);
      if (!ended) throw new NoSuchOperationError(workflowId);
      throw new DecisionRefusedError(
        workflowId,
        action,
        `no operation is running (the last one, ${ended.type}, ended ${ended.closeTime?.toISOString() ?? ''})`,
      );
    }
    if (err instanceof WorkflowUpdateFailedError) {
      throw new DecisionRefusedError(workflowId, action, err.cause?.message ?? err.message);
    }
    throw err;
  }
}
