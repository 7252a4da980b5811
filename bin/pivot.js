#!/usr/bin/env node
// The `pivot` CLI. Runs the TypeScript sources directly through tsx, so a checkout needs no build
// step: `npm ci` then `npx pivot ...`.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
