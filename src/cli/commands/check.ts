import { readFile } from 'node:fs/promises';
import { decide } from '../../engine/evaluate.js';
import { parseCheckRequest, InvalidRequestError } from '../../engine/input.js';
import { loadPolicyDirectory, PolicyLoadError, formatIssue } from '../../policy/index.js';
import { createAuthorizationClient, toProtoCheckRequest, unary, type JsonCheckRequest } from '../../grpc/client.js';
import { localCliDecision, toCliDecision, type CliDecision } from '../decision-output.js';
import type { CliOutput } from '../output.js';
import { EXIT, type CommandSpec, type ParsedArgs } from '../spec.js';

const SHAPE_ONLY = { maxAttributeDepth: Number.MAX_SAFE_INTEGER, maxRoles: Number.MAX_SAFE_INTEGER, maxIdentifierLength: Number.MAX_SAFE_INTEGER, maxAttributes: Number.MAX_SAFE_INTEGER, maxAttributeItems: Number.MAX_SAFE_INTEGER, maxStringBytes: Number.MAX_SAFE_INTEGER, maxAttributeBytes: Number.MAX_SAFE_INTEGER };
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

export const checkCommand: CommandSpec = {
  name: 'check',
  summary: 'decide one request and print the decision as JSON',
  usage: [
    'check [--policies DIR] --request FILE|- [--explain] [--now RFC3339]',
    'check --server HOST:PORT --request FILE|- [--explain]',
  ],
  details: [
    'Locally (--policies) or by asking a running server (--server), the same JSON is printed:\n' +
      'decision, allowed, policy, rule, reason, revision, decisionId ("" locally), errors, and with\n' +
      '--explain the explanation (docs/api.md, "CLI decision output").',
  ],
  flags: [
    { name: 'policies', type: 'string', value: 'DIR', description: 'decide in this process with the policies in DIR', default: 'policies' },
    { name: 'server', type: 'string', value: 'HOST:PORT', description: 'ask a running verdict serve instead (plaintext gRPC, 10 s deadline)' },
    { name: 'request', type: 'string', value: 'FILE|-', description: 'the request as JSON; - reads standard input', required: true },
    { name: 'explain', type: 'boolean', description: 'list every rule considered and why it did or did not apply' },
    {
      name: 'now',
      type: 'string',
      value: 'RFC3339',
      description: 'the time conditions see as now, e.g. 2026-03-01T09:00:00Z (local only)',
      defaultNote: 'the current time',
      validate: (v) => (RFC3339.test(v) && !Number.isNaN(new Date(v).getTime()) ? undefined : 'must be an RFC 3339 timestamp such as 2026-03-01T09:00:00Z'),
    },
  ],
  conflicts: [
    { flags: ['policies', 'server'], why: 'a server decides with the policies it serves' },
    { flags: ['now', 'server'], why: 'a server decides with its own clock' },
  ],
  examples: [
    { what: 'decide locally with the example policies', command: 'verdict check --policies policies --request examples/requests/alice-edits-her-draft.json' },
    { what: 'ask a running server, with the explanation', command: 'verdict check --server 127.0.0.1:50051 --request examples/requests/bob-deletes-legal-hold.json --explain' },
    { what: 'a script that only needs the answer', command: 'verdict check --request req.json | jq .allowed' },
  ],
  exitCodes: [
    { code: EXIT.OK, meaning: 'allowed' },
    { code: EXIT.FAILURE, meaning: 'no decision: the policy set is rejected, the server cannot be reached or failed' },
    { code: EXIT.USAGE, meaning: 'usage error, or the request is unreadable or invalid' },
    { code: EXIT.DENY, meaning: 'denied' },
  ],
  run: runCheck,
};

async function readAll(source: string): Promise<string> {
  if (source !== '-') return readFile(source, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function print(io: CliOutput, decision: CliDecision): number {
  io.out(JSON.stringify(decision, null, 2));
  return decision.allowed ? EXIT.OK : EXIT.DENY;
}

async function runCheck(args: ParsedArgs, io: CliOutput): Promise<number> {
  const requestSource = args.string('request')!;
  let raw: unknown;
  try {
    raw = JSON.parse(await readAll(requestSource));
  } catch (err) {
    io.err(`cannot read request ${requestSource}: ${(err as Error).message}`);
    return EXIT.USAGE;
  }
  const explain = args.flag('explain');
  const server = args.string('server');
  if (server) {
    // The same checks as a local request, so a malformed file fails alike in both modes; limits
    // are left to the server, whose configuration may differ from the defaults.
    try {
      parseCheckRequest(raw, SHAPE_ONLY);
    } catch (err) {
      if (!(err instanceof InvalidRequestError)) throw err;
      io.err(`invalid request: ${err.message}`);
      return EXIT.USAGE;
    }
    return checkRemote(server, raw as JsonCheckRequest, explain, io);
  }
  const nowText = args.string('now');
  const now = nowText ? new Date(nowText) : new Date();
  const dir = args.string('policies')!;
  let set;
  try {
    set = await loadPolicyDirectory(dir);
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    for (const issue of err.issues) io.err(formatIssue(issue));
    return EXIT.FAILURE;
  }
  try {
    const request = parseCheckRequest(raw);
    return print(io, localCliDecision(decide(set, request, { now, explain }), explain));
  } catch (err) {
    if (err instanceof InvalidRequestError) {
      io.err(`invalid request: ${err.message}`);
      return EXIT.USAGE;
    }
    throw err;
  }
}

/** Asks a running Verdict over gRPC. */
async function checkRemote(server: string, raw: JsonCheckRequest, explain: boolean, io: CliOutput): Promise<number> {
  const client = createAuthorizationClient(server);
  try {
    const response = await unary<Parameters<typeof toCliDecision>[0]>(client, 'Check', toProtoCheckRequest(raw, { explain }));
    return print(io, toCliDecision(response, explain));
  } catch (err) {
    const e = err as { code?: number; details?: string; message: string };
    // INVALID_ARGUMENT: the request is at fault (e.g. over one of the server's limits), as locally.
    if (e.code === 3) {
      io.err(`invalid request: ${e.details ?? e.message}`);
      return EXIT.USAGE;
    }
    io.err(`check failed: ${e.details ?? e.message}`);
    return EXIT.FAILURE;
  } finally {
    client.close();
  }
}
