#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript under dist/.
import { main } from '../dist/src/cli/main.js';

// `verdict test | head` closes the pipe early: that is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => { if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0); throw err; });
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`verdict: ${err instanceof Error ? err.message : String(err)}\n`); process.exitCode = 1; },
);
