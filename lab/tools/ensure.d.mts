// Types of lab/tools/ensure.mjs (plain JavaScript: it runs before node_modules exists).
export function staleDependencies(root: string): string | undefined;
export function onPath(command: string, path?: string): boolean;
