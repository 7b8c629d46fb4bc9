import type { Environment } from '@marcbachmann/cel-js';
import { referencedVariables } from '../cel/environment.js';
import type { VariableDefinition } from './document.js';
import { checkExpression, parseExpression, type CelProgram } from './expression.js';
import type { PolicyIssue } from './issues.js';

/** A per-request holder of a policy's variables: each is computed on first use, then cached. */
export interface VariablesFactory {
  create(activation: Record<string, unknown>): object;
}

const ACTIVATION = Symbol('activation');
const CACHE = Symbol('cache');
interface VariablesInstance {
  [ACTIVATION]: Record<string, unknown>;
  [CACHE]: Map<string, { ok: boolean; value: unknown }>;
}

function makeVariablesClass(names: Iterable<string>, programs: ReadonlyMap<string, CelProgram>): new (activation: Record<string, unknown>) => object {
  class PolicyVariables {
    [ACTIVATION]: Record<string, unknown>;
    [CACHE] = new Map<string, { ok: boolean; value: unknown }>();
    constructor(activation: Record<string, unknown>) {
      this[ACTIVATION] = activation;
    }
  }
  for (const name of names) {
    Object.defineProperty(PolicyVariables.prototype, name, {
      enumerable: true,
      get(this: VariablesInstance) {
        let entry = this[CACHE].get(name);
        if (!entry) {
          // An error is cached too: every use of a broken variable fails the same way.
          try {
            entry = { ok: true, value: programs.get(name)!(this[ACTIVATION]) };
          } catch (err) {
            entry = { ok: false, value: err };
          }
          this[CACHE].set(name, entry);
        }
        if (!entry.ok) throw entry.value;
        return entry.value;
      },
    });
  }
  return PolicyVariables;
}

let typeCounter = 0;

/**
 * Compiles a policy's `variables` into an environment where `variables.NAME` is statically typed
 * (so `variables.typo` fails at load and conditions type-check against each variable's type).
 * Undefined references and cycles are reported; variables are type-checked in dependency order.
 */
export function compileVariables(
  base: Environment,
  definitions: readonly VariableDefinition[],
  issues: PolicyIssue[],
): { env: Environment; factory: VariablesFactory; ok: boolean } {
  const byName = new Map(definitions.map((d) => [d.name, d]));
  const deps = new Map<string, string[]>();
  let ok = true;
  for (const def of definitions) {
    const parsed = parseExpression(base, def.expression, `variables.${def.name}`, issues);
    if (!parsed) {
      ok = false;
      continue;
    }
    const refs = referencedVariables(parsed.ast);
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
  if (!ok) return fallback(base, definitions);

  const types = new Map<string, string>();
  const programs = new Map<string, CelProgram>();
  // One runtime class for every environment built below: a variable's program is checked in an
  // intermediate environment but reads `variables` from the instance the final one creates, and
  // cel-js recognises a value by its class.
  const VariablesClass = makeVariablesClass(order, programs);
  let typed = withVariablesType(base, types, VariablesClass);
  for (const name of order) {
    const def = byName.get(name)!;
    const checked = checkExpression(typed.env, def.expression, `variables.${name}`, issues, false);
    if (!checked) {
      ok = false;
      continue;
    }
    types.set(name, checked.type);
    programs.set(name, checked.program);
    typed = withVariablesType(base, types, VariablesClass);
  }
  if (!ok) return fallback(base, definitions);
  // The runtime class must be the one registered for the type: cel-js checks values by class.
  return { env: typed.env, factory: { create: (activation) => new VariablesClass(activation) }, ok: true };
}

/**
 * After a variable error the set is rejected anyway, but the policy's rules are still checked
 * against `variables` typed as dyn, so one load reports every problem.
 */
function fallback(base: Environment, definitions: readonly VariableDefinition[]): { env: Environment; factory: VariablesFactory; ok: boolean } {
  const types = new Map(definitions.map((d) => [d.name, 'dyn']));
  const { env } = withVariablesType(base, types, makeVariablesClass([], new Map()));
  return {
    env,
    factory: {
      create: () => {
        throw new Error('policy variables failed to compile');
      },
    },
    ok: false,
  };
}

function withVariablesType(
  base: Environment,
  types: ReadonlyMap<string, string>,
  ctor: new (activation: Record<string, unknown>) => object,
): { env: Environment } {
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
  return { env };
}
