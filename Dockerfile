# cloudfn server image: `cloudfn serve` with the Python, Node.js and Go runtimes.
#
# NOTE: not built or run in cloudfn's CI -- the machines this project is developed on have no
# container engine. Treat it as a starting point and check it before you rely on it.
#
#   docker build -t cloudfn .
#   docker run -p 8080:8080 -v cloudfn-data:/data -e CLOUDFN_TOKEN=$(openssl rand -hex 32) \
#     --security-opt seccomp=deploy/seccomp-cloudfn.json --security-opt systempaths=unconfined cloudfn
#
# Without CLOUDFN_TOKEN the server makes a token at its first start and keeps it in
# /data/server.token (read it with `docker exec <container> cat /data/server.token`).
# The sandbox (bubblewrap) needs user namespaces and an unmasked /proc, which default container
# profiles withhold: the two --security-opt flags above give exactly that (README, "Running in
# containers"); without them `cloudfn serve` refuses to start rather than run functions unsandboxed.
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs golang-go bubblewrap libseccomp2 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# A server-only install: exactly the versions CI tested for [core] and [server] (hash-checked),
# then cloudfn itself without its default dependencies (the console's Textual and tree-sitter).
COPY requirements-server.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements-server.lock
COPY pyproject.toml README.md ./
COPY core ./core
COPY cloudfn_tui ./cloudfn_tui
COPY functions ./functions
COPY themes ./themes
RUN pip install --no-cache-dir --no-deps . && rm -rf /app/*

RUN useradd --create-home --uid 10001 cloudfn && mkdir /data && chown cloudfn /data
USER cloudfn
ENV CLOUDFN_DATA_DIR=/data \
    CLOUDFN_HOST=0.0.0.0 \
    PORT=8080 \
    GIN_MODE=release \
    GOCACHE=/data/.gocache
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/api/health', timeout=2).status != 200)"
# SIGTERM: stop accepting, let invocations in flight finish (server.shutdown_grace, 30 s), exit 0.
STOPSIGNAL SIGTERM
CMD ["cloudfn", "serve"]
