#!/usr/bin/env node
// The image's entrypoint (copied to dist/entrypoint.js by the build): one image for every Pivot
// process, the first argument choosing which (docs/image.md). The rest of the arguments are the
// process's own, as if it had been started directly.
const PROCESSES = new Map([
  ['worker', './worker/main.js'], //  worker control|site <name> --config FILE
  ['api', './api/main.js'], //        api --config FILE
  ['pivot', './cli/main.js'], //      pivot <command> ...
]);

const USAGE = `usage: worker control|site <name> --config FILE [--metrics-listen HOST:PORT]
       api --config FILE
       pivot <command> ...   (pivot --help lists the commands)
`;

const chosen = PROCESSES.get(process.argv[2] ?? '');
if (chosen === undefined) {
  const asked = ['help', '--help', '-h'].includes(process.argv[2] ?? '');
  (asked ? process.stdout : process.stderr).write(USAGE);
  process.exit(asked ? 0 : 2);
}
// Drop the process's name: its own argument parsing reads process.argv from index 2.
process.argv.splice(2, 1);
await import(chosen);
