/**
 * Loaded by mocha before any test (.mocharc.json "require"). Servers started by tests run as a
 * single process unless a test asks for a cluster with --workers (flags win over the environment),
 * so a test sees one hash chain and one process's logs.
 */
process.env.VERDICT_WORKERS ??= '1';
