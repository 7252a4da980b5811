#!/usr/bin/env node
// Writes kubeconform's JSON schemas for every Kubernetes kind from Kubernetes' own OpenAPI document
// (api/openapi-spec/swagger.json in the k8s.io/kubernetes module), since kubeconform cannot
// download them here. Plain Node, no dependencies; lab/tools/provision.sh runs it (`kube-schemas`).
//
//   node lab/tools/kube-schemas.mjs SWAGGER_JSON OUT_DIR
//
// One file per group, version and kind, named as kubeconform's
// -schema-location 'OUT_DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json' asks for it: the kind in lower
// case, then `-<first label of the group>-<version>`, or `-<version>` alone for the core group
// (deployment-apps-v1.json, networkpolicy-networking-v1.json, service-v1.json). Each file stands
// alone: the definitions the kind reaches, under its own `definitions`.
//
// Strict, as the API server is with field validation: an object with properties takes no other
// field (`additionalProperties: false`). Quantities (`cpu: 1` or `cpu: 500m`) and int-or-string
// fields (`targetPort: 8080` or `http`) take what the API server decodes.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REF = '#/definitions/';
const intOrString = () => ({ oneOf: [{ type: 'string' }, { type: 'integer' }] });
const quantity = () => ({ oneOf: [{ type: 'string' }, { type: 'number' }] });
/** Definitions whose OpenAPI form (a plain string) is narrower than what the API server decodes. */
const REPLACED = {
  'io.k8s.apimachinery.pkg.util.intstr.IntOrString': intOrString,
  'io.k8s.apimachinery.pkg.api.resource.Quantity': quantity,
};

/** `-<first label of the group>-<version>`, or `-<version>` for the core group: kubeconform's KindSuffix. */
export function kindSuffix(group, version) {
  const apiVersion = group ? `${group}/${version}` : version;
  const [first, second] = apiVersion.split('/');
  return `-${first.split('.')[0].toLowerCase()}${second === undefined ? '' : `-${second.toLowerCase()}`}`;
}

export function schemaFileName({ group, version, kind }) {
  return `${kind.toLowerCase()}${kindSuffix(group, version)}.json`;
}

/**
 * One OpenAPI (Swagger 2) schema as JSON Schema draft 4: no descriptions, formats or x-kubernetes
 * extensions (none is validated); int-or-string widened; closed objects. Walks only schema
 * positions, so a property named `description` or `format` stays.
 */
export function convert(schema) {
  if (typeof schema !== 'object' || schema === null) return schema;
  if (schema.format === 'int-or-string') return intOrString();
  const out = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'description' || key === 'format' || key.startsWith('x-')) continue;
    if (key === 'properties') {
      out.properties = Object.fromEntries(Object.entries(value).map(([name, s]) => [name, convert(s)]));
    } else if (key === 'items' || (key === 'additionalProperties' && typeof value === 'object')) {
      out[key] = convert(value);
    } else if (key === 'allOf' || key === 'anyOf' || key === 'oneOf') {
      out[key] = value.map(convert);
    } else {
      out[key] = value;
    }
  }
  if (out.properties && !('additionalProperties' in out)) out.additionalProperties = false;
  return out;
}

/** The names of the definitions `schema` refers to, directly. */
function refsOf(schema, found = new Set()) {
  if (Array.isArray(schema)) for (const s of schema) refsOf(s, found);
  else if (typeof schema === 'object' && schema !== null) {
    for (const [key, value] of Object.entries(schema)) {
      if (key === '$ref' && typeof value === 'string' && value.startsWith(REF))
        found.add(value.slice(REF.length));
      else refsOf(value, found);
    }
  }
  return found;
}

/** Every kind's standalone schema, by file name. */
export function kindSchemas(swagger) {
  const definitions = Object.fromEntries(
    Object.entries(swagger.definitions).map(([name, s]) => [
      name,
      REPLACED[name] ? REPLACED[name]() : convert(s),
    ]),
  );
  const closure = (root) => {
    const seen = new Set([root]);
    const todo = [root];
    while (todo.length > 0) {
      const name = todo.pop();
      if (!definitions[name]) throw new Error(`${root} refers to ${name}, which is not defined`);
      for (const ref of refsOf(definitions[name]))
        if (!seen.has(ref)) {
          seen.add(ref);
          todo.push(ref);
        }
    }
    return [...seen].sort();
  };
  const files = new Map();
  for (const [name, s] of Object.entries(swagger.definitions)) {
    for (const gvk of s['x-kubernetes-group-version-kind'] ?? []) {
      const file = schemaFileName(gvk);
      const earlier = files.get(file);
      if (earlier && earlier.name !== name)
        throw new Error(`${file}: both ${earlier.name} and ${name} would be written to it`);
      files.set(file, {
        name,
        schema: {
          $schema: 'http://json-schema.org/draft-04/schema#',
          allOf: [{ $ref: `${REF}${name}` }],
          definitions: Object.fromEntries(closure(name).map((n) => [n, definitions[n]])),
        },
      });
    }
  }
  return files;
}

function main([swaggerPath, outDir]) {
  if (!swaggerPath || !outDir) {
    process.stderr.write('usage: node lab/tools/kube-schemas.mjs SWAGGER_JSON OUT_DIR\n');
    process.exit(2);
  }
  const swagger = JSON.parse(readFileSync(swaggerPath, 'utf8'));
  const files = kindSchemas(swagger);
  mkdirSync(outDir, { recursive: true });
  for (const [file, { schema }] of files) writeFileSync(join(outDir, file), `${JSON.stringify(schema)}\n`);
  process.stderr.write(`wrote ${files.size} schemas to ${outDir}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main(process.argv.slice(2));
