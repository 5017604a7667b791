#!/usr/bin/env node
// The walflow command. The published package runs the compiled code (dist/); a git checkout, which
// has src/ and no build step, runs the TypeScript sources through tsx. User pipelines written in
// TypeScript load through tsx either way (src/pipeline/import-module.ts).
import fs from 'node:fs';

stopWithTheProcessThatStartedUs();

const source = new URL('../src/ops/cli/main.ts', import.meta.url);
if (fs.existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import('../dist/ops/cli/main.js');
}

/**
 * `npx walflow run` (and `npm run walflow`, `npm start`) is npm → `sh -c walflow …` → this process.
 * A SIGTERM sent to npm (by `kill`, a service manager, a container runtime) stops npm and the
 * shell, but the shell does not pass it on: walflow would keep running, orphaned, holding the
 * replication slot. So when npm started us (it sets npm_command) and the process that started us
 * goes away (we are re-parented), we stop as if we had received SIGTERM ourselves: running steps
 * finish, the slot is released. Outside npm nothing changes (`nohup walflow run &` keeps running
 * after its shell exits). In production, run the bin directly (node_modules/.bin/walflow).
 */
function stopWithTheProcessThatStartedUs() {
  if (!process.env.npm_command) return;
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    process.kill(process.pid, 'SIGTERM');
  }, 250);
  // Never the reason the process stays alive.
  watch.unref();
}
