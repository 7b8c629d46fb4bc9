import { expect } from 'chai';
import { DEFAULT_CONFIG } from '../../src/config/load.js';
import { desiredStream } from '../../src/events/stream.js';
import { NATS_URL, randomToken, Resources, startVerdict, uniqueNames, waitFor, writePolicies, type ServerProc } from '../support/events-harness.js';
import { healthStatus } from './trail-probe.js';

async function httpStatus(server: ServerProc, path: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://${String(server.log('verdict serving')!.http)}${path}`);
  return { status: r.status, body: await r.text() };
}

/**
 * The AuthZEN HTTP API's /healthz and /readyz follow events.healthRequiresTrail like the gRPC
 * health service's own status: a load balancer probing HTTP moves traffic off an instance whose
 * decisions are not being recorded. The trail is made unhealthy by a stream that is missing
 * (events.manageStream: false), and healthy again when the operator creates it.
 */
describe('events: AuthZEN health follows events.healthRequiresTrail (real server, real NATS)', function () {
  this.timeout(40_000);
  const res = new Resources();
  afterEach(() => res.cleanup());
  after(() => res.cleanup());

  async function serve(names: { stream: string; prefix: string }, requiresTrail: boolean): Promise<ServerProc> {
    return startVerdict(res, {
      policies: writePolicies(res.tmpDir('policies')), natsUrl: NATS_URL, ...names, spoolDir: res.tmpDir('spool'), instanceId: `vt-${randomToken(3)}`,
      configYaml: `http:\n  listen: 127.0.0.1:0\nevents:\n  manageStream: false\n  streamCheckIntervalMs: 200\n  healthRequiresTrail: ${requiresTrail}\n`,
    });
  }

  it('healthRequiresTrail: true: 503 NOT_SERVING while the trail is unhealthy, 200 once it is healthy, exactly as gRPC health', async () => {
    const names = uniqueNames();
    res.stream(NATS_URL, names.stream);
    const server = await serve(names, true);
    await server.waitForLog(/decision stream is not as required/, 15_000);
    for (const path of ['/healthz', '/readyz']) expect(await httpStatus(server, path)).to.deep.equal({ status: 503, body: '{"status":"NOT_SERVING"}' });
    expect(await healthStatus(server.address, '')).to.equal('NOT_SERVING');
    // The operator creates the stream: the trail is healthy again, and so are both health views.
    const nc = await res.nats(NATS_URL);
    await (await nc.jetstreamManager()).streams.add(desiredStream({ ...DEFAULT_CONFIG.events, stream: names.stream, subjectPrefix: names.prefix }));
    await waitFor('HTTP health SERVING', async () => (await httpStatus(server, '/readyz')).status === 200, 15_000, 100);
    expect(await httpStatus(server, '/healthz')).to.deep.equal({ status: 200, body: '{"status":"SERVING"}' });
    expect(await healthStatus(server.address, '')).to.equal('SERVING');
  });

  it('healthRequiresTrail: false (default): HTTP health stays 200 while the trail is unhealthy, like gRPC', async () => {
    const names = uniqueNames();
    const server = await serve(names, false);
    await server.waitForLog(/decision stream is not as required/, 15_000);
    expect(await httpStatus(server, '/readyz')).to.deep.equal({ status: 200, body: '{"status":"SERVING"}' });
    expect(await healthStatus(server.address, '')).to.equal('SERVING');
  });
});
