import { PolicyCompiler, PolicyLoadError, formatIssue, readPolicySources, withDigest } from '../../policy/index.js';
import { EXIT, type CommandSpec } from '../spec.js';

export const validateCommand: CommandSpec = {
  name: 'validate',
  summary: 'check every policy file under DIR; print every problem with file:line:column',
  positionals: [{ name: 'DIR', description: 'policy directory, read recursively (default: policies)' }],
  flags: [],
  examples: [
    { what: 'check the example policies; prints the revision the server would serve', command: 'verdict validate policies/' },
  ],
  exitCodes: [
    { code: EXIT.OK, meaning: 'the policy set loads' },
    { code: EXIT.FAILURE, meaning: 'the policy set is rejected (every problem is printed on stderr)' },
    { code: EXIT.USAGE, meaning: 'usage error' },
  ],
  async run(args, io) {
    const dir = args.positionals[0] ?? 'policies';
    try {
      const candidate = new PolicyCompiler().compileNow((await readPolicySources(dir)).map(withDigest));
      if (!candidate.set) throw new PolicyLoadError(candidate.issues);
      const set = candidate.set;
      for (const w of candidate.warnings) io.err(`warning: ${w}`);
      io.out(`OK ${dir}: ${set.policies.length} policies, ${set.ruleCount} rules, ${set.resourceTypes.length} resource types, revision ${set.revision}`);
      return EXIT.OK;
    } catch (err) {
      if (!(err instanceof PolicyLoadError)) throw err;
      for (const issue of err.issues) io.err(formatIssue(issue));
      io.err(`${dir}: ${err.issues.length} error${err.issues.length === 1 ? '' : 's'}; policy set rejected`);
      return EXIT.FAILURE;
    }
  },
};
