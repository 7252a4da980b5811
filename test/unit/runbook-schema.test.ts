/**
 * The JSON Schema editors use: the committed runbooks/runbook.schema.json must be exactly what
 * `pivot runbook schema` prints, and its closed sets must be those of runbook/types.ts.
 */
import { readFileSync } from 'node:fs';
import { RUNBOOK_SCHEMA, type JsonSchema } from '../../runbook/schema.ts';
import { HOOK_PHASES, OPERATIONS, REPLICATION_PROVIDERS, WORKLOAD_KINDS } from '../../runbook/types.ts';

const committed = readFileSync(new URL('../../runbooks/runbook.schema.json', import.meta.url), 'utf8');

/** The schema of `path`, following `properties` and `items`. */
function at(schema: JsonSchema, ...path: string[]): JsonSchema {
  return path.reduce<JsonSchema>((s, key) => {
    if (key === '[]') return s.items as JsonSchema;
    return (s.properties as Record<string, JsonSchema>)[key]!;
  }, schema);
}

describe('runbook JSON Schema', () => {
  it('is committed as `pivot runbook schema` prints it (regenerate: npx pivot runbook schema > runbooks/runbook.schema.json)', () => {
    expect(committed).toBe(`${JSON.stringify(RUNBOOK_SCHEMA, null, 2)}\n`);
  });

  it('takes its closed sets from runbook/types.ts', () => {
    expect(at(RUNBOOK_SCHEMA, 'spec', 'workloads', '[]', 'kind').enum).toEqual(WORKLOAD_KINDS);
    expect(at(RUNBOOK_SCHEMA, 'spec', 'hooks', '[]', 'phase').enum).toEqual(HOOK_PHASES);
    expect(at(RUNBOOK_SCHEMA, 'spec', 'volumes', '[]', 'replication', 'provider').enum).toEqual(
      REPLICATION_PROVIDERS,
    );
    expect(Object.keys(at(RUNBOOK_SCHEMA, 'spec', 'approval').properties as object)).toEqual(OPERATIONS);
  });

  it('closes every object, so that a misspelt field is an error', () => {
    const open: string[] = [];
    const visit = (s: unknown, where: string): void => {
      if (typeof s !== 'object' || s === null) return;
      const schema = s as JsonSchema;
      if (schema.properties && schema.additionalProperties !== false && !schema.allOf) open.push(where);
      for (const [key, value] of Object.entries(schema)) {
        if (Array.isArray(value)) value.forEach((v, i) => visit(v, `${where}/${key}/${i}`));
        else if (key === 'properties') {
          for (const [name, p] of Object.entries(value as object)) visit(p, `${where}/${name}`);
        } else visit(value, `${where}/${key}`);
      }
    };
    visit(RUNBOOK_SCHEMA, '#');
    // `if` branches only select a form; the objects they select are closed in their `then`.
    expect(open.filter((w) => !w.includes('/if'))).toEqual([]);
  });

  it('documents every field', () => {
    const undocumented: string[] = [];
    const visit = (s: JsonSchema, where: string): void => {
      for (const [name, p] of Object.entries((s.properties ?? {}) as Record<string, JsonSchema>)) {
        if (!where.includes('/if') && typeof p.description !== 'string')
          undocumented.push(`${where}.${name}`);
        visit(p, `${where}.${name}`);
        if (p.items) visit(p.items as JsonSchema, `${where}.${name}[]`);
      }
      for (const [i, branch] of ((s.allOf ?? []) as JsonSchema[]).entries()) {
        visit(branch.then as JsonSchema, `${where}/allOf/${i}`);
      }
    };
    visit(RUNBOOK_SCHEMA, '');
    expect(undocumented).toEqual([]);
  });
});
