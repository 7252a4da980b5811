/** Jest global teardown of the `lab` project: stops the lab if this run started it. */
import { stepPrinter } from '../cli/output.ts';
import { Lab } from '../lab/lab.ts';

export default async function teardown(): Promise<void> {
  const started = (globalThis as { pivotLabStartedByTests?: boolean }).pivotLabStartedByTests;
  if (!started || process.env['PIVOT_KEEP_LAB']) return;
  const { leftovers } = await new Lab(stepPrinter()).down({ purge: false });
  if (leftovers.length > 0) throw new Error(`lab processes left after down: ${leftovers.join(', ')}`);
}
