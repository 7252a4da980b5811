/** Pivot's version, as package.json says: drill evidence records which Pivot produced it. */
import { readFileSync } from 'node:fs';

export const PIVOT_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
