/**
 * Workflow ids. One operation per application at a time, whoever triggers it: every operation of
 * an application runs under the same id, started with the conflict policy USE_EXISTING, so that a
 * second trigger attaches to the running operation instead of starting a rival (the witness lock
 * is the second line).
 */
export function operationWorkflowId(app: string): string {
  return `pivot-${app}`;
}

export function siteOperationWorkflowId(site: string): string {
  return `pivot-site-${site}`;
}

/** One drill per application at a time (a second trigger attaches); ':' cannot occur in an app name. */
export function drillWorkflowId(app: string): string {
  return `pivot-drill:${app}`;
}
