/**
 * The `limits:` section of a resource policy (docs/policies.md#limits-and-quotas): rates and quotas
 * in the style of rules. Structure, rates and periods are checked here; the CEL (`when`, `key`,
 * `cost`) is type-checked by the unit compiler (usage-compile.ts).
 */
import type { Node } from 'yaml';
import { isMap, isScalar, isSeq } from '../files/yaml-lazy.js';
import type { LimitDefinition, LimitMeasure, QuotaPeriod, SourceExpression } from './document.js';
import type { SourcePosition } from './issues.js';
import type { YamlReader } from './yaml-reader.js';

const LIMIT_FIELDS = ['name', 'description', 'actions', 'roles', 'when', 'key', 'rate', 'burst', 'quota', 'cost', 'mode', 'scope'] as const;
const QUOTA_FIELDS = ['count', 'period'] as const;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:\-]*$/;
const ACTION_PATTERN = /^(\*|[A-Za-z0-9_.:\-/]+\*?)$/;

/** Longest limit name (it is sent in headers, answers and events). */
export const MAX_LIMIT_NAME = 64;
/** Largest count, burst and cost a limit may state (counters stay exact doubles and fit a uint32 on the wire). */
export const MAX_LIMIT_COUNT = 1_000_000_000;
/** Most key parts. */
export const MAX_KEY_PARTS = 8;
/** Longest rate period (a longer one is a quota). */
const MAX_RATE_PERIOD_MS = 24 * 3_600_000;
/** Longest rolling window. */
const MAX_ROLLING_MS = 31 * 24 * 3_600_000;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "1m", "10s", "500ms", "s" (= 1s) → milliseconds; undefined when not a duration. */
export function parseDuration(text: string): number | undefined {
  const m = /^([0-9]{1,9})?(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) return undefined;
  const n = m[1] === undefined ? 1 : Number(m[1]);
  return n > 0 ? n * UNIT_MS[m[2]!]! : undefined;
}

/** "100/1m" → 100 per 60,000 ms; undefined when not a rate. */
export function parseRate(text: string): { count: number; periodMs: number } | undefined {
  const m = /^\s*([0-9]{1,10})\s*\/\s*([0-9a-z]+)\s*$/.exec(text);
  if (!m) return undefined;
  const count = Number(m[1]);
  const periodMs = parseDuration(m[2]!);
  if (periodMs === undefined || count < 1) return undefined;
  return { count, periodMs };
}

/** "hour", "day", "month" (calendar, UTC) or "rolling 1h"; undefined when unknown. */
export function parsePeriod(text: string): QuotaPeriod | undefined {
  if (text === 'hour' || text === 'day' || text === 'month') return { calendar: text };
  const m = /^rolling\s+(\S+)$/.exec(text.trim());
  if (!m) return undefined;
  const ms = parseDuration(m[1]!);
  return ms === undefined || ms < 1000 || ms > MAX_ROLLING_MS ? undefined : { rollingMs: ms };
}

function integer(reader: YamlReader, node: Node | null | undefined, where: string, at: SourcePosition, min: number): number | undefined {
  if (isScalar(node) && typeof node.value === 'number' && Number.isInteger(node.value) && node.value >= min && node.value <= MAX_LIMIT_COUNT) return node.value;
  reader.report('INVALID_RATE', `${where} must be a whole number from ${min} to ${MAX_LIMIT_COUNT}`, reader.positionOf(node, at));
  return undefined;
}

/** A CEL field that may also be written as a YAML number (`cost: 5`). */
function expressionOrNumber(reader: YamlReader, node: Node | null | undefined, where: string, at: SourcePosition): SourceExpression | undefined {
  if (isScalar(node) && typeof node.value === 'number') {
    const text = String(node.value);
    const position = reader.positionOf(node, at);
    return { text, position, positionAt: () => position };
  }
  return reader.expression(node, where, at);
}

function readMeasure(reader: YamlReader, f: Map<string, { value: Node | null }>, label: string, position: SourcePosition): LimitMeasure | undefined {
  const rateNode = f.get('rate')?.value;
  const quotaNode = f.get('quota')?.value;
  const burstNode = f.get('burst')?.value;
  if ((rateNode === undefined) === (quotaNode === undefined)) {
    reader.report('MISSING_FIELD', `${label}: give exactly one of "rate" (e.g. rate: 100/1m) or "quota" (e.g. quota: {count: 500, period: month})`, position);
    return undefined;
  }
  if (rateNode !== undefined) {
    const text = reader.asString(rateNode, `${label}: rate`, position);
    if (text === undefined) return undefined;
    const rate = parseRate(text);
    if (!rate || rate.count > MAX_LIMIT_COUNT || rate.periodMs > MAX_RATE_PERIOD_MS) {
      reader.report('INVALID_RATE', `${label}: rate "${text}" must be "<count>/<period>" with a count from 1 to ${MAX_LIMIT_COUNT} and a period from 1ms to 1d in ms, s, m, h or d (e.g. "100/1m"); use a quota for longer periods`, reader.positionOf(rateNode, position));
      return undefined;
    }
    const burst = burstNode === undefined || burstNode === null ? 1 : integer(reader, burstNode, `${label}: burst`, position, 1);
    if (burst === undefined) return undefined;
    return { kind: 'rate', count: rate.count, periodMs: rate.periodMs, burst, text };
  }
  if (burstNode !== undefined) {
    reader.report('INVALID_RATE', `${label}: burst applies to a rate, not a quota`, reader.positionOf(burstNode, position));
    return undefined;
  }
  const quotaPos = reader.positionOf(quotaNode, position);
  const map = reader.asMap(quotaNode, `${label}: quota`, position);
  if (!map) return undefined;
  const q = reader.entries(map, QUOTA_FIELDS, `${label}: quota`);
  const countNode = reader.required(q, 'count', `${label}: quota`, quotaPos);
  const count = countNode === undefined ? undefined : integer(reader, countNode, `${label}: quota.count`, quotaPos, 1);
  const periodNode = reader.required(q, 'period', `${label}: quota`, quotaPos);
  let period: QuotaPeriod | undefined;
  let periodText = '';
  if (periodNode !== undefined) {
    const text = reader.asString(periodNode, `${label}: quota.period`, quotaPos);
    if (text !== undefined) {
      period = parsePeriod(text);
      periodText = text;
      if (!period) reader.report('INVALID_PERIOD', `${label}: quota.period "${text}" is not known (use hour, day, month — calendar periods in UTC — or "rolling <duration>" from 1s to 31d, e.g. "rolling 1h")`, reader.positionOf(periodNode, quotaPos));
    }
  }
  if (count === undefined || !period) return undefined;
  return { kind: 'quota', count, period, text: `${count}/${periodText}` };
}

/** Reads `limits:`; returns only the limits that are structurally valid (every problem is an issue). */
export function readLimits(reader: YamlReader, node: Node | null | undefined, at: SourcePosition): LimitDefinition[] {
  if (node === undefined || node === null) return [];
  const items = reader.asSeq(node, 'limits', at);
  if (!items) return [];
  const out: LimitDefinition[] = [];
  const seen = new Map<string, SourcePosition>();
  items.forEach((item, i) => {
    const where = `limits[${i}]`;
    const position = reader.positionOf(item, at);
    const map = reader.asMap(item, where, position);
    if (!map || !isMap(item)) return;
    const f = reader.entries(map, LIMIT_FIELDS, where);
    const before = reader.issues.length;
    const nameNode = reader.required(f, 'name', where, position);
    const name = nameNode === undefined ? undefined : reader.asString(nameNode, `${where}.name`, position);
    if (name !== undefined) {
      if (!NAME.test(name) || name.length > MAX_LIMIT_NAME) {
        reader.report('INVALID_VALUE', `${where}.name "${name}" must be at most ${MAX_LIMIT_NAME} letters, digits and _ . : -`, reader.positionOf(nameNode));
      }
      const prev = seen.get(name);
      if (prev) reader.report('DUPLICATE_NAME', `limit "${name}" is already defined at line ${prev.line}`, reader.positionOf(nameNode));
      else seen.set(name, reader.positionOf(nameNode));
    }
    const label = name ? `limit "${name}"` : where;
    const actionsNode = reader.required(f, 'actions', label, position);
    const actions = actionsNode === undefined ? [] : reader.stringList(actionsNode, `${label}: actions`, position) ?? [];
    if (actionsNode !== undefined && actions.length === 0 && reader.issues.length === before) {
      reader.report('INVALID_ACTION', `${label}: actions must not be empty`, reader.positionOf(actionsNode, position));
    }
    for (const a of actions) {
      if (!ACTION_PATTERN.test(a.value)) reader.report('INVALID_ACTION', `${label}: action "${a.value}" is not a valid action or glob ("*", "name", or a prefix glob like "report:*")`, a.position);
    }
    const rolesNode = f.get('roles')?.value;
    const roles = rolesNode === undefined || rolesNode === null ? undefined : (reader.stringList(rolesNode, `${label}: roles`, position) ?? []).map((r) => r.value);
    if (roles !== undefined && roles.length === 0 && reader.issues.length === before) {
      reader.report('INVALID_VALUE', `${label}: roles must not be empty (omit it or use ["*"] for any subject)`, reader.positionOf(rolesNode, position));
    }
    const whenNode = f.get('when')?.value;
    const when = whenNode === undefined || whenNode === null ? undefined : reader.expression(whenNode, `${label}: when`, position);
    const keyNode = reader.required(f, 'key', label, position);
    const key: SourceExpression[] = [];
    if (keyNode !== undefined) {
      if (isSeq(keyNode)) {
        const parts = keyNode.items as Node[];
        if (parts.length === 0 || parts.length > MAX_KEY_PARTS) reader.report('INVALID_VALUE', `${label}: key must have 1 to ${MAX_KEY_PARTS} parts`, reader.positionOf(keyNode, position));
        parts.forEach((p, j) => {
          const e = reader.expression(p, `${label}: key[${j}]`, position);
          if (e) key.push(e);
        });
      } else {
        const e = reader.expression(keyNode, `${label}: key`, position);
        if (e) key.push(e);
      }
    }
    const measure = readMeasure(reader, f, label, position);
    const costNode = f.get('cost')?.value;
    const cost = costNode === undefined || costNode === null ? undefined : expressionOrNumber(reader, costNode, `${label}: cost`, position);
    const mode = choice(reader, f.get('mode')?.value, `${label}: mode`, position, ['enforce', 'shadow'] as const);
    const scope = choice(reader, f.get('scope')?.value, `${label}: scope`, position, ['instance', 'cluster'] as const);
    if (f.has('description')) reader.asString(f.get('description')!.value, `${label}: description`, position);
    if (reader.issues.length > before || name === undefined || !measure || !mode || !scope || key.length === 0) return;
    out.push({
      name,
      position: reader.positionOf(nameNode),
      actions: actions.map((a) => ({ pattern: a.value, position: a.position })),
      roles,
      when,
      key,
      measure,
      cost,
      mode,
      scope,
    });
  });
  return out;
}

function choice<T extends string>(reader: YamlReader, node: Node | null | undefined, where: string, at: SourcePosition, allowed: readonly T[]): T | undefined {
  if (node === undefined || node === null) return allowed[0];
  const v = reader.asString(node, where, at);
  if (v === undefined) return undefined;
  if ((allowed as readonly string[]).includes(v)) return v as T;
  reader.report('INVALID_VALUE', `${where} "${v}" must be ${allowed.map((a) => `"${a}"`).join(' or ')}`, reader.positionOf(node, at));
  return undefined;
}
