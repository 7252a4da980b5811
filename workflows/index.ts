/**
 * Every workflow Pivot runs. Deterministic code only: no Node built-ins, no I/O, activities
 * imported as types (lint enforces it). This file is the worker's `workflowsPath`.
 */
export { probeSites } from './probe-sites.ts';
export { switchover } from './switchover.ts';
