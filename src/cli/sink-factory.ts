import { setSinkFactory } from './commands/serve.js';

// Loaded only when events are on: the publisher pulls in nats (docs/performance.md, "Cold start").
setSinkFactory(async (config, logger) => {
  const [{ DecisionPublisher }, { ThreadedPublisher }] = await Promise.all([import('../events/publisher.js'), import('../events/threaded-publisher.js')]);
  if (!config.events.publisherThread) return new DecisionPublisher(config.events, logger);
  // The thread makes its own logger; carry over bindings such as the cluster worker index.
  const { service: _service, pid: _pid, ...bindings } = logger.bindings();
  return new ThreadedPublisher(config.events, logger, config.logLevel, bindings);
});
