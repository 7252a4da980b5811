/**
 * `pivot config ...`: contexts for several installations (cli/contexts.ts), as `kubectl config`.
 * - `config get-contexts [-o]`, `config current-context`;
 * - `config set-context <name> --url URL [--token-file FILE | --token-env VAR] [--ca-file FILE]`
 *   (adds or updates);
 * - `config use-context <name>`, `config delete-context <name>`.
 * `--context NAME` (or PIVOT_CONTEXT) picks one for a single command.
 */
import type { Command } from 'commander';
import { cliConfigPath, findContext, loadCliConfig, saveCliConfig, type CliContext } from './contexts.ts';
import { CliUsageError, EXIT, formatTable, printData, runCommand } from './output.ts';

export function registerConfigCommands(program: Command): void {
  const config = program
    .command('config')
    .description('contexts: which Pivot installation the commands talk to, and with which token');

  config
    .command('get-contexts')
    .description('the contexts in the contexts file; * marks the current one')
    .option('--json', 'print them as JSON')
    .action((opts: { json?: boolean }) =>
      runCommand(() => {
        const path = cliConfigPath();
        const file = loadCliConfig(path);
        if (opts.json)
          printData({ file: path, currentContext: file.currentContext ?? null, contexts: file.contexts });
        else if (file.contexts.length === 0) process.stdout.write(`no contexts in ${path}\n`);
        else {
          const rows = file.contexts.map((c) => [
            c.name === file.currentContext ? '*' : '',
            c.name,
            c.url,
            c.tokenFile ? `file ${c.tokenFile}` : c.tokenEnv ? `env ${c.tokenEnv}` : '-',
          ]);
          process.stdout.write(`${formatTable(['current', 'name', 'url', 'token'], rows)}\n`);
        }
        return Promise.resolve(EXIT.ok);
      }),
    );

  config
    .command('current-context')
    .description('the name of the current context')
    .action(() =>
      runCommand(() => {
        const path = cliConfigPath();
        const current = loadCliConfig(path).currentContext;
        if (!current)
          throw new CliUsageError(
            `no current context in ${path}`,
            'pick one: `pivot config use-context NAME`',
          );
        process.stdout.write(`${current}\n`);
        return Promise.resolve(EXIT.ok);
      }),
    );

  config
    .command('set-context <name>')
    .description(
      'add or change a context (the token stays in its file or variable, never in the contexts file; --ca-file names a private CA to trust)',
    )
    .option('--url <url>', "the installation's API, e.g. https://pivot.dr.example")
    .option(
      '--token-file <file>',
      'the file that holds the token (read at every call: rotation needs no edit)',
    )
    .option('--token-env <var>', 'the environment variable that holds the token')
    // --ca-file FILE is pivot's global option (cli/program.ts): given here, the context keeps it.
    .action((name: string, opts: { url?: string; tokenFile?: string; tokenEnv?: string }, cmd: Command) =>
      runCommand(() => {
        if (opts.tokenFile && opts.tokenEnv) {
          throw new CliUsageError('--token-file and --token-env name the same thing: give one');
        }
        const path = cliConfigPath();
        const file = loadCliConfig(path);
        const old = file.contexts.find((c) => c.name === name);
        const url = opts.url ?? old?.url;
        if (!url) throw new CliUsageError(`context ${name} is new: --url is needed`);
        const token =
          opts.tokenFile || opts.tokenEnv
            ? {
                ...(opts.tokenFile ? { tokenFile: opts.tokenFile } : {}),
                ...(opts.tokenEnv ? { tokenEnv: opts.tokenEnv } : {}),
              }
            : {
                ...(old?.tokenFile ? { tokenFile: old.tokenFile } : {}),
                ...(old?.tokenEnv ? { tokenEnv: old.tokenEnv } : {}),
              };
        const caFile = cmd.optsWithGlobals<{ caFile?: string }>().caFile ?? old?.caFile;
        const context: CliContext = { name, url, ...token, ...(caFile ? { caFile } : {}) };
        const contexts = old
          ? file.contexts.map((c) => (c.name === name ? context : c))
          : [...file.contexts, context];
        const next = { ...file, contexts };
        saveCliConfig(path, next);
        process.stderr.write(`context ${name} ${old ? 'changed' : 'added'} in ${path}\n`);
        return Promise.resolve(EXIT.ok);
      }),
    );

  config
    .command('use-context <name>')
    .description('make a context the current one')
    .action((name: string) =>
      runCommand(() => {
        const path = cliConfigPath();
        const file = loadCliConfig(path);
        findContext(file, name, path);
        saveCliConfig(path, { ...file, currentContext: name });
        process.stderr.write(`switched to context ${name}\n`);
        return Promise.resolve(EXIT.ok);
      }),
    );

  config
    .command('delete-context <name>')
    .description('remove a context (its token file is left alone)')
    .action((name: string) =>
      runCommand(() => {
        const path = cliConfigPath();
        const file = loadCliConfig(path);
        findContext(file, name, path);
        const { currentContext, contexts } = file;
        saveCliConfig(path, {
          ...(currentContext && currentContext !== name ? { currentContext } : {}),
          contexts: contexts.filter((c) => c.name !== name),
        });
        process.stderr.write(`context ${name} deleted\n`);
        return Promise.resolve(EXIT.ok);
      }),
    );
}
