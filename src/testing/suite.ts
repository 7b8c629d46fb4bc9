import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Node } from 'yaml';
import { isMap, isSeq, yamlLibrary } from '../files/yaml-lazy.js';
import { decide } from '../engine/evaluate.js';
import { parseCheckRequest, InvalidRequestError } from '../engine/input.js';
import type { Decision } from '../engine/decision.js';
import type { CompiledPolicySet } from '../engine/model.js';
import type { CheckRequest } from '../engine/request.js';
import { listFiles, isTestSuiteFile } from '../policy/source.js';
import { InstanceCounters } from '../usage/instance-counters.js';
import { decideWithUsage, parseSteps, runSteps, type PolicyTestStep } from './sequence.js';

export interface PolicyTestCase {
  readonly suite: string;
  readonly file: string;
  readonly line: number;
  readonly name: string;
  readonly request: CheckRequest;
  readonly now: Date | undefined;
  readonly expect: 'allow' | 'deny';
  /** Expected deciding rule; undefined = not checked, "" = no rule matched. */
  readonly rule: string | undefined;
  /** Expected reason code (e.g. NO_POLICY); undefined = not checked. */
  readonly reason: string | undefined;
  /** A sequence of requests at given times (sequence.ts); `expect`, `rule` and `reason` are then per step. */
  readonly steps?: readonly PolicyTestStep[];
}

export interface PolicyTestResult {
  readonly test: PolicyTestCase;
  readonly passed: boolean;
  readonly decision: Decision;
  readonly failure: string;
}

/** A problem in a suite file itself (not a failing test). */
export interface SuiteError {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

const CASE_FIELDS = new Set(['name', 'request', 'expect', 'rule', 'reason', 'description', 'steps']);

/** Parses one `*_test.yaml` suite; suite errors are returned, not thrown, so all are reported. */
export function parseSuite(file: string, text: string): { tests: PolicyTestCase[]; errors: SuiteError[] } {
  const { LineCounter, parseDocument } = yamlLibrary();
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const errors: SuiteError[] = [];
  const lineOf = (n: Node | null | undefined) => (n?.range ? lineCounter.linePos(n.range[0]).line : 1);
  if (doc.errors.length > 0) {
    return { tests: [], errors: doc.errors.map((e) => ({ file, line: (e.linePos?.[0] ?? lineCounter.linePos(e.pos[0])).line, message: e.message.split('\n')[0]! })) };
  }
  const root = doc.contents;
  if (!isMap(root)) return { tests: [], errors: [{ file, line: 1, message: 'a test suite must be a mapping with "name" and "tests"' }] };
  const suiteName = String(root.get('name') ?? path.basename(file));
  const testsNode = root.get('tests', true) as Node | undefined;
  if (!isSeq(testsNode)) return { tests: [], errors: [{ file, line: lineOf(root), message: '"tests" must be a list' }] };
  const tests: PolicyTestCase[] = [];
  testsNode.items.forEach((item, i) => {
    const line = lineOf(item as Node);
    if (!isMap(item)) {
      errors.push({ file, line, message: `tests[${i}] must be a mapping` });
      return;
    }
    const raw = (item as Node & { toJSON(): unknown }).toJSON() as Record<string, unknown>;
    const name = typeof raw.name === 'string' ? raw.name : `tests[${i}]`;
    const fail = (message: string) => errors.push({ file, line, message: `test "${name}": ${message}` });
    for (const key of Object.keys(raw)) if (!CASE_FIELDS.has(key)) fail(`unknown field "${key}"`);
    if (raw.steps !== undefined) {
      if (raw.expect !== undefined || raw.rule !== undefined || raw.reason !== undefined) return fail('with steps, expect, rule and reason belong to each step');
      const { now: _now, ...base } = (raw.request ?? {}) as Record<string, unknown>;
      const steps = parseSteps(raw.steps, base);
      if (typeof steps === 'string') return fail(steps);
      tests.push({ suite: suiteName, file, line, name, request: steps[0]!.request, now: steps[0]!.at, expect: steps[0]!.expect, rule: undefined, reason: undefined, steps });
      return;
    }
    if (raw.expect !== 'allow' && raw.expect !== 'deny') return fail('expect must be "allow" or "deny"');
    if (raw.rule !== undefined && raw.rule !== null && typeof raw.rule !== 'string') return fail('rule must be a string');
    const requestRaw = raw.request as Record<string, unknown> | undefined;
    let now: Date | undefined;
    if (requestRaw && typeof requestRaw === 'object' && requestRaw.now !== undefined) {
      const value = requestRaw.now instanceof Date ? requestRaw.now : new Date(String(requestRaw.now));
      if (Number.isNaN(value.getTime())) return fail(`request.now ${JSON.stringify(requestRaw.now)} is not an RFC 3339 timestamp`);
      now = value;
    }
    let request: CheckRequest;
    try {
      const { now: _ignored, ...rest } = (requestRaw ?? {}) as Record<string, unknown>;
      request = parseCheckRequest(rest, undefined, 'request');
    } catch (err) {
      if (err instanceof InvalidRequestError) return fail(err.message);
      throw err;
    }
    tests.push({
      suite: suiteName,
      file,
      line,
      name,
      request,
      now,
      expect: raw.expect,
      rule: raw.rule === null ? '' : (raw.rule as string | undefined),
      reason: typeof raw.reason === 'string' ? raw.reason : undefined,
    });
  });
  return { tests, errors };
}

/** Reads every `*_test.yaml` under `dir`. Paths in results are relative to `dir`. */
export async function loadSuites(dir: string): Promise<{ tests: PolicyTestCase[]; errors: SuiteError[] }> {
  const files = await listFiles(dir, isTestSuiteFile);
  const tests: PolicyTestCase[] = [];
  const errors: SuiteError[] = [];
  for (const full of files) {
    const rel = path.relative(dir, full).split(path.sep).join('/');
    const parsed = parseSuite(rel, await readFile(full, 'utf8'));
    tests.push(...parsed.tests);
    errors.push(...parsed.errors);
  }
  return { tests, errors };
}

/** Runs one case; `defaultNow` is the time of the run, used when the case gives none. */
export function runTest(set: CompiledPolicySet, test: PolicyTestCase, defaultNow: Date): PolicyTestResult {
  if (test.steps) {
    const r = runSteps(set, test.steps);
    return { test, passed: r.failure === '', decision: r.decision, failure: r.failure };
  }
  // Limits apply as when serving, against counters of this test alone.
  const decision = set.usage ? decideWithUsage(set, test.request, test.now ?? defaultNow, new InstanceCounters()) : decide(set, test.request, { now: test.now ?? defaultNow, explain: true });
  const problems: string[] = [];
  const got = decision.effect === 'ALLOW' ? 'allow' : 'deny';
  if (got !== test.expect) problems.push(`expected ${test.expect}, got ${got} (${decision.reason})`);
  if (test.rule !== undefined && decision.rule !== test.rule) {
    problems.push(`expected rule ${JSON.stringify(test.rule)}, decided by ${JSON.stringify(decision.rule)}`);
  }
  if (test.reason !== undefined && decision.reason !== test.reason) problems.push(`expected reason ${test.reason}, got ${decision.reason}`);
  return { test, passed: problems.length === 0, decision, failure: problems.join('; ') };
}
