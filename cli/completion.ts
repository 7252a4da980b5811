/**
 * `pivot completion bash|zsh`: shell completion generated from the command tree itself, so it
 * never falls behind a new command or flag. It completes commands, subcommands, flags, the values
 * of `-o`, and application names (from the API, through the hidden `pivot __complete-apps`).
 */
import type { Command } from 'commander';
import { PivotApi } from './api-client.ts';

interface Node {
  path: string;
  words: string[];
  takesApps: boolean;
}

function walk(cmd: Command, path: string, out: Node[]): void {
  const visible = cmd.commands.filter((c) => !c.name().startsWith('__'));
  const flags = cmd.options.flatMap((o) => [o.short, o.long].filter((f): f is string => Boolean(f)));
  out.push({
    path,
    words: [...visible.map((c) => c.name()), ...flags, '--help'],
    takesApps: cmd.registeredArguments.some((a) => a.name().startsWith('app')),
  });
  for (const c of visible) walk(c, `${path} ${c.name()}`, out);
}

/** The bash completion script for `program` (zsh loads it through bashcompinit). */
export function bashCompletion(program: Command): string {
  const nodes: Node[] = [];
  walk(program, '', nodes);
  const name = program.name();
  const fn = `_${name}_complete`;
  const known = nodes
    .filter((n) => n.path)
    .map((n) => `"${n.path}"`)
    .join('|');
  const cases = nodes
    .map((n) => `    "${n.path}") words="${n.words.join(' ')}"; apps=${n.takesApps ? 1 : 0} ;;`)
    .join('\n');
  return `# ${name} completion for bash: source <(${name} completion bash)
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" path="" i w words="" apps=0
  case "$prev" in
    -o|--output) COMPREPLY=($(compgen -W "table json yaml" -- "$cur")); return ;;
    --context) COMPREPLY=($(compgen -W "$(${name} config get-contexts -o yaml 2>/dev/null | sed -n 's/^ *- *name: //p; s/^ *name: //p')" -- "$cur")); return ;;
  esac
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    case "$path $w" in
      ${known}) path="$path $w" ;;
    esac
  done
  case "$path" in
${cases}
  esac
  if [[ "$apps" == 1 && "$cur" != -* ]]; then
    words="$words $(${name} __complete-apps 2>/dev/null)"
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F ${fn} ${name}
`;
}

export function zshCompletion(program: Command): string {
  return `# ${program.name()} completion for zsh: source <(${program.name()} completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(program)}`;
}

export function registerCompletion(program: Command): void {
  program
    .command('completion <shell>')
    .description('print shell completion: bash or zsh (e.g. `source <(pivot completion bash)` in ~/.bashrc)')
    .action((shell: string) => {
      if (shell === 'bash') process.stdout.write(bashCompletion(program));
      else if (shell === 'zsh') process.stdout.write(zshCompletion(program));
      else {
        process.stderr.write(`error: no completion for ${shell}\n  next: use bash or zsh\n`);
        process.exitCode = 2;
      }
    });
  // Application names for the completion script: quiet, quick, and empty when the API is away.
  program.command('__complete-apps', { hidden: true }).action(async () => {
    try {
      const { apps } = await Promise.race([
        new PivotApi().apps(),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('slow')), 3000).unref()),
      ]);
      process.stdout.write(`${apps.map((a) => a.app).join(' ')}\n`);
    } catch {
      // nothing to offer
    }
  });
}
