import { createHash } from 'node:crypto';
import type { Environment } from '@marcbachmann/cel-js';
import { celBaseEnvironment } from '../cel/environment.js';
import type {
  CompiledDerivedRole,
  CompiledPolicy,
  CompiledPolicySet,
  CompiledRule,
  PolicySetSummary,
  ResourceTypeIndex,
} from '../engine/model.js';
import { buildResourceTypeIndex } from './action-index.js';
import type { PolicySourceFile, ResourcePolicyDocument } from './document.js';
import { checkDocumentCosts, DEFAULT_COST_ESTIMATE_LIMITS, type CostEstimateLimits } from './cost.js';
import { checkExpression, type CheckedExpression } from './expression.js';
import { PolicyLoadError, type PolicyIssue, type SourcePosition } from './issues.js';
import { parsePolicyFile } from './parse.js';
import { compileVariables, newVariablesEnvCache, type VariablesEnvCache } from './variables.js';

export const WILDCARD_RESOURCE = '*';

/** Content hash over every file (path and text), independent of read order. */
export function policyRevision(files: readonly PolicySourceFile[]): string {
  const hash = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    hash.update(f.path).update('\0').update(f.text).update('\0');
  }
  return `sha256:${hash.digest('hex').slice(0, 16)}`;
}

interface PolicyUnit {
  readonly doc: ResourcePolicyDocument;
  readonly policy: CompiledPolicy;
  readonly env: Environment;
  readonly variables: ReadonlyMap<string, CheckedExpression>;
}

export interface CompileOptions {
  /** Request and cost limits for each condition's worst case (CEL_COST); default: the defaults of `limits`. */
  readonly limits?: CostEstimateLimits;
}

/**
 * Validates and compiles a whole policy set: parses YAML, checks structure, parses and type-checks
 * every CEL expression, resolves variables and derived roles, and indexes rules by resource type
 * and action. Every problem in every file is collected; if there is any, nothing is returned and a
 * PolicyLoadError carries them all (a broken set never half-loads).
 */
export function compilePolicySet(files: readonly PolicySourceFile[], options: CompileOptions = {}): CompiledPolicySet {
  const issues: PolicyIssue[] = [];
  const documents: ResourcePolicyDocument[] = [];
  for (const file of files) {
    const parsed = parsePolicyFile(file);
    issues.push(...parsed.issues);
    documents.push(...parsed.documents);
  }
  if (files.length === 0) {
    issues.push({ file: '.', line: 1, column: 1, code: 'NO_POLICIES', message: 'no policy files found (*.yaml or *.yml, excluding *_test.yaml)' });
  }

  const base = celBaseEnvironment();
  const units: PolicyUnit[] = [];
  // Environments are shared between policies with identical variable types, within this set only
  // (so a replaced set releases them).
  const envCache: VariablesEnvCache = newVariablesEnvCache();
  for (const doc of documents) {
    const vars = compileVariables(base, doc.variables, issues, envCache);
    const policy: CompiledPolicy = {
      id: doc.id,
      resource: doc.resource,
      createVariables: vars.factory.create,
      hasVariables: doc.variables.length > 0,
    };
    units.push({ doc, policy, env: vars.env, variables: vars.checked });
  }

  // Derived roles are scoped to a resource type ("*" ones to every type); names are unique in scope.
  const derivedByType = new Map<string, Map<string, CompiledDerivedRole>>();
  const derivedPositions = new Map<string, SourcePosition>();
  for (const { doc, policy, env } of units) {
    let scope = derivedByType.get(doc.resource);
    if (!scope) derivedByType.set(doc.resource, (scope = new Map()));
    for (const def of doc.derivedRoles) {
      const key = `${doc.resource}\0${def.name}`;
      const prev = derivedPositions.get(key);
      if (prev && prev.file !== def.position.file) {
        issues.push({ ...def.position, code: 'DUPLICATE_NAME', message: `derived role "${def.name}" for resource "${doc.resource}" is already defined at ${prev.file}:${prev.line}` });
        continue;
      }
      derivedPositions.set(key, def.position);
      const checked = checkExpression(env, def.when, `derived role "${def.name}"`, issues, true);
      if (!checked) continue;
      scope.set(def.name, { name: def.name, policy, parentRoles: def.parentRoles, condition: checked.program, source: def.when.text });
    }
  }

  const rulesByType = new Map<string, CompiledRule[]>();
  const rulePositions = new Map<string, SourcePosition>();
  let ordinal = 0;
  for (const { doc, policy, env } of units) {
    if (!rulesByType.has(doc.resource)) rulesByType.set(doc.resource, []);
    for (const def of doc.rules) {
      const key = `${doc.resource}\0${def.name}`;
      const prev = rulePositions.get(key);
      if (prev) {
        const where = prev.file === def.position.file ? `line ${prev.line}` : `${prev.file}:${prev.line}`;
        issues.push({ ...def.position, code: 'DUPLICATE_NAME', message: `rule "${def.name}" for resource "${doc.resource}" is already defined at ${where}` });
        continue;
      }
      rulePositions.set(key, def.position);
      let condition;
      if (def.when) {
        const checked = checkExpression(env, def.when, `rule "${def.name}"`, issues, true);
        if (!checked) continue;
        condition = checked.program;
      }
      const roles = def.roles ?? [];
      const anyRole = roles.length === 0 || roles.includes('*');
      const scopes = [derivedByType.get(doc.resource), doc.resource === WILDCARD_RESOURCE ? undefined : derivedByType.get(WILDCARD_RESOURCE)];
      const derivedRoles: CompiledDerivedRole[] = [];
      const staticRoles = new Set<string>();
      for (const role of roles) {
        const derived = scopes.map((s) => s?.get(role)).find((d) => d !== undefined);
        if (derived) derivedRoles.push(derived);
        else staticRoles.add(role);
      }
      const rule: CompiledRule = {
        policy,
        name: def.name,
        effect: def.effect,
        actions: def.actions.map((a) => a.pattern),
        anyRole,
        staticRoles,
        derivedRoles,
        condition,
        conditionSource: def.when?.text ?? '',
        ordinal: ordinal++,
      };
      let list = rulesByType.get(doc.resource);
      if (!list) rulesByType.set(doc.resource, (list = []));
      list.push(rule);
    }
  }

  for (const { doc, env, variables } of units) checkDocumentCosts(doc, env, variables, options.limits ?? DEFAULT_COST_ESTIMATE_LIMITS, issues);

  if (issues.length > 0) {
    issues.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column));
    throw new PolicyLoadError(issues);
  }

  const wildcardRules = rulesByType.get(WILDCARD_RESOURCE) ?? [];
  const indexes = new Map<string, ResourceTypeIndex>();
  for (const [type, rules] of rulesByType) {
    if (type === WILDCARD_RESOURCE) continue;
    indexes.set(type, buildResourceTypeIndex([...rules, ...wildcardRules], true));
  }
  const fallback = buildResourceTypeIndex(wildcardRules, false);
  const policies: PolicySetSummary[] = units.map(({ doc }) => ({
    id: doc.id,
    resource: doc.resource,
    rules: doc.rules.length,
    derivedRoles: doc.derivedRoles.length,
    variables: doc.variables.length,
  }));
  return {
    revision: policyRevision(files),
    policies,
    resourceTypes: [...indexes.keys()].sort(),
    ruleCount: ordinal,
    indexFor: (type) => indexes.get(type) ?? fallback,
  };
}
