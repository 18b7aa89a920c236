import { didYouMean } from './diagnostics.ts';
import { showValue, type ShowValue } from './schema.ts';
import { pointerOf } from './source.ts';
import type { Segment } from './source.ts';

export interface ReferenceProblem {
  pointer: string;
  message: string;
}

interface Edge {
  to: string;
  segments: Segment[];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function exitsOf(name: string, binding: Record<string, unknown>): Edge[] {
  const edges: Edge[] = [];
  if (typeof binding['exit'] === 'string')
    edges.push({ to: binding['exit'], segments: ['bindings', name, 'exit'] });
  const routes = binding['routes'];
  if (Array.isArray(routes)) {
    routes.forEach((route: unknown, index) => {
      if (isObject(route) && typeof route['exit'] === 'string') {
        edges.push({ to: route['exit'], segments: ['bindings', name, 'routes', index, 'exit'] });
      }
    });
  }
  return edges;
}

/** Exits that name no binding, and exit chains that loop back on themselves. */
export function checkReferences(bindings: unknown, show: ShowValue = showValue): ReferenceProblem[] {
  if (!isObject(bindings)) return [];
  const names = Object.keys(bindings);
  const graph = new Map<string, Edge[]>();
  const problems: ReferenceProblem[] = [];
  for (const name of names) {
    const binding = bindings[name];
    const edges = isObject(binding) ? exitsOf(name, binding) : [];
    for (const edge of edges) {
      if (!Object.hasOwn(bindings, edge.to)) {
        const pointer = pointerOf(edge.segments);
        problems.push({
          pointer,
          message: `no binding named ${show(pointer, edge.to)}${didYouMean(edge.to, names)}`,
        });
      }
    }
    graph.set(
      name,
      edges.filter((e) => Object.hasOwn(bindings, e.to)),
    );
  }
  for (const cycle of findCycles(names, graph)) {
    problems.push({
      pointer: pointerOf(cycle.edge.segments),
      message: `exit cycle ${cycle.path.join(' -> ')}`,
    });
  }
  return problems;
}

/** One cycle per strongly connected component, starting at its first binding in file order. */
function findCycles(names: readonly string[], graph: Map<string, Edge[]>): { path: string[]; edge: Edge }[] {
  const order = new Map(names.map((n, i) => [n, i]));
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let counter = 0;

  // Recursive Tarjan; configuration graphs are small enough that depth is not a concern.
  const connect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const { to } of graph.get(v) ?? []) {
      if (!index.has(to)) {
        connect(to);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(to) ?? 0));
      } else if (onStack.has(to)) {
        low.set(v, Math.min(low.get(v) ?? 0, index.get(to) ?? 0));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string | undefined;
      do {
        w = stack.pop();
        if (w === undefined) break;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      components.push(component);
    }
  };
  for (const name of names) if (!index.has(name)) connect(name);

  const cycles: { path: string[]; edge: Edge }[] = [];
  for (const component of components) {
    const members = new Set(component);
    const start = [...component].sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0))[0];
    if (start === undefined) continue;
    const selfLoop = (graph.get(start) ?? []).find((e) => e.to === start);
    if (component.length === 1) {
      if (selfLoop) cycles.push({ path: [start, start], edge: selfLoop });
      continue;
    }
    const found = walkBack(start, members, graph);
    if (found) cycles.push(found);
  }
  return cycles.sort((a, b) => (order.get(a.path[0] ?? '') ?? 0) - (order.get(b.path[0] ?? '') ?? 0));
}

function walkBack(
  start: string,
  members: Set<string>,
  graph: Map<string, Edge[]>,
): { path: string[]; edge: Edge } | undefined {
  const visited = new Set<string>();
  const search = (
    node: string,
    path: string[],
    first: Edge | undefined,
  ): { path: string[]; edge: Edge } | undefined => {
    for (const edge of graph.get(node) ?? []) {
      if (!members.has(edge.to)) continue;
      const via = first ?? edge;
      if (edge.to === start) return { path: [...path, start], edge: via };
      if (visited.has(edge.to)) continue;
      visited.add(edge.to);
      const found = search(edge.to, [...path, edge.to], via);
      if (found) return found;
    }
    return undefined;
  };
  return search(start, [start], undefined);
}
