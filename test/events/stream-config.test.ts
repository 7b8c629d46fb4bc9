import { expect } from 'chai';
import type { StreamConfig } from 'nats';
import { DEFAULT_CONFIG } from '../../src/config/load.js';
import { desiredStream, streamDrift } from '../../src/events/stream.js';

const settings = { ...DEFAULT_CONFIG.events, stream: 'S', subjectPrefix: 'verdict.decisions' };
const good = desiredStream(settings) as StreamConfig;

/** The drift check looks at the stream's whole configuration: each way to lose or refuse events is named. */
describe('events: what Verdict requires of the stream (streamDrift)', () => {
  it('the stream Verdict creates is as required; a broader subject list or more replicas are fine', () => {
    expect(streamDrift(good, settings)).to.deep.equal([]);
    expect(streamDrift({ ...good, subjects: ['verdict.decisions.>', 'other.>'], num_replicas: 3, max_consumers: 5 }, settings)).to.deep.equal([]);
    expect(streamDrift({ ...good, max_msg_size: settings.maxEventBytes + 1024 }, settings)).to.deep.equal([]);
  });

  const cases: [string, Partial<StreamConfig> & Record<string, unknown>, RegExp][] = [
    ['subjects', { subjects: ['verdict.>'] }, /^subjects \["verdict\.>"\] do not include verdict\.decisions\.>$/],
    ['storage', { storage: 'memory' as never }, /^storage is memory, must be file$/],
    ['retention', { retention: 'workqueue' as never }, /^retention is workqueue, must be limits/],
    ['discard', { discard: 'new' as never }, /^discard is new, must be old$/],
    ['max_msgs', { max_msgs: 1 }, /^max_msgs is 1, must be -1 \(unlimited\)/],
    ['max_bytes', { max_bytes: 1024 }, /^max_bytes is 1024, must be -1/],
    ['max_msgs_per_subject', { max_msgs_per_subject: 1 }, /^max_msgs_per_subject is 1, must be -1/],
    ['max_msg_size', { max_msg_size: 1000 }, /^max_msg_size is 1000, must be -1 or at least events\.maxEventBytes/],
    ['max_age', { max_age: 60 * 1e9 }, /^max_age is 60 s, must be 7776000 s/],
    ['duplicate_window', { duplicate_window: 1e9 }, /^duplicate_window is 1 s, must be 7200 s/],
    ['deny_delete', { deny_delete: false }, /^deny_delete is off/],
    ['deny_purge', { deny_purge: false }, /^deny_purge is off/],
    ['allow_rollup_hdrs', { allow_rollup_hdrs: true }, /^allow_rollup_hdrs is on/],
    ['sealed', { sealed: true }, /^the stream is sealed/],
    ['no_ack', { no_ack: true }, /^no_ack is on/],
    ['mirror', { mirror: { name: 'OTHER' } }, /^the stream is a mirror/],
  ];
  for (const [field, change, message] of cases) {
    it(`names a changed ${field}`, () => {
      const drift = streamDrift({ ...good, ...change } as StreamConfig, settings);
      expect(drift).to.have.length(1);
      expect(drift[0]).to.match(message);
    });
  }

  it('fewer replicas than events.replicas is drift', () => {
    expect(streamDrift(good, { ...settings, replicas: 3 })).to.deep.equal(['num_replicas is 1, must be at least 3 (events.replicas)']);
  });
});
