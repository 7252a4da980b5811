# Pivot's image: one image for the workers, the API and the CLI, the process chosen by the first
# argument (docs/image.md):
#   docker run pivot worker control --config /etc/pivot/pivot.yaml
#   docker run pivot worker site dc-a --config /etc/pivot/pivot.yaml
#   docker run pivot api --config /etc/pivot/pivot.yaml
#   docker run pivot pivot status
# Build from the checkout's root: docker build -t pivot .

# The base image, by exact version tag. Pin its digest too when releasing, since a tag can be
# pushed again:  --build-arg NODE_IMAGE=node:20.20.2-bookworm-slim@sha256:<digest>
# Debian (glibc), not Alpine: Temporal's native core bridge ships for glibc only.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# Compile: every dependency (TypeScript is a dev one), then `npm run build` into /src/dist.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# The production dependencies alone, installed from the same lock file. Temporal's core bridge
# ships a native build for every platform and its Rust sources (about 140 MB): only this
# platform's build is kept, the one its own loader picks (it fails the build on an unknown one).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
RUN cd node_modules/@temporalio/core-bridge \
 && target="$(node -p "require('./common.js').getPrebuiltTargetName()")" \
 && test -f "releases/$target/index.node" \
 && find releases -mindepth 1 -maxdepth 1 ! -name "$target" -exec rm -rf {} + \
 && rm -rf sdk-core

# What runs: the compiled JavaScript, the production node_modules and package.json, owned by root
# (the process reads them, it cannot change them). The process runs as an unprivileged user with a
# numeric UID, so that Kubernetes' runAsNonRoot can check it.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
RUN groupadd --gid 10001 pivot \
 && useradd --uid 10001 --gid 10001 --no-log-init --create-home --home-dir /home/pivot \
      --shell /usr/sbin/nologin pivot
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
USER 10001:10001
# node itself, not the base image's shell script: `worker`, `api` or `pivot`, then that process's
# own arguments (dist/entrypoint.js, from deploy/image/entrypoint.js).
ENTRYPOINT ["node", "/app/dist/entrypoint.js"]
CMD ["--help"]
