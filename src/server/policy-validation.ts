import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CompiledPolicySet, PolicySetSummary } from '../engine/model.js';
import { PolicyLoadError, type CompileOptions, type PolicyIssue, type PolicySourceFile } from '../policy/index.js';

/** What the validation thread answers: the set's summary, or why it was rejected. */
export type ValidationAnswer =
  | { readonly ok: true; readonly revision: string; readonly policies: readonly PolicySetSummary[]; readonly resourceTypes: readonly string[]; readonly ruleCount: number }
  | { readonly ok: false; readonly message: string; readonly issues?: readonly PolicyIssue[] };

/**
 * Compiles a policy set in a short-lived child process and keeps only its summary. A cluster
 * primary validates every reload but never decides; compiling on its own heap left it holding
 * the compile's memory (a 1,000-type set: about 130 MB RSS, which V8 and malloc do not give
 * back; a worker thread still left about 40 MB). A process gives everything back when it exits.
 */
export function validateInChild(sources: readonly PolicySourceFile[], options: CompileOptions = {}): Promise<CompiledPolicySet> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(new URL('./policy-validation-child.js', import.meta.url)), [], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [],
    });
    let answered = false;
    child.once('message', (answer: ValidationAnswer) => {
      answered = true;
      if (answer.ok) resolve(summarySet(answer));
      else reject(answer.issues ? new PolicyLoadError(answer.issues) : new Error(answer.message));
    });
    child.once('error', (err) => {
      answered = true;
      reject(err);
    });
    child.once('exit', (code, signal) => {
      if (!answered) reject(new Error(`policy validation process exited (${signal ?? `code ${code}`}) without an answer`));
    });
    child.send({ sources, options });
  });
}

function summarySet(answer: Extract<ValidationAnswer, { ok: true }>): CompiledPolicySet {
  const { revision, policies, resourceTypes, ruleCount } = answer;
  return {
    revision,
    policies,
    resourceTypes,
    ruleCount,
    indexFor: () => {
      throw new Error('this policy store only validates; it does not decide');
    },
  };
}
