/**
 * A Pivot worker process: `worker/main.ts control --config FILE` runs the workflows and the
 * witness activities; `worker/main.ts site <name> --config FILE` runs one site's activities and
 * its site guard. `pivot lab up` starts one control worker and one worker per site; in production
 * each site worker runs in (or next to) its site with that site's credentials only.
 */
import { parseArgs } from 'node:util';
import { WorkflowNotFoundError } from '@temporalio/common';
import { Runtime } from '@temporalio/worker';
import { createLogger } from '../common/logging.ts';
import { connectConfiguredSite, identifyProcess } from '../common/k8s.ts';
import { findConfig, loadConfig } from '../config/load.ts';
import { isUnsafeSwitch, switchOff, UNSAFE_SWITCHES } from '../activities/unsafe.ts';
import {
  connectClient,
  drillInputs,
  planRequest,
  startOperations,
  type OperationRequest,
} from '../api/operations.ts';
import { gatherInputsFor } from '../planner/inputs.ts';
import { witnessFor, witnessRedis } from '../witness/connect.ts';
import { SiteGuard, runbookSource } from './site-guard.ts';
import { connectTemporal, createControlWorker, createSiteWorker } from './workers.ts';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      'guard-period-ms': { type: 'string' },
      'metrics-listen': { type: 'string' },
    },
  });
  const [role, siteName] = positionals;
  if (role !== 'control' && !(role === 'site' && siteName)) {
    process.stderr.write(
      'usage: worker/main.ts control|site <name> [--config FILE] [--metrics-listen HOST:PORT]\n',
    );
    process.exit(2);
  }
  const config = loadConfig(findConfig(values.config).file);
  // The chaos suite's test-only switch, honoured on the lab alone (docs/reliability.md).
  const unsafe = (process.env['PIVOT_LAB_UNSAFE'] ?? '').split(',').filter(Boolean);
  if (unsafe.length > 0) {
    if (!config.lab) throw new Error('PIVOT_LAB_UNSAFE is only honoured on the lab');
    for (const name of unsafe) {
      if (!isUnsafeSwitch(name)) {
        throw new Error(
          `PIVOT_LAB_UNSAFE: unknown switch ${name} (known: ${Object.keys(UNSAFE_SWITCHES).join(', ')})`,
        );
      }
      switchOff(name);
    }
  }
  if (values['metrics-listen']) {
    // The Temporal SDK's metrics and the workflows' own (metricMeter), on /metrics of this address.
    Runtime.install({
      telemetryOptions: {
        metrics: {
          prometheus: {
            bindAddress: values['metrics-listen'],
            countersTotalSuffix: true,
            unitSuffix: false,
            useSecondsForDurations: true,
            histogramBucketOverrides: Object.fromEntries(
              ['pivot_operation_duration_seconds', 'pivot_step_duration_seconds'].map((name) => [
                name,
                [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600],
              ]),
            ),
          },
        },
      },
    });
  }
  const component = role === 'control' ? 'worker-control' : `worker-${siteName}`;
  const log = createLogger(component);
  identifyProcess(component);
  const redis = witnessRedis(config);
  const witness = witnessFor(config, redis);
  const connection = await connectTemporal(config.temporal);
  let guard: SiteGuard | undefined;
  const closers: Array<() => Promise<void>> = [];
  let worker;
  if (role === 'control') {
    const temporal = await connectClient(config);
    closers.push(temporal.close);
    worker = await createControlWorker(connection, config.temporal.namespace, witness, {
      ...(config.lab ? { storageSimulatorUrl: config.lab.storageSimulatorUrl } : {}),
      operationStatus: async (holder) => {
        // `<workflow id>/<run id>`, or a workflow id alone (a lock taken before locks named runs).
        const slash = holder.lastIndexOf('/');
        const [id, runId] =
          slash < 0 ? [holder, undefined] : [holder.slice(0, slash), holder.slice(slash + 1)];
        try {
          const found = await temporal.client.workflow.getHandle(id, runId).describe();
          return {
            running: found.status.name === 'RUNNING',
            status: found.status.name,
            ...(found.closeTime ? { closedAt: found.closeTime } : {}),
          };
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) return undefined;
          throw err;
        }
      },
      planDrills: async (selection) => {
        const request: OperationRequest = {
          operation: 'drill',
          ...(selection.apps?.length ? { apps: selection.apps } : {}),
          ...(selection.site ? { site: selection.site } : {}),
          requestedBy: `schedule:${selection.schedule}`,
          reason: selection.reason,
          trigger: `schedule:${selection.schedule}`,
        };
        const inputs = await gatherInputsFor(config, {
          ...(selection.apps?.length ? { apps: selection.apps } : {}),
          ...(selection.site ? { site: selection.site } : {}),
        });
        const { plan, planned } = planRequest(request, inputs);
        const refused = plan.refused.map((r) => `${r.app}: ${r.reasons.join('; ')}`);
        // Named applications: one refused stops the whole run, as it does for the API.
        const go = selection.site || refused.length === 0 ? planned : [];
        return { drills: drillInputs(request, inputs, go), refused };
      },
      startAlertOperation: async (rule) => {
        const request: OperationRequest = {
          operation: rule.operation,
          ...(rule.apps ? { apps: rule.apps } : {}),
          ...(rule.site ? { site: rule.site } : {}),
          ...(rule.to ? { to: rule.to } : {}),
          requestedBy: `alert:${rule.name}`,
          reason: `alert rule ${rule.name} fired and held for ${rule.holdDownSeconds} s`,
          trigger: `alert:${rule.name}`,
        };
        const inputs = await gatherInputsFor(config, {
          ...(rule.apps ? { apps: rule.apps } : {}),
          ...(rule.site ? { site: rule.site } : {}),
        });
        const { plan, started } = await startOperations(temporal.client, request, inputs);
        log.info({ rule: rule.name, started, refused: plan.refused }, 'alert rule started operations');
        return {
          operations: started,
          ...(plan.refused.length > 0
            ? { detail: plan.refused.map((r) => `${r.app}: ${r.reasons.join('; ')}`).join(' | ') }
            : {}),
        };
      },
    });
  } else {
    const site = config.sites.find((s) => s.name === siteName);
    if (!site) {
      log.error({ site: siteName, known: config.sites.map((s) => s.name) }, 'unknown site');
      process.exit(2);
    }
    worker = await createSiteWorker(connection, config.temporal.namespace, site, witness);
    guard = new SiteGuard(
      connectConfiguredSite(site),
      witness,
      runbookSource(
        config.runbooks.dir,
        config.sites.map((s) => s.name),
        log,
      ),
      log,
    );
    guard.start(Number(values['guard-period-ms'] ?? 2000));
  }
  const stop = () => {
    log.info('shutting down');
    worker.shutdown();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  log.info({ role, site: siteName, temporal: config.temporal.address }, 'worker ready');
  await worker.run();
  await guard?.stop();
  await connection.close();
  for (const close of closers) await close();
  redis.disconnect();
}

await main();
