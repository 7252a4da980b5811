/**
 * Jest global setup of the `lab` project: brings the lab up once for the whole run (reusing a lab
 * that is already running) and records whether this run started it, so that teardown stops only
 * what the run itself started.
 */
import { stepPrinter } from '../cli/output.ts';
import { Lab } from '../lab/lab.ts';

export default async function setup(): Promise<void> {
  const lab = new Lab(stepPrinter());
  const before = await lab.status();
  process.stderr.write(
    `\nlab: ${before.state === 'running' ? 'reusing the running lab' : 'starting the lab'} (${lab.layout.dir})\n`,
  );
  const { seconds } = await lab.up();
  process.stderr.write(`lab: ready in ${seconds.toFixed(1)} s\n`);
  (globalThis as { pivotLabStartedByTests?: boolean }).pivotLabStartedByTests = before.state === 'stopped';
}
