/**
 * Every workflow Pivot runs. Deterministic code only: no Node built-ins, no I/O, activities
 * imported as types (lint enforces it). This file is the worker's `workflowsPath`.
 */
export { probeSites } from './probe-sites.ts';
export { switchover, failback } from './switchover.ts';
export { failover } from './failover.ts';
export { reprotect } from './reprotect.ts';
export { siteSwitchover, siteFailover } from './site.ts';
export { alertTrigger } from './alert.ts';
export { drill, scheduledDrill } from './drill.ts';
export { switchoverDrill } from './switchover-drill.ts';
