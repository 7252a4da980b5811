// Types of lab/tools/ensure.mjs (plain JavaScript: it runs before node_modules exists).
export function staleDependencies(root: string): string | undefined;
export function onPath(command: string, path?: string): boolean;
/** [command, the Debian package that provides it], installed by `ensure test` when missing. */
export const DEBIAN_TOOLS: ReadonlyArray<readonly [string, string]>;
