/**
 * The candidate that lost (docs/performance.md, "node:http or fastify"): Verdict's AuthZEN API on
 * fastify instead of node:http, for the A/B in bench/http/framework-ab.ts. Same AuthzenApi, same
 * DecisionService (events off), same policies; fastify parses the JSON body (bodyLimit), routes,
 * and serializes the answer from a response JSON schema (fast-json-stringify). fastify is not a
 * dependency of Verdict: install it next to the checkout first.
 *
 *   npm install --no-save fastify@5.12.8
 *   node dist/bench/http/fastify-server.js --policies policies --listen 127.0.0.1:8081
 */
import { AuthzenApi } from '../../src/http/authzen-api.js';
import { HttpError } from '../../src/http/errors.js';
import { DEFAULT_CONFIG } from '../../src/config/load.js';
import { DISCARDING_SINK } from '../../src/service/decision-record.js';
import { DecisionService } from '../../src/service/decision-service.js';
import { PolicyStore } from '../../src/server/policy-store.js';
import { parseFlags } from '../util.js';

const DECISION = {
  type: 'object',
  properties: {
    decision: { type: 'boolean' },
    context: {
      type: 'object',
      properties: {
        decision_id: { type: 'string' },
        reason: { type: 'string' },
        policy: { type: 'string' },
        rule: { type: 'string' },
        revision: { type: 'string' },
        errors: { type: 'array', items: { type: 'object', additionalProperties: true } },
        explanation: { type: 'array', items: { type: 'object', additionalProperties: true } },
      },
    },
  },
} as const;

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const listen = flags.str('listen', '127.0.0.1:8081');
  const store = PolicyStore.forDirectory(flags.str('policies', 'policies'));
  const loaded = await store.start();
  if (loaded.result.status === 'rejected') throw new Error(loaded.result.message);
  const limits = DEFAULT_CONFIG.limits;
  const api = new AuthzenApi({ decisions: new DecisionService(store, DISCARDING_SINK), limits, rolesProperty: 'roles', maxEvaluations: limits.maxBatchItems });
  let fastify: (options: Record<string, unknown>) => any; // eslint-disable-line @typescript-eslint/no-explicit-any
  try {
    fastify = ((await import('fastify' as string)) as { default: typeof fastify }).default;
  } catch {
    throw new Error('fastify is not installed: npm install --no-save fastify@5.12.8');
  }
  const app = fastify({ logger: false, bodyLimit: limits.maxMessageBytes });
  const handle = (run: (body: Record<string, unknown>, call: { requestId: string; caller: undefined }) => Promise<unknown>) => async (req: any, reply: any) => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const rid = req.headers['x-request-id'];
    if (typeof rid === 'string') reply.header('x-request-id', rid);
    reply.header('cache-control', 'no-store');
    try {
      return await run(req.body as Record<string, unknown>, { requestId: typeof rid === 'string' ? rid : '', caller: undefined });
    } catch (err) {
      if (err instanceof HttpError) return reply.code(err.status).send({ error: { status: err.status, code: err.code, message: err.message } });
      throw err;
    }
  };
  app.post('/access/v1/evaluation', { schema: { response: { 200: DECISION } } }, handle((b, c) => api.evaluation(b, c)));
  app.post('/access/v1/evaluations', { schema: { response: { 200: { type: 'object', properties: { ...DECISION.properties, evaluations: { type: 'array', items: DECISION } } } } } }, handle((b, c) => api.evaluations(b, c)));
  const colon = listen.lastIndexOf(':');
  await app.listen({ host: listen.slice(0, colon), port: Number(listen.slice(colon + 1)) });
  process.stdout.write(`fastify AuthZEN server on ${listen}\n`);
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
});
