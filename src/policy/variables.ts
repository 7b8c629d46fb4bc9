import type { Environment } from '@marcbachmann/cel-js';
import { referencedVariables } from '../cel/environment.js';
import type { VariableDefinition } from './document.js';
import { checkExpression, parseExpression, type CelProgram, type CheckedExpression } from './expression.js';
import type { PolicyIssue } from './issues.js';

/** A per-request holder of a policy's variables: each is computed on first use, then cached. */
export interface VariablesFactory {
  create(activation: Record<string, unknown>): object;
}

const ACTIVATION = Symbol('activation');
const PROGRAMS = Symbol('programs');
const CACHE = Symbol('cache');
interface VariablesInstance {
  [ACTIVATION]: Record<string, unknown>;
  [PROGRAMS]: ReadonlyMap<string, CelProgram>;
  [CACHE]: Map<string, { ok: boolean; value: unknown }> | undefined;
}

type VariablesClass = new (activation: Record<string, unknown>, programs: ReadonlyMap<string, CelProgram>) => object;

/**
 * The runtime class of a `variables` type. The programs live on the instance, not in the class,
 * so policies whose variables have the same names and types share one class and one environment
 * (a 1,000-type set built from a template then holds a handful of environments, not thousands).
 */
function makeVariablesClass(names: Iterable<string>): VariablesClass {
  class PolicyVariables {
    [ACTIVATION]: Record<string, unknown>;
    [PROGRAMS]: ReadonlyMap<string, CelProgram>;
    [CACHE]: Map<string, { ok: boolean; value: unknown }> | undefined = undefined;
    constructor(activation: Record<string, unknown>, programs: ReadonlyMap<string, CelProgram>) {
      this[ACTIVATION] = activation;
      this[PROGRAMS] = programs;
    }
  }
  for (const name of names) {
    Object.defineProperty(PolicyVariables.prototype, name, {
      enumerable: true,
      get(this: VariablesInstance) {
        const cache = (this[CACHE] ??= new Map());
        let entry = cache.get(name);
        if (!entry) {
          // An error is cached too: every use of a broken variable fails the same way.
          try {
            entry = { ok: true, value: this[PROGRAMS].get(name)!(this[ACTIVATION]) };
          } catch (err) {
            entry = { ok: false, value: err };
          }
          cache.set(name, entry);
        }
        if (!entry.ok) throw entry.value;
        return entry.value;
      },
    });
  }
  return PolicyVariables;
}

/**
 * Typed `variables` environments of one policy-set compilation, keyed by the policy's variable
 * names and the field types declared so far; classes keyed by the variable names alone.
 */
export interface VariablesEnvCache {
  readonly envs: Map<string, { env: Environment; ctor: VariablesClass }>;
  readonly classes: Map<string, VariablesClass>;
  /**
   * Factories by variable names and compiled programs: policies whose variables are the same (a
   * template repeated on many types) share one factory and one programs map, so checks over many
   * types touch one of each rather than one per policy.
   */
  readonly factories: Map<string, VariablesFactory>;
}

export function newVariablesEnvCache(): VariablesEnvCache {
  return { envs: new Map(), classes: new Map(), factories: new Map() };
}

const programIds = new WeakMap<CelProgram, number>();
let nextProgramId = 1;

function programId(p: CelProgram): number {
  let id = programIds.get(p);
  if (id === undefined) programIds.set(p, (id = nextProgramId++));
  return id;
}

let typeCounter = 0;

/**
 * Compiles a policy's `variables` into an environment where `variables.NAME` is statically typed
 * (so `variables.typo` fails at load and conditions type-check against each variable's type).
 * Undefined references and cycles are reported; variables are type-checked in dependency order.
 */
/**
 * The variables an expression reads, by environment and text: a set repeats its variables on many
 * types, and parsing each again only to find its references cost a tenth of a large set's load.
 * Only expressions that parse are kept (a broken one reports its own position). Bounded.
 */
const refsByText = new WeakMap<Environment, Map<string, ReturnType<typeof referencedVariables>>>();
const MAX_REFS = 4096;

function variableRefs(base: Environment, def: VariableDefinition, issues: PolicyIssue[]): ReturnType<typeof referencedVariables> | undefined {
  let byText = refsByText.get(base);
  const hit = byText?.get(def.expression.text);
  if (hit) return hit;
  const parsed = parseExpression(base, def.expression, `variables.${def.name}`, issues);
  if (!parsed) return undefined;
  const refs = referencedVariables(parsed.ast);
  if (!byText) refsByText.set(base, (byText = new Map()));
  if (byText.size >= MAX_REFS) byText.clear();
  byText.set(def.expression.text, refs);
  return refs;
}

export function compileVariables(
  base: Environment,
  definitions: readonly VariableDefinition[],
  issues: PolicyIssue[],
  cache: VariablesEnvCache = newVariablesEnvCache(),
  /** `verdict test --coverage` only: replaces each variable's program (src/policy/coverage-hooks.ts). */
  wrap?: (name: string, checked: CheckedExpression) => CelProgram,
): CompiledVariables {
  const byName = new Map(definitions.map((d) => [d.name, d]));
  const deps = new Map<string, string[]>();
  let ok = true;
  for (const def of definitions) {
    const refs = variableRefs(base, def, issues);
    if (!refs) {
      ok = false;
      continue;
    }
    for (const ref of refs) {
      if (!byName.has(ref.name)) {
        issues.push({ ...def.expression.positionAt(ref.start), code: 'UNDEFINED_VARIABLE', message: `variables.${def.name}: variable "${ref.name}" is not defined in this policy` });
        ok = false;
      }
    }
    deps.set(def.name, [...new Set(refs.map((r) => r.name).filter((n) => byName.has(n)))]);
  }
  // Depth-first topological order; a back edge is a cycle, reported once with its path.
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const reported = new Set<string>();
  const visit = (name: string, path: string[]): void => {
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...path.slice(path.indexOf(name)), name];
      const def = byName.get(name)!;
      if (!reported.has(name)) {
        issues.push({ ...def.position, code: 'CYCLIC_VARIABLE', message: `variables form a cycle: ${cycle.join(' -> ')}` });
        cycle.forEach((n) => reported.add(n));
      }
      ok = false;
      return;
    }
    state.set(name, 'visiting');
    for (const dep of deps.get(name) ?? []) visit(dep, [...path, name]);
    state.set(name, 'done');
    order.push(name);
  };
  for (const def of definitions) if (deps.has(def.name)) visit(def.name, []);
  if (!ok) return fallback(base, definitions, cache);

  const types = new Map<string, string>();
  const programs = new Map<string, CelProgram>();
  const checkedByName = new Map<string, CheckedExpression>();
  // Every environment of this policy (intermediate and final) registers the same class: a
  // variable's program checked in an intermediate one reads the final instance at run time, and
  // cel-js recognises values by class.
  const names = [...order].sort();
  const namesKey = names.join(',');
  let ctor = cache.classes.get(namesKey);
  if (!ctor) cache.classes.set(namesKey, (ctor = makeVariablesClass(names)));
  const typedFor = (t: ReadonlyMap<string, string>) => typedEnvironment(base, t, cache, ctor!, namesKey);
  let typed = typedFor(types);
  for (const name of order) {
    const def = byName.get(name)!;
    const checked = checkExpression(typed.env, def.expression, `variables.${name}`, issues, false);
    if (!checked) {
      ok = false;
      continue;
    }
    types.set(name, checked.type);
    programs.set(name, wrap ? wrap(name, checked) : checked.program);
    checkedByName.set(name, checked);
    typed = typedFor(types);
  }
  if (!ok) return fallback(base, definitions, cache);
  // A variable's program may have been checked in an intermediate environment; at run time it
  // reads `variables` from an instance of the final type's class, which is what cel-js checks.
  const Ctor = typed.ctor;
  let factoryKey = `${namesKey}#`;
  for (const [name, program] of programs) factoryKey += `${name}=${programId(program)},`;
  let factory = cache.factories.get(factoryKey);
  if (!factory) cache.factories.set(factoryKey, (factory = { create: (activation) => new Ctor(activation, programs) }));
  return { env: typed.env, factory, ok: true, checked: checkedByName };
}

export interface CompiledVariables {
  readonly env: Environment;
  readonly factory: VariablesFactory;
  readonly ok: boolean;
  /** Each variable's checked expression, by name (empty when the variables failed to compile). */
  readonly checked: ReadonlyMap<string, CheckedExpression>;
}

/**
 * After a variable error the set is rejected anyway, but the policy's rules are still checked
 * against `variables` typed as dyn, so one load reports every problem.
 */
function fallback(base: Environment, definitions: readonly VariableDefinition[], cache: VariablesEnvCache): CompiledVariables {
  const types = new Map(definitions.map((d) => [d.name, 'dyn']));
  const { env } = typedEnvironment(base, types, cache, makeVariablesClass(types.keys()), `fallback:${[...types.keys()].join(',')}`);
  return {
    env,
    factory: {
      create: () => {
        throw new Error('policy variables failed to compile');
      },
    },
    ok: false,
    checked: new Map(),
  };
}

/** The environment where `variables` has exactly these fields and types (shared when identical). */
function typedEnvironment(
  base: Environment,
  types: ReadonlyMap<string, string>,
  cache: VariablesEnvCache,
  ctor: VariablesClass,
  namesKey: string,
): { env: Environment; ctor: VariablesClass } {
  const key = `${namesKey}#${[...types.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([n, t]) => `${n}:${t}`).join('|')}`;
  const hit = cache.envs.get(key);
  if (hit) return hit;
  const env = base.clone();
  const typeName = `verdict.Variables${++typeCounter}`;
  const fields: Record<string, string> = {};
  for (const [name, type] of types) fields[name] = type;
  try {
    env.registerType(typeName, { ctor, fields });
  } catch {
    // A type the checker inferred but cannot declare (rare): fall back to dyn for all fields.
    for (const name of Object.keys(fields)) fields[name] = 'dyn';
    env.registerType(typeName, { ctor, fields });
  }
  env.registerVariable('variables', typeName);
  const entry = { env, ctor };
  cache.envs.set(key, entry);
  return entry;
}
