/** The transport section: defaults, validation messages, and the grpc-js options it becomes. */
import { expect } from 'chai';
import { ConfigError, DEFAULT_CONFIG, loadConfig, validateConfig } from '../../src/config/load.js';
import { grpcTransportOptions } from '../../src/grpc/server.js';

function problems(extra: Record<string, unknown>): string[] {
  try {
    validateConfig({ ...(DEFAULT_CONFIG as unknown as Record<string, unknown>), ...extra });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
}

describe('transport settings', () => {
  it('has the documented defaults', () => {
    expect(loadConfig({}, {}).transport).to.deep.equal({
      maxConnections: 1000,
      maxConcurrentStreams: 1000,
      requestTimeoutMs: 10_000,
      maxPendingRequests: 1000,
      maxPendingBytes: 64 * 1024 * 1024,
      idleTimeoutMs: 300_000,
      keepaliveTimeMs: 60_000,
      keepaliveTimeoutMs: 20_000,
      maxConnectionAgeMs: 0,
      maxConnectionAgeGraceMs: 0,
      maxSessionMemoryMb: 32,
    });
  });

  it('names the setting, the range and the value of every bad one, and unknown ones', () => {
    const found = problems({ transport: { ...DEFAULT_CONFIG.transport, maxConnections: 0, requestTimeoutMs: 5, maxConcurrentStreams: 'many', maxStreams: 3 } });
    expect(found).to.include.members([
      'transport.maxStreams: unknown setting in configuration (known: maxConnections, maxConcurrentStreams, requestTimeoutMs, maxPendingRequests, maxPendingBytes, idleTimeoutMs, keepaliveTimeMs, keepaliveTimeoutMs, maxConnectionAgeMs, maxConnectionAgeGraceMs, maxSessionMemoryMb)',
      'transport.maxConnections: must be an integer from 1 to 1000000 (got 0)',
      'transport.requestTimeoutMs: must be an integer from 100 to 600000 (got 5)',
      'transport.maxConcurrentStreams: must be an integer from 1 to 1000000 (got "many")',
    ]);
  });

  it('refuses a pending-bytes budget smaller than the largest message allowed', () => {
    const found = problems({ limits: { ...DEFAULT_CONFIG.limits, maxMessageBytes: 4 * 1024 * 1024 }, transport: { ...DEFAULT_CONFIG.transport, maxPendingBytes: 1024 * 1024 } });
    expect(found).to.deep.equal([
      'transport.maxPendingBytes: 1048576 is below limits.maxMessageBytes (4194304), so the largest request allowed could never arrive; raise it to at least 4194304',
    ]);
  });

  it('becomes grpc-js options, leaving out the ones set to 0 (off), which grpc-js would read as "at once"', () => {
    expect(grpcTransportOptions(DEFAULT_CONFIG.transport)).to.deep.equal({
      'grpc.max_concurrent_streams': 1000,
      'grpc.keepalive_time_ms': 60_000,
      'grpc.keepalive_timeout_ms': 20_000,
      'grpc-node.max_session_memory': 32,
      'grpc.max_connection_idle_ms': 300_000,
    });
    expect(grpcTransportOptions({ ...DEFAULT_CONFIG.transport, idleTimeoutMs: 0, maxConnectionAgeMs: 600_000, maxConnectionAgeGraceMs: 30_000 })).to.deep.include({
      'grpc.max_connection_age_ms': 600_000,
      'grpc.max_connection_age_grace_ms': 30_000,
    }).and.not.have.property('grpc.max_connection_idle_ms');
  });
});
