import { readFile } from 'node:fs/promises';
import { decide } from '../../engine/evaluate.js';
import { parseCheckRequest, InvalidRequestError } from '../../engine/input.js';
import { loadPolicyDirectory, PolicyLoadError, formatIssue } from '../../policy/index.js';
import { createAuthorizationClient, toProtoCheckRequest, unary, type JsonCheckRequest } from '../../grpc/client.js';
import { parseArgs, stringFlag, UsageError } from '../args.js';
import type { CliOutput } from '../output.js';

export const checkUsage =
  'verdict check (--policies DIR | --server HOST:PORT) --request FILE|- [--explain] [--now RFC3339]   decide one request, print the decision as JSON';

async function readAll(source: string): Promise<string> {
  if (source !== '-') return readFile(source, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function checkCommand(argv: readonly string[], io: CliOutput): Promise<number> {
  const args = parseArgs(argv, ['explain'], ['policies', 'request', 'now', 'server']);
  const requestSource = stringFlag(args, 'request');
  if (!requestSource) throw new UsageError('--request FILE|- is required');
  let raw: unknown;
  try {
    raw = JSON.parse(await readAll(requestSource));
  } catch (err) {
    io.err(`cannot read request ${requestSource}: ${(err as Error).message}`);
    return 2;
  }
  const server = stringFlag(args, 'server');
  if (server) return checkRemote(server, raw as JsonCheckRequest, args.flags.has('explain'), io);
  const nowText = stringFlag(args, 'now');
  const now = nowText ? new Date(nowText) : new Date();
  if (Number.isNaN(now.getTime())) throw new UsageError(`--now ${nowText} is not an RFC 3339 timestamp`);
  const dir = stringFlag(args, 'policies') ?? 'policies';
  let set;
  try {
    set = await loadPolicyDirectory(dir);
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    for (const issue of err.issues) io.err(formatIssue(issue));
    return 1;
  }
  try {
    const request = parseCheckRequest(raw);
    const decision = decide(set, request, { now, explain: args.flags.has('explain') });
    io.out(JSON.stringify(decision, null, 2));
    return decision.effect === 'ALLOW' ? 0 : 3;
  } catch (err) {
    if (err instanceof InvalidRequestError) {
      io.err(`invalid request: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

/** Asks a running Verdict over gRPC; the answer is printed as the service returned it. */
async function checkRemote(server: string, raw: JsonCheckRequest, explain: boolean, io: CliOutput): Promise<number> {
  const client = createAuthorizationClient(server);
  try {
    const response = await unary<{ allowed?: boolean }>(client, 'Check', toProtoCheckRequest(raw, { explain }));
    // proto3 leaves false out on the wire; say it explicitly for people and scripts reading this.
    io.out(JSON.stringify({ ...response, allowed: response.allowed === true }, null, 2));
    return response.allowed ? 0 : 3;
  } catch (err) {
    const e = err as { code?: number; details?: string; message: string };
    io.err(`check failed: ${e.details ?? e.message}`);
    return e.code === 3 ? 2 : 1;
  } finally {
    client.close();
  }
}
