import type { CompiledCondition, CompiledDerivedRole, CompiledPolicy, Effect, PolicySetSummary } from '../engine/model.js';
import { celBaseEnvironment } from '../cel/environment.js';
import { checkDocumentCosts, DEFAULT_COST_ESTIMATE_LIMITS, type CostEstimateLimits } from './cost.js';
import { attributeReads, rawAttributeReads, type AttributeRead, type RawRead } from './attribute-reads.js';
import { compileDeclarations, type CompiledDeclarationsUnit } from './declarations.js';
import type { CoverageHooks, CoverageSite } from './coverage-hooks.js';
import { checkExpression } from './expression.js';
import type { SourceExpression } from './document.js';
import type { PolicyIssue, SourcePosition } from './issues.js';
import { parsePolicyFile } from './parse.js';
import { pathOrderKey } from './revision.js';
import { sharedStringList } from './shared-values.js';
import type { Work } from './slices.js';
import { compileLimits, type UnitLimit } from './usage-compile.js';
import { compileVariables, newVariablesEnvCache, type VariablesEnvCache } from './variables.js';

/** A rule as compiled from its own file; its roles are resolved against the set when indexes are built. */
export interface UnitRule {
  readonly name: string;
  readonly position: SourcePosition;
  readonly effect: Effect;
  readonly actions: readonly string[];
  readonly roles: readonly string[] | undefined;
  readonly condition: CompiledCondition | undefined;
  readonly conditionSource: string;
  /** Its condition did not compile (the file has an issue for it). */
  readonly broken: boolean;
}

export interface UnitDerivedRole {
  readonly name: string;
  readonly position: SourcePosition;
  /** Undefined when its condition did not compile. */
  readonly role: CompiledDerivedRole | undefined;
}

/** A role a rule (or a derived role's parentRoles) names, for the declarations check. */
export interface RoleReference {
  readonly name: string;
  readonly position: SourcePosition;
  /** e.g. `rule "approve"` or `derived role "owner"`. */
  readonly where: string;
  /** From parentRoles: must be a static role (a derived role cannot be a parent). */
  readonly parent: boolean;
}

/** The attribute reads of one expression of a document (a condition, a variable, a limit's key). */
export interface ReadGroup {
  /** e.g. `rule "approve"`. */
  readonly where: string;
  /** What the declarations check looks at (shared by every expression with the same text). */
  readonly raw: readonly RawRead[];
  /** The read at index i at this site, with its positions: made only for a read that gets an issue. */
  read(i: number): AttributeRead;
}

/** What a document refers to by name, collected once at compile time (src/policy/declared-check.ts). */
export interface DocumentReferences {
  readonly roles: readonly RoleReference[];
  readonly readGroups: readonly ReadGroup[];
}

/** One policy document, compiled on its own. */
export interface UnitDocument {
  readonly id: string;
  readonly file: string;
  readonly resource: string;
  /** Orders documents across the set: file path order, then position in the file. */
  readonly orderKey: string;
  readonly policy: CompiledPolicy;
  readonly summary: PolicySetSummary;
  readonly derivedRoles: readonly UnitDerivedRole[];
  readonly rules: readonly UnitRule[];
  /** Usage limits (usage-compile.ts); absent when the document declares none. */
  readonly limits?: readonly UnitLimit[];
  readonly references: DocumentReferences;
}

/**
 * One file, parsed, checked and with every CEL expression compiled: everything that depends on
 * this file alone. Cached by path and content hash, so an unchanged file is never compiled again.
 */
export interface FileUnit {
  readonly path: string;
  readonly sha256: string;
  readonly documents: readonly UnitDocument[];
  /** Problems found in this file alone (YAML, structure, CEL); set-level ones are found later. */
  readonly issues: readonly PolicyIssue[];
  /** Resource types its documents govern ("*" included). */
  readonly resources: ReadonlySet<string>;
  /** Expressions compiled for it (to bound the environments' caches). */
  readonly expressions: number;
  /** Read with exact positions; a fast-read unit (positions line 0) is read again before its positions are reported. */
  readonly precise: boolean;
  /** Its `kind: Declarations` documents, schemas compiled (normally none, or one for the set). */
  readonly declarations: readonly CompiledDeclarationsUnit[];
}

/**
 * Typed CEL environments shared by every file compiled through it (policies whose variables have the
 * same names and types share one environment, and compiled expressions are shared per environment
 * and text). The caches grow with every distinct expression ever compiled, so after enough changes
 * the pool starts afresh: files compiled later get new environments, and the old ones are released
 * with the last file that uses them.
 */
export class EnvironmentPool {
  private cache: VariablesEnvCache = newVariablesEnvCache();
  private compiledSinceRenewal = 0;

  get envCache(): VariablesEnvCache {
    return this.cache;
  }

  count(expressions: number): void {
    this.compiledSinceRenewal += expressions;
  }

  /** Called between compilations with the number of expressions the live set holds. */
  renewIfGrown(liveExpressions: number): void {
    if (this.compiledSinceRenewal > 2 * liveExpressions + 2048) {
      this.cache = newVariablesEnvCache();
      this.compiledSinceRenewal = 0;
    }
  }
}

/** Where an expression reads attributes: the ReadGroup itself (one object per expression; sets have ~20,000). */
class ReadSite implements ReadGroup {
  private reads: AttributeRead[] | undefined;
  constructor(
    private readonly ast: Parameters<typeof attributeReads>[0],
    /** The expression's positionAt only (a fast-read file's is one function for the file). */
    private readonly positionAt: SourceExpression['positionAt'],
    readonly where: string,
  ) {}

  get raw(): readonly RawRead[] {
    return rawAttributeReads(this.ast);
  }

  read(i: number): AttributeRead {
    return (this.reads ??= attributeReads(this.ast, this.positionAt))[i]!;
  }
}

/**
 * The attribute paths are listed when first asked for: only the declarations check reads them, and
 * a set without declarations never does (a first load of 1,000 types then skips ~10,000 lists of
 * paths). The check itself runs at load as before, on the same lists; a read's positions are worked
 * out only when it is reported, from the expression's source, which each site keeps for that.
 */
function referencesOf(roles: readonly RoleReference[], sites: readonly ReadSite[]): DocumentReferences {
  return { roles, readGroups: sites };
}

/**
 * A fast-read document's role references, listed when first asked for (only the declarations check
 * asks): a fast read found no problem and has one position for the whole file, so the rules and
 * derived roles hold all a reference says, and a 10,000-type set keeps ~90,000 fewer objects.
 */
class FastReadReferences implements DocumentReferences {
  private list: RoleReference[] | undefined;
  constructor(
    private readonly derivedRoles: readonly UnitDerivedRole[],
    private readonly rules: readonly UnitRule[],
    readonly readGroups: readonly ReadGroup[],
  ) {}

  get roles(): readonly RoleReference[] {
    if (this.list) return this.list;
    // The same references, in the same order, as a precise read lists as it compiles.
    const out: RoleReference[] = [];
    for (const d of this.derivedRoles) {
      const where = `derived role "${d.name}"`;
      for (const name of d.role?.parentRoles ?? []) out.push({ name, position: d.position, where, parent: true });
    }
    for (const r of this.rules) {
      const where = `rule "${r.name}"`;
      for (const name of r.roles ?? []) if (name !== '*') out.push({ name, position: r.position, where, parent: false });
    }
    return (this.list = out);
  }
}

/** Parses and compiles one file; never throws (every problem is an issue of the unit). */
export function* compileFileUnit(
  file: { readonly path: string; readonly text: string; readonly sha256: string },
  pool: EnvironmentPool,
  limits: CostEstimateLimits = DEFAULT_COST_ESTIMATE_LIMITS,
  precise = false,
  coverage?: CoverageHooks,
): Work<FileUnit> {
  const parsed = parsePolicyFile(file, precise);
  const issues: PolicyIssue[] = [...parsed.issues];
  const base = celBaseEnvironment();
  const pathKey = pathOrderKey(file.path);
  const documents: UnitDocument[] = [];
  const resources = new Set<string>();
  let expressions = 0;
  for (let index = 0; index < parsed.documents.length; index++) {
    yield;
    const doc = parsed.documents[index]!;
    resources.add(doc.resource);
    // Coverage (verdict test --coverage only): every site is announced, every program wrapped.
    let finalEnv: (() => import('@marcbachmann/cel-js').Environment) | undefined;
    const site = (kind: CoverageSite['kind'], name: string, position: SourcePosition): CoverageSite => ({ kind, policy: doc.id, file: file.path, name, position });
    const wrapVariable = coverage
      ? (name: string, checked: NonNullable<ReturnType<typeof checkExpression>>) => {
          const def = doc.variables.find((v) => v.name === name)!;
          const s = site('variable', name, def.position);
          coverage.site(s);
          return coverage.wrap(s, { source: def.expression, ast: checked.ast, env: () => finalEnv!() }, checked.program);
        }
      : undefined;
    const vars = compileVariables(base, doc.variables, issues, pool.envCache, wrapVariable);
    finalEnv = () => vars.env;
    expressions += doc.variables.length;
    const roleRefs: RoleReference[] = [];
    const readSites: ReadSite[] = [];
    const readsOf = (ast: Parameters<typeof attributeReads>[0] | undefined, source: SourceExpression, where: string) => {
      if (ast) readSites.push(new ReadSite(ast, source.positionAt, where));
    };
    for (const def of doc.variables) readsOf(vars.checked.get(def.name)?.ast, def.expression, `variables.${def.name}`);
    const policy: CompiledPolicy = { id: doc.id, resource: doc.resource, createVariables: vars.factory.create, hasVariables: doc.variables.length > 0 };
    // One label string per rule and derived role, shared by its read site and role references.
    const derivedRoles: UnitDerivedRole[] = doc.derivedRoles.map((def) => {
      expressions++;
      const where = `derived role "${def.name}"`;
      const checked = checkExpression(vars.env, def.when, where, issues, true);
      readsOf(checked?.ast, def.when, where);
      if (parsed.precise) def.parentRoles.forEach((name, i) => roleRefs.push({ name, position: def.parentRolePositions?.[i] ?? def.position, where, parent: true }));
      let program = checked?.program;
      if (coverage && checked) {
        const s = site('derivedRole', def.name, def.position);
        coverage.site(s);
        program = coverage.wrap(s, { source: def.when, ast: checked.ast, env: () => vars.env }, checked.program);
      }
      const role: CompiledDerivedRole | undefined = checked && { name: def.name, policy, parentRoles: def.parentRoles, condition: program!, source: def.when.text };
      return { name: def.name, position: def.position, role };
    });
    const rules: UnitRule[] = doc.rules.map((def) => {
      let condition: CompiledCondition | undefined;
      let broken = false;
      const where = `rule "${def.name}"`;
      if (def.when) {
        expressions++;
        const checked = checkExpression(vars.env, def.when, where, issues, true);
        readsOf(checked?.ast, def.when, where);
        if (checked) condition = checked.program;
        else broken = true;
        if (coverage && checked) condition = coverage.wrap(site('rule', def.name, def.position), { source: def.when, ast: checked.ast, env: () => vars.env }, checked.program);
      }
      coverage?.site(site('rule', def.name, def.position));
      if (parsed.precise) {
        def.roles?.forEach((name, i) => {
          if (name !== '*') roleRefs.push({ name, position: def.rolePositions?.[i] ?? def.position, where, parent: false });
        });
      }
      return {
        name: def.name,
        position: def.position,
        effect: def.effect,
        actions: sharedStringList(def.actions.map((a) => a.pattern)),
        roles: def.roles && sharedStringList(def.roles),
        condition,
        conditionSource: def.when?.text ?? '',
        broken,
      };
    });
    // Each condition's worst case under the request limits (CEL_COST): it depends on this file alone.
    checkDocumentCosts(doc, vars.env, vars.checked, limits, issues);
    const usage = doc.limits ? compileLimits(doc, policy, vars, limits, issues) : undefined;
    if (usage) {
      expressions += usage.expressions;
      for (const c of usage.checked) readsOf(c.checked.ast, c.source, c.where);
    }
    documents.push({
      ...(usage ? { limits: usage.limits } : {}),
      id: doc.id,
      file: file.path,
      resource: doc.resource,
      orderKey: `${pathKey}\u0001${String(index).padStart(6, '0')}`,
      policy,
      summary: { id: doc.id, resource: doc.resource, rules: doc.rules.length, derivedRoles: doc.derivedRoles.length, variables: doc.variables.length },
      derivedRoles,
      rules,
      references: parsed.precise ? referencesOf(roleRefs, readSites) : new FastReadReferences(derivedRoles, rules, readSites),
    });
  }
  const declarations = parsed.declarations.map((d) => compileDeclarations(d, issues));
  pool.count(expressions);
  // A problem in a fast-read file needs its exact position: read it again, precisely.
  if (issues.length > 0 && !parsed.precise) return yield* compileFileUnit(file, pool, limits, true, coverage);
  return { path: file.path, sha256: file.sha256, documents, issues, resources, expressions, precise: parsed.precise, declarations };
}
