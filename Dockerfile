# walflow as a service: `walflow run` (replication leader or standby, and workers) for the pipelines
# mounted at /app/pipelines. Needs DATABASE_URL. test/db/ops/dockerfile.test.ts runs this file's own
# build and start commands (parsed from here) in a scratch directory, so the image cannot drift
# from what is tested; `npm run lint` lints it.

# Build: every dependency, compile, then drop the dev dependencies.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY src ./src
COPY sql ./sql
RUN npm ci --no-audit --no-fund && npm run build && npm prune --omit=dev

# Runtime: production dependencies and the compiled code (no src/: bin/walflow.js then runs dist/),
# as the unprivileged `node` user.
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    WALFLOW_PIPELINES_DIR=pipelines \
    WALFLOW_METRICS_PORT=9464
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./package.json
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/bin ./bin
COPY --from=build --chown=node:node /app/dist ./dist
COPY --from=build --chown=node:node /app/sql ./sql
USER node
EXPOSE 9464
# fetch is built into Node 20: no curl in the image. Six tries 10 s apart leave a minute to migrate
# and take the lead (no --start-period: the linter predates it).
HEALTHCHECK --interval=10s --timeout=5s --retries=6 CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.WALFLOW_METRICS_PORT || 9464) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form, node as PID 1's only process: SIGTERM reaches walflow, which finishes running steps and exits.
ENTRYPOINT ["node", "bin/walflow.js"]
CMD ["run"]
