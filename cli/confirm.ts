/**
 * Confirmation before a command that changes production (an operation, an abort, a skip, deleting a
 * schedule): on a terminal it shows what would happen and asks; anywhere else it needs `--yes`, so
 * that a pasted command or a script never moves a datacenter by accident.
 */
import { createInterface } from 'node:readline/promises';
import { CliUsageError } from './output.ts';

export interface Confirmation {
  /** What is asked, as a question without its mark: "fail over 12 applications from dc-a to dc-b". */
  question: string;
  /**
   * What the person should see first (the plan's summary), fetched only when someone will read it;
   * `false` when there is nothing to confirm (the summary said why): the answer is then no.
   */
  summary?: () => Promise<string | false>;
}

/** True to go on. Throws a usage error when no one can be asked and `--yes` was not given. */
export async function confirmed(c: Confirmation, yes: boolean | undefined): Promise<boolean> {
  if (yes) return true;
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new CliUsageError(
      `${c.question}: this needs a confirmation, and no terminal is here to ask`,
      'add --yes to confirm (scripts and pipelines), or run it on a terminal to see the plan and answer',
    );
  }
  const summary = c.summary ? await c.summary() : '';
  if (summary === false) return false;
  if (summary) process.stderr.write(`${summary}\n\n`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${c.question}? [y/N] `);
    const yesAnswer = /^\s*y(es)?\s*$/i.test(answer);
    if (!yesAnswer) process.stderr.write('not confirmed: nothing was done\n');
    return yesAnswer;
  } finally {
    rl.close();
  }
}
