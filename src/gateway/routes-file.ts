import { readFileSync } from 'node:fs';
import type { Node, Pair } from 'yaml';
import { isMap, isScalar, yamlLibrary } from '../files/yaml-lazy.js';
import { formatIssue } from '../policy/issues.js';
import { YamlReader } from '../policy/yaml-reader.js';
import { RouteTable, RoutesError, type RouteDefinition } from './route-table.js';
import { compileTemplate, type Template } from './template.js';

/** What happens to a request no route matches. */
export type UnmappedMode = 'deny' | 'route';

/** Variables of upstream header templates, e.g. "{subject.id}". */
export const UPSTREAM_VARIABLES = ['subject.id', 'subject.type', 'subject.roles', 'decision.id', 'action', 'resource.type', 'resource.id', 'caller.id'] as const;

/** Headers that carry credentials: never copied into the decision context (so never into events). */
export const CREDENTIAL_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'x-api-key'];

export interface GatewaySettings {
  readonly file: string;
  readonly table: RouteTable;
  readonly unmapped: UnmappedMode;
  /** Without a bearer token, use the mTLS principal Envoy reports in source.principal as a service subject. */
  readonly peerSubjects: { readonly enabled: boolean; readonly type: string; readonly roles: readonly string[] };
  /** Request headers copied into context.http.headers: "all" (minus credentials) or a list. */
  readonly contextHeaders: 'all' | readonly string[];
  readonly upstream: {
    readonly decisionHeader: string;
    readonly subjectHeader: string;
    readonly headers: readonly (readonly [string, Template])[];
    readonly removeAuthorization: boolean;
  };
  /** realm of WWW-Authenticate: Bearer realm="...". */
  readonly realm: string;
}

const TOP = ['apiVersion', 'kind', 'unmapped', 'subjects', 'context', 'upstream', 'realm', 'routes'];
const ROUTE = ['match', 'action', 'resource', 'allowInSegments'];
const RESOURCE = ['type', 'id', 'attributes'];
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

/** Reads, validates and compiles a routes file; throws RoutesError listing every problem with its position. */
export function loadGatewayRoutes(file: string): GatewaySettings {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new RoutesError([`${file}: cannot read the routes file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
  }
  return parseGatewayRoutes(file, text);
}

export function parseGatewayRoutes(file: string, text: string): GatewaySettings {
  const { LineCounter, parseDocument } = yamlLibrary();
  const lineCounter = new LineCounter();
  const r = new YamlReader(file, text, lineCounter);
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  for (const err of doc.errors) {
    const pos = lineCounter.linePos(err.pos[0]);
    r.report('YAML_SYNTAX', err.message.split('\n')[0]!, { file, line: pos.line, column: pos.col });
  }
  if (doc.errors.length > 0) throw new RoutesError(r.issues.map(formatIssue));
  const root = doc.contents as Node | null;
  const top = r.positionOf(root);
  const map = r.asMap(root, 'the routes file', top);
  if (!map) throw new RoutesError(r.issues.map(formatIssue));
  const f = r.entries(map, TOP, 'routes file');
  const str = (pair: Pair<Node, Node | null> | undefined, where: string, fallback: string): string =>
    pair ? (r.asString(pair.value, where, r.positionOf(pair.key)) ?? fallback) : fallback;
  const apiVersion = str(f.get('apiVersion'), 'apiVersion', 'verdict/v1');
  if (apiVersion !== 'verdict/v1') r.report('UNSUPPORTED_API_VERSION', `apiVersion "${apiVersion}" is not supported (use "verdict/v1")`, r.positionOf(f.get('apiVersion')?.value));
  const kind = str(f.get('kind'), 'kind', 'GatewayRoutes');
  if (kind !== 'GatewayRoutes') r.report('UNKNOWN_KIND', `kind "${kind}" is not known here (use "GatewayRoutes")`, r.positionOf(f.get('kind')?.value));
  const unmapped = str(f.get('unmapped'), 'unmapped', 'deny');
  if (unmapped !== 'deny' && unmapped !== 'route') r.report('INVALID_VALUE', `unmapped: "${unmapped}" must be "deny" or "route"`, r.positionOf(f.get('unmapped')?.value));

  const sub = subMap(r, f.get('subjects'), 'subjects', ['peer', 'peerType', 'peerRoles']);
  const peerSubjects = {
    enabled: bool(r, sub.get('peer'), 'subjects.peer', true),
    type: str(sub.get('peerType'), 'subjects.peerType', 'service'),
    roles: (sub.get('peerRoles') ? r.stringList(sub.get('peerRoles')!.value, 'subjects.peerRoles', top) : undefined)?.map((x) => x.value) ?? ['service'],
  };

  const ctx = subMap(r, f.get('context'), 'context', ['headers']);
  let contextHeaders: 'all' | string[] = 'all';
  const hdrs = ctx.get('headers');
  if (hdrs && !(isScalar(hdrs.value) && hdrs.value.value === 'all')) {
    contextHeaders = (r.stringList(hdrs.value, 'context.headers', top) ?? []).map((x) => x.value.toLowerCase());
    for (const h of contextHeaders) {
      if (CREDENTIAL_HEADERS.includes(h)) r.report('INVALID_VALUE', `context.headers: "${h}" carries credentials and is never copied into the decision context`, r.positionOf(hdrs.value));
    }
  }

  const up = subMap(r, f.get('upstream'), 'upstream', ['decisionHeader', 'subjectHeader', 'headers', 'removeAuthorization']);
  const headerName = (pair: Pair<Node, Node | null> | undefined, where: string, fallback: string): string => {
    const v = str(pair, where, fallback).toLowerCase();
    if (!HEADER_NAME.test(v)) r.report('INVALID_VALUE', `${where}: "${v}" is not a valid header name`, r.positionOf(pair?.value));
    return v;
  };
  const upstreamHeaders: [string, Template][] = [];
  const hp = up.get('headers');
  if (hp) {
    const hm = r.asMap(hp.value, 'upstream.headers', r.positionOf(hp.key));
    for (const pair of (hm?.items ?? []) as Pair<Node, Node | null>[]) {
      const name = String(isScalar(pair.key) ? pair.key.value : '').toLowerCase();
      const at = r.positionOf(pair.key);
      if (!HEADER_NAME.test(name)) r.report('INVALID_VALUE', `upstream.headers: "${name}" is not a valid header name`, at);
      const value = r.asString(pair.value, `upstream.headers.${name}`, at);
      if (value === undefined) continue;
      try {
        upstreamHeaders.push([name, compileTemplate(value, UPSTREAM_VARIABLES)]);
      } catch (err) {
        r.report('INVALID_VALUE', `upstream.headers.${name}: ${(err as Error).message}`, r.positionOf(pair.value));
      }
    }
  }
  const upstream = {
    decisionHeader: headerName(up.get('decisionHeader'), 'upstream.decisionHeader', 'x-verdict-decision-id'),
    subjectHeader: headerName(up.get('subjectHeader'), 'upstream.subjectHeader', 'x-verdict-subject'),
    headers: upstreamHeaders,
    removeAuthorization: bool(r, up.get('removeAuthorization'), 'upstream.removeAuthorization', false),
  };

  const definitions = readRoutes(r, f.get('routes'), top);
  const positioned = r.issues.map(formatIssue);
  let table: RouteTable | undefined;
  try {
    table = new RouteTable(definitions);
  } catch (err) {
    if (!(err instanceof RoutesError)) throw err;
    positioned.push(...err.problems);
  }
  if (positioned.length > 0 || !table) throw new RoutesError(positioned);
  return { file, table, unmapped: unmapped as UnmappedMode, peerSubjects, contextHeaders, upstream, realm: str(f.get('realm'), 'realm', 'verdict') };
}

function subMap(r: YamlReader, pair: Pair<Node, Node | null> | undefined, where: string, allowed: string[]): Map<string, Pair<Node, Node | null>> {
  if (!pair || pair.value === null) return new Map();
  const m = r.asMap(pair.value, where, r.positionOf(pair.key));
  return m ? r.entries(m, allowed, where) : new Map();
}

function bool(r: YamlReader, pair: Pair<Node, Node | null> | undefined, where: string, fallback: boolean): boolean {
  if (!pair) return fallback;
  if (isScalar(pair.value) && typeof pair.value.value === 'boolean') return pair.value.value;
  r.report('INVALID_VALUE', `${where} must be true or false`, r.positionOf(pair.value));
  return fallback;
}

function readRoutes(r: YamlReader, pair: Pair<Node, Node | null> | undefined, top: ReturnType<YamlReader['positionOf']>): RouteDefinition[] {
  if (!pair) {
    r.report('MISSING_FIELD', 'routes file: missing required field "routes"', top);
    return [];
  }
  const items = r.asSeq(pair.value, 'routes', r.positionOf(pair.key)) ?? [];
  const out: RouteDefinition[] = [];
  items.forEach((item, i) => {
    const where = `routes[${i}]`;
    const pos = r.positionOf(item);
    const m = r.asMap(item, where, pos);
    if (!m) return;
    const e = r.entries(m, ROUTE, where);
    const match = r.required(e, 'match', where, pos);
    const action = r.required(e, 'action', where, pos);
    const resource = r.required(e, 'resource', where, pos);
    const matchText = match === undefined ? undefined : r.asString(match, `${where}.match`, pos);
    const actionText = action === undefined ? undefined : r.asString(action, `${where}.action`, pos);
    let target: RouteDefinition['resource'] | undefined;
    if (resource !== undefined && isMap(resource)) {
      const re = r.entries(resource, RESOURCE, `${where}.resource`);
      const rpos = r.positionOf(resource);
      const typeNode = r.required(re, 'type', `${where}.resource`, rpos);
      const type = typeNode === undefined ? undefined : r.asString(typeNode, `${where}.resource.type`, rpos);
      const idPair = re.get('id');
      const id = idPair ? r.asString(idPair.value, `${where}.resource.id`, rpos) : undefined;
      const attributes: Record<string, string> = {};
      const ap = re.get('attributes');
      if (ap) {
        const am = r.asMap(ap.value, `${where}.resource.attributes`, rpos);
        for (const a of (am?.items ?? []) as Pair<Node, Node | null>[]) {
          const k = String(isScalar(a.key) ? a.key.value : '');
          const v = r.asString(a.value, `${where}.resource.attributes.${k}`, rpos);
          if (v !== undefined) attributes[k] = v;
        }
      }
      if (type !== undefined) target = { type, ...(id !== undefined ? { id } : {}), attributes };
    } else if (resource !== undefined) {
      // `resource: document` is accepted as the type alone
      const type = r.asString(resource, `${where}.resource`, pos);
      if (type !== undefined) target = { type };
    }
    const allowPair = e.get('allowInSegments');
    const allowInSegments = allowPair ? r.stringList(allowPair.value, `${where}.allowInSegments`, r.positionOf(allowPair.key))?.map((x) => x.value) : undefined;
    if (matchText !== undefined && actionText !== undefined && target) {
      const p = r.positionOf(match);
      out.push({ match: matchText, action: actionText, resource: target, ...(allowInSegments ? { allowInSegments } : {}), at: `${p.file}:${p.line}:${p.column}` });
    }
  });
  return out;
}
