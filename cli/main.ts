/** `pivot`: the command line for on-call humans and scripts (the tree: cli/program.ts). */
import { CommanderError } from 'commander';
import { EXIT } from './output.ts';
import { buildProgram } from './program.ts';

// `pivot status | head`: a reader that stops early is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    throw err;
  }
}
