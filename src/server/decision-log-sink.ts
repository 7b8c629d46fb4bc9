import type { DecisionRecord } from '../service/decision-record.js';
import type { ClosableSink } from '../service/decision-trail.js';
import type { Logger } from './logger.js';

/**
 * `logDecisions: true`: one log line per decision besides the decision stream — handy while
 * developing policies. Identifiers and outcome only: attributes and tokens never reach the log.
 */
export function withDecisionLogging(sink: ClosableSink, logger: Logger): ClosableSink {
  const log = (r: DecisionRecord) =>
    logger.info(
      {
        decisionId: r.decisionId,
        source: r.source,
        subject: r.request.subject.id,
        action: r.request.action,
        resource: `${r.request.resource.type}/${r.request.resource.id}`,
        effect: r.decision.effect,
        reason: r.decision.reason,
        policy: r.decision.policy,
        rule: r.decision.rule,
        ...(r.traceId ? { traceId: r.traceId } : {}),
      },
      'decision',
    );
  return {
    requiresDurability: sink.requiresDurability,
    record: (r) => {
      log(r);
      sink.record(r);
    },
    recordDurably: (r) => {
      log(r);
      return sink.recordDurably(r);
    },
    start: sink.start?.bind(sink),
    close: () => sink.close(),
  };
}
