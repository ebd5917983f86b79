# One image for every daemon; the command names the daemon (see docker-compose.yml):
#   docker run auditlog persist
# Dependencies first, so a source change does not reinstall them.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# tsx is a runtime dependency: the daemons run the TypeScript sources directly.
RUN npm ci --omit=dev && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
# DATA_DIR holds the master key and the JWT signing key; a named volume mounted here inherits this owner.
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The same program as `npm run daemon -- <name>`, without npm in front: npm does not pass SIGTERM on
# to the daemon (it exits 143 and leaves the daemon running), so `docker stop` could not drain it.
# Started directly, the daemon gets the signal, drains its in-flight batches and exits 0.
ENTRYPOINT ["node", "--import", "tsx", "bin/daemon.ts"]
CMD ["all"]
