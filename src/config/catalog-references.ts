import { existsSync } from 'node:fs';
import { catalogFile, createCatalog } from '../models/catalog.ts';
import { compileSchema } from '../models/compiled.ts';
import type { CatalogJson, CatalogsJson, ModelJson } from '../models/config.ts';
import { isRegistry } from '../models/config.ts';
import { didYouMean } from './diagnostics.ts';
import { pointerOf } from './source.ts';
import type { Segment } from './source.ts';

export interface CatalogProblem {
  pointer: string;
  message: string;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

interface FoundModel {
  segments: Segment[];
  model?: ModelJson;
  topic?: string;
  /** Something wrong with the entry itself, found on the way. */
  problem?: string;
}

/** Every model of the bindings, with where it is written and the topic it is for (kafka topics). */
function modelsOf(bindings: Record<string, unknown>): FoundModel[] {
  const found: FoundModel[] = [];
  for (const [name, binding] of Object.entries(bindings)) {
    if (!isObject(binding) || !isObject(binding['options'])) continue;
    const settings = binding['options'];
    if (binding['type'] === 'kafka' && Array.isArray(settings['topics'])) {
      (settings['topics'] as unknown[]).forEach((topic, index) => {
        if (!isObject(topic)) return;
        if (binding['kind'] !== 'cache_server' && 'transforms' in topic)
          found.push({
            segments: ['bindings', name, 'options', 'topics', index, 'transforms'],
            problem: 'transforms apply when records are ingested: only on a kafka cache_server',
          });
        for (const part of ['key', 'value'] as const) {
          const model = topic[part];
          if (isObject(model))
            found.push({
              segments: ['bindings', name, 'options', 'topics', index, part],
              model: model as unknown as ModelJson,
              topic: String(topic['name']),
            });
        }
      });
    }
    if (binding['type'] === 'http' && Array.isArray(settings['requests'])) {
      (settings['requests'] as unknown[]).forEach((request, index) => {
        if (isObject(request) && isObject(request['content']))
          found.push({
            segments: ['bindings', name, 'options', 'requests', index, 'content'],
            model: request['content'] as unknown as ModelJson,
          });
      });
    }
  }
  return found;
}

const GLOB = /[*?]/;

/**
 * What the schema cannot say about catalogs and the models naming them: a model names a catalog
 * that exists; a protobuf model names its message type; `strategy: encoded` is for registries,
 * whose ids values carry; a filesystem catalog's files exist; and a schema an inline or filesystem
 * catalog holds compiles for every model that uses it. Runs on a config that passed its schema.
 * `configFile` is where relative filesystem paths start; without it files are not looked at.
 */
export function checkCatalogs(
  data: Record<string, unknown>,
  configFile: string | undefined,
): CatalogProblem[] {
  const problems: CatalogProblem[] = [];
  const catalogs = (isObject(data['catalogs']) ? data['catalogs'] : {}) as CatalogsJson;
  const names = Object.keys(catalogs);
  const readable = new Set<string>();
  for (const [name, catalog] of Object.entries(catalogs)) {
    if (catalog.type !== 'filesystem' || configFile === undefined) {
      readable.add(name);
      continue;
    }
    let ok = true;
    for (const [subject, entry] of Object.entries(catalog.options?.subjects ?? {})) {
      const file = catalogFile(entry.path ?? '', configFile);
      if (!existsSync(file)) {
        ok = false;
        problems.push({
          pointer: pointerOf(['catalogs', name, 'options', 'subjects', subject, 'path']),
          message: `no file at ${file}`,
        });
      }
    }
    if (ok) readable.add(name);
  }
  const bindings = isObject(data['bindings']) ? data['bindings'] : {};
  for (const { segments, model, topic, problem } of modelsOf(bindings)) {
    if (problem !== undefined) problems.push({ pointer: pointerOf(segments), message: problem });
    if (model === undefined) continue;
    for (const [name, refs] of Object.entries(model.catalog)) {
      const at = [...segments, 'catalog', name];
      const catalog: CatalogJson | undefined = catalogs[name];
      if (catalog === undefined) {
        problems.push({
          pointer: pointerOf(at),
          message: `no catalog named "${name}"${didYouMean(name, names)}`,
        });
        continue;
      }
      refs.forEach((ref, index) => {
        const where = pointerOf([...at, index]);
        if (model.model === 'protobuf' && ref.record === undefined) {
          problems.push({ pointer: where, message: 'a protobuf model names its message type in `record`' });
          return;
        }
        if (ref.strategy === 'encoded' && !isRegistry(catalog.type)) {
          problems.push({
            pointer: where,
            message: `strategy encoded reads the schema id values carry: catalog "${name}" is not a schema registry`,
          });
          return;
        }
        if (isRegistry(catalog.type) || !readable.has(name)) return;
        const subject =
          ref.subject ??
          (ref.strategy === 'topic' && topic !== undefined ? `${topic}-${segments.at(-1)}` : undefined);
        if (ref.strategy === 'topic' && topic !== undefined && GLOB.test(topic)) return;
        let local;
        try {
          local = createCatalog(name, catalog, configFile).local;
        } catch (error) {
          problems.push({ pointer: pointerOf(['catalogs', name]), message: (error as Error).message });
          return;
        }
        const schema =
          ref.id !== undefined
            ? [...(local?.values() ?? [])].find((s) => s.id === ref.id)
            : subject === undefined
              ? undefined
              : local?.get(subject);
        if (schema === undefined) {
          const known = [...(local?.keys() ?? [])];
          problems.push({
            pointer: where,
            message:
              ref.id !== undefined
                ? `catalog "${name}" has no schema with id ${ref.id}`
                : `catalog "${name}" has no subject "${subject ?? ''}"${didYouMean(subject ?? '', known)}`,
          });
          return;
        }
        try {
          compileSchema(model.model, schema.text, `${name}/${schema.subject}`, ref.record);
        } catch (error) {
          problems.push({ pointer: where, message: (error as Error).message });
        }
      });
    }
  }
  return problems;
}
