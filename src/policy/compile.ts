import type { CompiledPolicySet } from '../engine/model.js';
import type { PolicyFile } from '../service/policy-source.js';
import { PolicyCompiler, type CompileOptions } from './compiler.js';
import type { PolicySourceFile } from './document.js';
import { PolicyLoadError } from './issues.js';
import { sha256Hex } from './revision.js';

export { WILDCARD_RESOURCE } from './assemble.js';
export type { CompileOptions } from './compiler.js';

/** A file as read, with its content hash. */
export function withDigest(file: PolicySourceFile): PolicyFile {
  return { path: file.path, text: file.text, sha256: sha256Hex(file.text) };
}

/**
 * Validates and compiles a whole policy set at once: parses YAML, checks structure, parses and
 * type-checks every CEL expression, bounds each condition's worst-case cost (CEL_COST), resolves
 * variables and derived roles, and indexes rules by resource type and action. Every problem in
 * every file is collected; if there is any, nothing is returned and a PolicyLoadError carries them
 * all (a broken set never half-loads). A server reloads through PolicyCompiler instead, which
 * compiles only what changed.
 */
export function compilePolicySet(files: readonly PolicySourceFile[], options: CompileOptions = {}): CompiledPolicySet {
  const candidate = new PolicyCompiler(options).compileNow(files.map(withDigest));
  if (!candidate.set) throw new PolicyLoadError(candidate.issues);
  return candidate.set;
}
