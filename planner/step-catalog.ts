/**
 * The step catalog: for each operation, its steps in order, with their ids, titles, where each
 * runs, which one is the point of no return, and which ones guard against two writers. The plan
 * (`pivot plan`) and the workflows both take their step lists from here, so that what on-call
 * reads before an operation is exactly what the operation runs (test/unit/step-catalog.test.ts).
 * Pure and deterministic: the workflows import it.
 */
import type { HookPhase, Operation, Runbook } from '../runbook/types.ts';

/**
 * What an operator may do about a step that failed after the point of no return:
 * - skippable: retry it, or skip it with a reason;
 * - never-skip: it keeps the application from having two writers, or records the fencing epoch
 *   that does: it can only be retried (or the operation closed as it stands);
 * - attest: a storage fence; the only way past it is a second person's attestation that the old
 *   primary was fenced by hand, recorded in the report and the audit trail.
 */
export const STEP_GUARDS = ['skippable', 'never-skip', 'attest'] as const;
export type StepGuard = (typeof STEP_GUARDS)[number];

export interface CatalogStep {
  id: string;
  title: string;
  /** Where it runs: a site name, or "control" (the workflow, the witness). */
  site: string;
  guard: StepGuard;
  /** The first action that cannot be undone: before it a failure rolls back, after it Pivot never does. */
  pointOfNoReturn?: true;
}

export interface CatalogInput {
  runbook: Runbook;
  from: string;
  to: string;
  /** The operation waits for an approval (the runbook's policy, or an RPO beyond its objective). */
  approval: boolean;
}

const step = (id: string, title: string, site: string, guard: StepGuard = 'skippable'): CatalogStep => ({
  id,
  title,
  site,
  guard,
});

const PONR = { pointOfNoReturn: true } as const;

function hooks(runbook: Runbook, phase: HookPhase, site: string): CatalogStep[] {
  return runbook.spec.hooks.some((h) => h.phase === phase)
    ? [step(`hooks-${phase}`, `run the ${phase} hooks`, site)]
    : [];
}

/** The steps that bring the application up on `to`, after its volumes are primary there. */
function bringUp(runbook: Runbook, to: string): CatalogStep[] {
  return [
    step('rebind-claims', `bind the replica volumes to their claims on ${to}`, to),
    step('scale-up-target', `start the workloads on ${to} in start order and wait until Ready`, to),
    ...hooks(runbook, 'post-promote', to),
    ...(runbook.spec.traffic.length > 0 ? [step('repoint-traffic', `repoint traffic to ${to}`, to)] : []),
    step('verify', 'run the health checks', to),
  ];
}

/** The steps of `operation`, in the order it runs them. */
export function operationSteps(operation: Operation, input: CatalogInput): CatalogStep[] {
  const { runbook, from, to } = input;
  const preflight = step('preflight', 'preflight checks', 'control');
  // A failover always has the step: the expected loss, known only when it runs, may need an approval
  // that the policy does not ask for (the step then passes at once when neither does).
  const approval =
    input.approval || operation === 'failover'
      ? [step('approval', `wait for approval of the ${operation}`, 'control')]
      : [];
  switch (operation) {
    case 'switchover':
    case 'failback':
      return [
        preflight,
        ...approval,
        ...hooks(runbook, 'pre-fence', from),
        step(
          'quiesce-source',
          `scale the workloads on ${from} to 0 (reverse start order) and wait until their pods are gone`,
          from,
          'never-skip',
        ),
        step('demote-source', `demote the volumes on ${from}`, from, 'never-skip'),
        step('final-sync', `wait until ${to} has every write made before the quiesce`, to, 'never-skip'),
        { ...step('promote-target', `promote the volumes on ${to}`, to, 'never-skip'), ...PONR },
        ...bringUp(runbook, to),
        step(
          'record-active-site',
          `record ${to} as the active site and advance the fencing epoch, in the witness and on both sites`,
          'control',
          'never-skip',
        ),
      ];
    case 'failover':
      return [
        preflight,
        ...approval,
        {
          ...step(
            'fence-witness',
            `advance the fencing epoch and mark ${from} fenced in the witness`,
            'control',
            'never-skip',
          ),
          ...PONR,
        },
        step(
          'fence-storage',
          `fence ${runbook.metadata.name} alone on ${from} (stop it, demote its volumes) if ${from} answers; else fence ${from}'s client networks at the storage`,
          to,
          'attest',
        ),
        step('quiesce-source', `best effort: scale the workloads on ${from} to 0`, from),
        step('promote-target', `force-promote the volumes on ${to}`, to, 'never-skip'),
        ...bringUp(runbook, to),
        ...hooks(runbook, 'post-failover', to),
        step(
          'record-active-site',
          `record ${to} as the active site, in the witness and on both sites`,
          'control',
          'never-skip',
        ),
      ];
    case 'reprotect':
      return [
        preflight,
        ...approval,
        {
          ...step(
            'keep-old-primary-down',
            `make sure the workloads on ${to} (the old primary) stay at 0 and get no traffic`,
            to,
            'never-skip',
          ),
          ...PONR,
        },
        step(
          'demote-old-primary',
          `demote the old primary's volumes on ${to} and resync them from ${from}`,
          to,
          'never-skip',
        ),
        step('wait-resync', 'wait until the replicas are resynced and replicating', to, 'never-skip'),
        step('unfence', `lift the storage fence and the witness fence of ${to}`, from),
      ];
    case 'drill': {
      const drillNs = `${runbook.spec.namespaces[0] ?? 'default'}-drill`.slice(0, 63);
      return [
        // A drill changes nothing in production: it waits for nobody.
        step('preflight', 'check both sites and read what the drill copies (production is only read)', to),
        step('isolate', `create the isolated namespace ${drillNs} on ${to}`, to),
        step('clone-replicas', `snapshot the replicas on ${to} and clone them into ${drillNs}`, to),
        step('start-workloads', `start copies of the workloads in ${drillNs}, in start order`, to),
        ...hooks(runbook, 'post-promote', to),
        step('verify', 'run the health checks on the drill copy', to),
        step('cleanup', `delete ${drillNs} and the snapshots, always`, to),
      ];
    }
  }
}

/** The id of the operation's point of no return (undefined for a drill, which has none). */
export function pointOfNoReturnStep(steps: CatalogStep[]): string | undefined {
  return steps.find((s) => s.pointOfNoReturn)?.id;
}
