import { describeUnsafe, SEGMENT_CHARACTERS, unsafeCharacters } from './path-characters.js';
import { compileTemplate, renderTemplate, type Template } from './template.js';

/** One route as written in the routes file, before compilation. */
export interface RouteDefinition {
  /** "GET /documents/{id}", "GET,HEAD /files/{path...}", "* /health". */
  readonly match: string;
  readonly action: string;
  readonly resource: { readonly type: string; readonly id?: string; readonly attributes?: Readonly<Record<string, string>> };
  /** Characters its parameters may hold once decoded: "slash", "backslash", "control", "nul" (default none). */
  readonly allowInSegments?: readonly string[];
  /** Where it was written, for error messages ("routes.yaml:12:5"). */
  readonly at: string;
}

export interface CompiledRoute {
  readonly match: string;
  readonly methods: readonly string[];
  readonly params: readonly string[];
  readonly action: Template;
  readonly resourceType: string;
  readonly resourceId: Template | undefined;
  readonly attributes: readonly (readonly [string, Template])[];
  /** SEGMENT_* bits its decoded segments may hold (allowInSegments). */
  readonly allowedUnsafe: number;
}

export interface RouteMatch {
  readonly route: CompiledRoute;
  /** Captured values, in the order of route.params. */
  readonly values: readonly string[];
}

class Node {
  readonly literals = new Map<string, Node>();
  param: Node | undefined;
  /** Routes ending here, by method ("*" = any). */
  readonly routes = new Map<string, CompiledRoute>();
  /** Routes whose last segment is {name...}: the rest of the path, by method. */
  readonly rest = new Map<string, CompiledRoute>();
}

const METHOD = /^([A-Z]+|\*)$/;
const PARAM = /^\{([A-Za-z_][A-Za-z0-9_]*)(\.\.\.)?\}$/;

function parseMatch(match: string): { methods: string[]; segments: string[] } {
  const m = /^\s*(\S+)\s+(\/\S*)\s*$/.exec(match);
  if (!m) throw new Error(`"${match}" must be "METHOD /path", e.g. "GET /documents/{id}"`);
  const methods = m[1]!.split(',').map((x) => x.trim().toUpperCase());
  for (const x of methods) if (!METHOD.test(x)) throw new Error(`"${match}": "${x}" is not an HTTP method (or "*")`);
  const path = m[2]!;
  if (path.includes('?')) throw new Error(`"${match}": a route matches the path only; the query goes to context.http.query`);
  const segments = path === '/' ? [] : path.replace(/\/$/, '').slice(1).split('/');
  if (segments.some((s) => s === '')) throw new Error(`"${match}": empty path segment ("//")`);
  return { methods, segments };
}

/**
 * Route templates compiled at load into a tree of path segments. Matching splits the path once and
 * walks the tree: a literal segment is preferred over a {param} at the same position, and
 * {name...} (rest of the path) comes last; no regular expression is built or run per request.
 */
export class RouteTable {
  private readonly root = new Node();
  readonly size: number;

  constructor(definitions: readonly RouteDefinition[]) {
    const problems: string[] = [];
    for (const def of definitions) {
      try {
        this.add(def);
      } catch (err) {
        problems.push(`${def.at}: ${(err as Error).message}`);
      }
    }
    if (problems.length > 0) throw new RoutesError(problems);
    this.size = definitions.length;
  }

  private add(def: RouteDefinition): void {
    const { methods, segments } = parseMatch(def.match);
    const params: string[] = [];
    let node = this.root;
    let restRoute = false;
    segments.forEach((seg, i) => {
      const p = PARAM.exec(seg);
      if (!p) {
        if (seg.includes('{') || seg.includes('}')) throw new Error(`"${def.match}": "${seg}" mixes text and a placeholder; a {param} must be a whole segment`);
        if (unsafeCharacters(seg) !== 0) throw new Error(`"${def.match}": the literal segment "${seg}" holds ${describeUnsafe(unsafeCharacters(seg))}, which no request segment may match`);
        let next = node.literals.get(seg);
        if (!next) node.literals.set(seg, (next = new Node()));
        node = next;
        return;
      }
      if (params.includes(p[1]!)) throw new Error(`"${def.match}": {${p[1]}} appears twice`);
      params.push(p[1]!);
      if (p[2]) {
        if (i !== segments.length - 1) throw new Error(`"${def.match}": {${p[1]}...} must be the last segment`);
        restRoute = true;
        return;
      }
      node.param ??= new Node();
      node = node.param;
    });
    const describe = (text: string, what: string): Template => {
      try {
        return compileTemplate(text, params);
      } catch (err) {
        throw new Error(`${what} ${(err as Error).message}`);
      }
    };
    let allowedUnsafe = 0;
    for (const name of def.allowInSegments ?? []) {
      const bit = SEGMENT_CHARACTERS[name];
      if (bit === undefined) throw new Error(`allowInSegments: "${name}" is not one of ${Object.keys(SEGMENT_CHARACTERS).join(', ')}`);
      allowedUnsafe |= bit;
    }
    if (allowedUnsafe !== 0 && params.length === 0) throw new Error(`"${def.match}": allowInSegments needs a {param} to apply to`);
    const route: CompiledRoute = {
      match: def.match.trim().replace(/\s+/, ' '),
      methods,
      params,
      action: describe(def.action, 'action'),
      resourceType: def.resource.type,
      resourceId: def.resource.id !== undefined ? describe(def.resource.id, 'resource.id') : undefined,
      attributes: Object.entries(def.resource.attributes ?? {}).map(([k, v]) => [k, describe(v, `resource.attributes.${k}`)] as const),
      allowedUnsafe,
    };
    const table = restRoute ? node.rest : node.routes;
    for (const method of methods) {
      const clash = table.get(method);
      if (clash) throw new Error(`"${def.match}" duplicates "${clash.match}" for ${method}`);
      table.set(method, route);
    }
  }

  /** The route for a method and decoded path segments, or undefined when none matches. */
  match(method: string, segments: readonly string[]): RouteMatch | undefined {
    const values: string[] = [];
    const route = walk(this.root, segments, 0, method, values);
    return route ? { route, values } : undefined;
  }
}

function walk(node: Node, segments: readonly string[], i: number, method: string, values: string[]): CompiledRoute | undefined {
  if (i === segments.length) return node.routes.get(method) ?? node.routes.get('*');
  const literal = node.literals.get(segments[i]!);
  if (literal) {
    const found = walk(literal, segments, i + 1, method, values);
    if (found) return found;
  }
  if (node.param) {
    values.push(segments[i]!);
    const found = walk(node.param, segments, i + 1, method, values);
    if (found) return found;
    values.pop();
  }
  if (node.rest.size > 0) {
    const route = node.rest.get(method) ?? node.rest.get('*');
    if (route) {
      values.push(segments.slice(i).join('/'));
      return route;
    }
  }
  return undefined;
}

/** Where a request goes: a route, no route, or nowhere (a 400 with `problem`). */
export type RoutedRequest =
  | { readonly kind: 'matched'; readonly match: RouteMatch }
  | { readonly kind: 'unmapped' }
  | { readonly kind: 'bad'; readonly problem: string };

/**
 * Matches decoded segments and refuses characters inside them (`unsafe`, SEGMENT_* bits from
 * pathSegments) that the matched route does not allow; an unmatched request allows none.
 */
export function routeRequest(table: RouteTable, method: string, segments: readonly string[], unsafe: number): RoutedRequest {
  const match = table.match(method, segments);
  const refused = unsafe & ~(match ? match.route.allowedUnsafe : 0);
  if (refused !== 0) {
    const what = `the request path has a segment holding ${describeUnsafe(refused)}`;
    return { kind: 'bad', problem: match ? `${what}; route "${match.route.match}" does not allow it (allowInSegments)` : what };
  }
  return match ? { kind: 'matched', match } : { kind: 'unmapped' };
}

/** The Verdict target of a matched route: action, resource id and attributes rendered from the values. */
export function renderTarget(m: RouteMatch): { action: string; id: string; attributes: Record<string, string> } {
  const { route, values } = m;
  const attributes: Record<string, string> = {};
  for (const [k, t] of route.attributes) attributes[k] = renderTemplate(t, values);
  return { action: renderTemplate(route.action, values), id: route.resourceId ? renderTemplate(route.resourceId, values) : '', attributes };
}

/** Everything wrong with a routes file, each problem with its position. */
export class RoutesError extends Error {
  readonly code = 'ROUTES_INVALID';
  constructor(readonly problems: readonly string[]) {
    super(`gateway routes rejected:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'RoutesError';
  }
}
