#!/usr/bin/env node
// The walflow command. Sources are TypeScript run through tsx, so that user pipelines written in
// TypeScript (pipelines/*.ts) load the same way as walflow itself, with no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/ops/cli/main.ts');
