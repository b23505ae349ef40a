#!/usr/bin/env node
// The vlmc command. The TypeScript sources are compiled to dist/ by `npm ci` (the `prepare` script).
import { main } from "../dist/cli/main.js";

// `vlmc compile spec.vlm | head`: a closed pipe ends the command quietly.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err) => {
    if (err && err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    // An internal error: still one line, never a stack trace unless asked for.
    process.stderr.write(`vlmc: internal error: ${err && err.message ? err.message : String(err)}\n`);
    if (process.env.VLMC_DEBUG) process.stderr.write(`${err && err.stack}\n`);
    process.exitCode = 70;
  },
);
