/**
 * From a path in the document (`spec.workloads[1].kind`) to where it is written in the file. The
 * parsed YAML nodes keep their offsets; a LineCounter turns offsets into lines and columns. A path
 * that does not exist in the file (a missing field) falls back to the nearest enclosing node that
 * does, so every finding gets a position.
 */
import { isAlias, isMap, isScalar, isSeq, type LineCounter, type Node, type ParsedNode } from 'yaml';
import { formatPath, type Anchor, type FieldPath, type RunbookError, type RunbookFinding } from './errors.ts';

export interface Position {
  line: number;
  column: number;
}

/** The nodes a path leads to: its value and, for a field of a mapping, its key. */
interface Walk {
  /** The deepest node the path reached. */
  node: Node | null;
  /** The key of the last field the walk went through, if the last step was into a mapping. */
  key: Node | null;
  /** Whether the whole path was found. */
  complete: boolean;
}

/**
 * A YAML `key:` with nothing after it parses to an empty null scalar placed after the colon,
 * possibly on the next line; the key is the better place to point at.
 */
export function isEmptyPlaceholder(node: Node | null): boolean {
  return (
    !node || (isScalar(node) && node.value === null && (node.source === '' || node.source === undefined))
  );
}

export class RunbookSourceMap {
  constructor(
    private readonly root: ParsedNode | null,
    private readonly lines: LineCounter,
  ) {}

  /** The 1-based line and column of an offset in the text. */
  position(offset: number): Position {
    const { line, col } = this.lines.linePos(Math.max(0, offset));
    return { line: Math.max(1, line), column: Math.max(1, col) };
  }

  /** Where to point for `path`, per the anchor (see Anchor). */
  locate(path: FieldPath, anchor: Anchor): Position {
    const target = anchor === 'parent' ? path.slice(0, -1) : path;
    const walk = this.walk(target);
    const node = anchor === 'key' && walk.complete && walk.key ? walk.key : walk.node;
    const at = isEmptyPlaceholder(node) && walk.key ? walk.key : node;
    return this.position(at?.range?.[0] ?? 0);
  }

  /** A finding as a located error of `file`. */
  toError(file: string, finding: RunbookFinding): RunbookError {
    const { line, column } = this.locate(finding.path, finding.anchor);
    return {
      file,
      line,
      column,
      path: formatPath(finding.path),
      rule: finding.rule,
      message: finding.message,
      ...(finding.expected !== undefined ? { expected: finding.expected } : {}),
      ...(finding.hint !== undefined ? { hint: finding.hint } : {}),
    };
  }

  private walk(path: FieldPath): Walk {
    let node: Node | null = this.root;
    let key: Node | null = null;
    for (const segment of path) {
      // Through an alias the path continues in the anchored node, but the alias is where the
      // author wrote this value: stop there.
      if (!node || isAlias(node)) return { node, key, complete: false };
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
        if (!pair) return { node, key, complete: false };
        key = pair.key as Node;
        node = (pair.value as Node | null) ?? null;
      } else if (isSeq(node)) {
        const item =
          typeof segment === 'number' ? (node.items[segment] as Node | null | undefined) : undefined;
        if (item === undefined) return { node, key, complete: false };
        key = null;
        node = item;
      } else {
        return { node, key, complete: false };
      }
    }
    return { node, key, complete: true };
  }
}
