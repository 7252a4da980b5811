/**
 * The lab around a jest run: brought up once for the whole run (a lab already running is reused),
 * and stopped at the end only if this run started it.
 */
import { stepPrinter } from '../cli/output.ts';
import { Lab } from '../lab/lab.ts';

let startedByTests = false;

export async function setup(): Promise<void> {
  const lab = new Lab(stepPrinter());
  const before = await lab.status();
  process.stderr.write(
    `\nlab: ${before.state === 'running' ? 'reusing the running lab' : 'starting the lab'} (${lab.layout.dir})\n`,
  );
  const { seconds } = await lab.up();
  process.stderr.write(`lab: ready in ${seconds.toFixed(1)} s\n`);
  startedByTests = before.state === 'stopped';
}

export async function teardown(): Promise<void> {
  if (!startedByTests || process.env['PIVOT_KEEP_LAB']) return;
  const { leftovers } = await new Lab(stepPrinter()).down({ purge: false });
  if (leftovers.length > 0) throw new Error(`lab processes left after down: ${leftovers.join(', ')}`);
}
