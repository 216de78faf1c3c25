# LingShift: the offline pipeline (target `repro`) and the API + results page (target `serve`).
#
# Why no NVIDIA CUDA base image: torch's CUDA wheels carry their own CUDA runtime (the nvidia-* wheels
# they depend on), so a plain Debian + Python 3.11 base runs on NVIDIA GPUs with `docker run --gpus all`
# as long as the host has the driver and the NVIDIA container toolkit. The wheelhouse decides, picked by
# TORCH_FLAVOUR: unset, ./wheelhouse (scripts/make-wheelhouse.sh: torch as pip resolves it, the CPU wheel on
# our machines; LingShift without extras); `cuda`, ./wheelhouse-cuda (scripts/make-wheelhouse.sh --cuda:
# torch 2.13.0's CUDA build with its nvidia-* runtime wheels, LingShift with the paper and ray extras: the
# image a Ray cluster's GPU nodes run). One Dockerfile, with a base that can be built offline
# (scripts/make-base-image.sh: debootstrap + docker import).
#
# Offline by design: Python packages come only from the wheelhouse (built on the host), installed with
# --no-index; the base needs python3.11 (+ venv) and, for `repro`, git. A base that lacks them gets them
# from its apt sources (that step needs a Debian mirror; the debootstrap base has them).
#
#   scripts/make-wheelhouse.sh && docker build --target serve -t lingshift:serve .
#   docker run --rm -p 127.0.0.1:8000:8000 -v "$PWD:/work" lingshift:serve
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" -v lingshift-cache:/cache lingshift:repro
#   scripts/make-wheelhouse.sh --cuda && docker build --build-arg TORCH_FLAVOUR=cuda --target repro -t lingshift:cuda .
#   docker run --rm --gpus all --user "$(id -u):$(id -g)" -v "$PWD:/work" -v lingshift-cache:/cache lingshift:cuda

# A published debian:bookworm-slim digest; replace it with --build-arg BASE_IMAGE=... (e.g. the local
# debootstrap image, lingshift/debian:bookworm).
ARG BASE_IMAGE=debian:bookworm-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251

# ---------------------------------------------------------------------------------------------- system
FROM ${BASE_IMAGE} AS system
SHELL ["/bin/sh", "-eu", "-c"]
# Only if the base lacks them (the debootstrap base does not): python3.11 with venv + ensurepip, git.
RUN if ! command -v python3.11 >/dev/null || ! python3.11 -c "import ensurepip, venv" 2>/dev/null \
        || ! command -v git >/dev/null; then \
        apt-get update; \
        apt-get install -y --no-install-recommends python3.11 python3.11-venv git ca-certificates; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    python3.11 --version; git --version

# --------------------------------------------------------------------------------------------- builder
FROM system AS builder
# Unset: ./wheelhouse as it is; cuda: ./wheelhouse-cuda, and the build fails unless its torch is a CUDA build.
ARG TORCH_FLAVOUR=
# The wheelhouse: every wheel LingShift needs, the lingshift wheel itself included (no network here).
COPY wheelhouse${TORCH_FLAVOUR:+-}${TORCH_FLAVOUR}/ /wheelhouse/
RUN case "$TORCH_FLAVOUR" in \
        "") spec=lingshift ;; \
        cuda) spec="lingshift[paper,ray]" ;; \
        *) echo "TORCH_FLAVOUR=$TORCH_FLAVOUR: leave it unset (./wheelhouse) or set cuda (./wheelhouse-cuda)" >&2; exit 2 ;; \
    esac; \
    python3.11 -m venv /opt/venv; \
    /opt/venv/bin/pip install --no-index --find-links /wheelhouse --no-cache-dir --no-compile "$spec"; \
    /opt/venv/bin/python -c "import torch, transformers, apiflask, dvc, pipeline, app; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; \
    if [ "$TORCH_FLAVOUR" = cuda ]; then \
        /opt/venv/bin/python -c "import ray, datasets, torch; assert torch.version.cuda, 'torch is not a CUDA build'; print('ray', ray.__version__)"; \
    fi

# --------------------------------------------------------------------------------------------- runtime
FROM system AS runtime
COPY --from=builder /opt/venv /opt/venv
COPY gunicorn.conf.py /opt/lingshift/gunicorn.conf.py
# uid 10001 by default; `repro` runs as the host user instead (--user), so every path it writes outside the
# bind-mounted checkout is world-writable: HOME and the cache volume (sticky, like /tmp).
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /home/lingshift --shell /usr/sbin/nologin lingshift; \
    mkdir -p /home/lingshift /cache/hf /cache/lingshift /work; \
    chmod 1777 /home/lingshift /cache /cache/hf /cache/lingshift; \
    chown lingshift:lingshift /work
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/home/lingshift \
    HF_HOME=/cache/hf \
    LINGSHIFT_CACHE=/cache/lingshift \
    LINGSHIFT_ROOT=/work \
    OMP_WAIT_POLICY=PASSIVE \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
VOLUME ["/cache"]
WORKDIR /work

# ------------------------------------------------------------------------------------------------ repro
# `dvc repro` on a checkout bind-mounted at /work, as the host user (docker run --user "$(id -u):$(id -g)").
FROM runtime AS repro
# git refuses a repository owned by another uid; the checkout is the user's own, mounted here.
RUN git config --system --add safe.directory /work
USER 10001:10001
CMD ["dvc", "repro"]

# ------------------------------------------------------------------------------------------------ serve
# The API and results page: nginx in front of gunicorn (scripts/serve-prod.sh); serves the checkout at /work
# (results/, and models/ for probing).
FROM runtime AS serve
# nginx buffers slow clients in front of gunicorn (README "Serving in production"), from the base's apt sources
# (this step needs its Debian mirror, as the system stage does for a base without python3.11).
RUN if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then \
        apt-get update; \
        apt-get install -y --no-install-recommends nginx; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    /usr/sbin/nginx -v
COPY deploy/nginx.conf deploy/wsgi.py /opt/lingshift/deploy/
COPY scripts/serve-prod.sh /opt/lingshift/scripts/serve-prod.sh
# Inside a container the service must listen beyond loopback; publish it on the host's loopback only.
# nginx listens there; gunicorn on a unix socket behind it (scripts/serve-prod.sh).
ENV LINGSHIFT_BIND=0.0.0.0:8000
# Run from the installed package, not from whatever checkout is mounted at /work (LINGSHIFT_ROOT).
WORKDIR /opt/lingshift
EXPOSE 8000
USER 10001:10001
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3.11", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=4)"]
CMD ["/opt/lingshift/scripts/serve-prod.sh"]
