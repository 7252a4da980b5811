/**
 * The dependency graph of a set of runbooks (`priority.dependsOn`): every name must be a runbook
 * of the set, a dependency must not move after the runbook that needs it (a later tier), and the
 * graph must have no cycle, or a site-wide operation could never start. Pure: works on names and
 * indexes, the validator puts the results at the dependsOn entries in the files.
 */

export interface DependencyNode {
  name: string;
  tier: number;
  dependsOn: readonly string[];
}

/** A problem of one dependsOn entry: `dependsOn[entry]` of `nodes[node]`. */
export type DependencyProblem =
  | { kind: 'unknown'; node: number; entry: number; name: string }
  | { kind: 'later-tier'; node: number; entry: number; name: string; tier: number }
  /** `cycle` starts and ends with the name of `nodes[node]`. */
  | { kind: 'cycle'; node: number; entry: number; cycle: string[] };

/**
 * Strongly connected components (Tarjan), iteratively so that a long chain of runbooks cannot
 * exhaust the stack. Returns the component index of each node.
 */
function components(edges: number[][]): number[] {
  const n = edges.length;
  const index = new Array<number>(n).fill(-1);
  const low = new Array<number>(n).fill(0);
  const component = new Array<number>(n).fill(-1);
  const onStack = new Array<boolean>(n).fill(false);
  const stack: number[] = [];
  let counter = 0;
  let count = 0;
  for (let root = 0; root < n; root++) {
    if (index[root] !== -1) continue;
    const work: Array<{ v: number; next: number }> = [{ v: root, next: 0 }];
    index[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = true;
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const { v } = frame;
      const out = edges[v]!;
      if (frame.next < out.length) {
        const w = out[frame.next++]!;
        if (index[w] === -1) {
          index[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = true;
          work.push({ v: w, next: 0 });
        } else if (onStack[w]) {
          low[v] = Math.min(low[v]!, index[w]!);
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low[parent.v] = Math.min(low[parent.v]!, low[v]!);
      if (low[v] === index[v]) {
        let w: number;
        do {
          w = stack.pop()!;
          onStack[w] = false;
          component[w] = count;
        } while (w !== v);
        count++;
      }
    }
  }
  return component;
}

/** The shortest cycle through `start` inside its component, as node indexes from start back to start. */
function cycleThrough(start: number, edges: number[][], component: number[]): number[] {
  const previous = new Map<number, number>();
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const v = queue[head]!;
    for (const w of edges[v]!) {
      if (component[w] !== component[start]) continue;
      if (w === start) {
        const back: number[] = [];
        for (let at = v; at !== start; at = previous.get(at)!) back.push(at);
        return [start, ...back.reverse(), start];
      }
      if (!previous.has(w) && w !== start) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

/**
 * Every problem of the graph. `alsoKnown` are names of runbooks in the set that could not be read
 * in full (they have errors of their own): a reference to one is not reported as unknown.
 */
export function checkDependencies(
  nodes: readonly DependencyNode[],
  alsoKnown: ReadonlySet<string> = new Set(),
): DependencyProblem[] {
  // A duplicated name is reported on its own; the first runbook with the name stands for it.
  const byName = new Map<string, number>();
  nodes.forEach((node, i) => {
    if (!byName.has(node.name)) byName.set(node.name, i);
  });

  const problems: DependencyProblem[] = [];
  const edges: number[][] = nodes.map(() => []);
  nodes.forEach((node, i) => {
    node.dependsOn.forEach((name, entry) => {
      const target = byName.get(name);
      if (target === undefined) {
        if (!alsoKnown.has(name)) problems.push({ kind: 'unknown', node: i, entry, name });
        return;
      }
      edges[i]!.push(target);
      const tier = nodes[target]!.tier;
      if (tier > node.tier) problems.push({ kind: 'later-tier', node: i, entry, name, tier });
    });
  });

  const component = components(edges);
  const reported = new Set<number>();
  nodes.forEach((node, i) => {
    const c = component[i]!;
    if (reported.has(c) || byName.get(node.name) !== i) return;
    const members = nodes.map((_, j) => j).filter((j) => component[j] === c);
    const selfLoop = edges[i]!.includes(i);
    if (members.length < 2 && !selfLoop) return;
    // Reported once, at the member whose name sorts first, so the same cycle reads the same way
    // whichever file lists it first.
    const start = members.reduce((a, b) => (nodes[b]!.name < nodes[a]!.name ? b : a));
    reported.add(c);
    const cycle = cycleThrough(start, edges, component);
    const next = nodes[cycle[1]!]!.name;
    problems.push({
      kind: 'cycle',
      node: start,
      entry: nodes[start]!.dependsOn.indexOf(next),
      cycle: cycle.map((j) => nodes[j]!.name),
    });
  });
  return problems;
}
