#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript under dist/.
import { installCodeCache } from '../dist/src/files/code-cache.js';

// Before anything else is loaded: the CommonJS dependencies compile from V8's code cache when it
// has them (docs/operations.md, "Code cache"; VERDICT_CODE_CACHE=off turns it off).
installCodeCache();
// `verdict serve` loads only what serving needs, not every other command's modules.
const { main } = await import(process.argv[2] === 'serve' ? '../dist/src/cli/serve-main.js' : '../dist/src/cli/main.js');

// `verdict test | head` closes the pipe early: that is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => { if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0); throw err; });
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`verdict: ${err instanceof Error ? err.message : String(err)}\n`); process.exitCode = 1; },
);
