# syntax=docker/dockerfile:1
#
# One image, one entry point (`kubeingest <subcommand>`), two targets:
#   cpu (default)  sentence-transformers on CPU torch, the bundled all-MiniLM-L6-v2
#                  docker build -t kubeingest:0.1.0-cpu .
#   gpu            the vLLM engine on CUDA torch (CUDA libraries come as wheels; the NVIDIA
#                  container runtime mounts the driver)
#                  docker build --target gpu -t kubeingest:0.1.0-gpu .
#
# Builder stages make a virtualenv in /opt/venv; the final stages copy only that venv onto
# the same Python base image (a venv only runs on the Python it was made with, so builder
# and final stage share the base: the CUDA and vLLM images ship other Python versions).

ARG PYTHON_IMAGE=python:3.11.16-slim-trixie

# --------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder-base
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Only what the package needs: operator/ and services/ are reached as kubeingest.operator
# and kubeingest.services through symlinks inside kubeingest/ (setuptools follows them).
COPY pyproject.toml constraints.txt ./
COPY kubeingest/ kubeingest/
COPY operator/ operator/
COPY services/ services/

# --------------------------------------------------------------------------------------
FROM builder-base AS builder-cpu
# torch is pinned: the CPU wheel from PyTorch's CPU index first, so the `st` extra's
# torch==2.13.0 is already satisfied and no CUDA wheels are pulled.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
        'torch==2.13.0+cpu' \
 && pip install --no-cache-dir -c /src/constraints.txt "/src[st]" \
 && pip check

# --------------------------------------------------------------------------------------
FROM builder-base AS builder-gpu
# vLLM brings its own CUDA torch and the CUDA runtime libraries as wheels.
RUN pip install --no-cache-dir "/src[vllm]"

# --------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime-base
# A numeric non-root user (Kubernetes' runAsNonRoot can check a number, not a name).
RUN groupadd --system --gid 10001 kubeingest \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/kubeingest --create-home \
        --shell /usr/sbin/nologin kubeingest
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/kubeingest \
    HF_HOME=/home/kubeingest/.cache/huggingface \
    HF_HUB_OFFLINE=1
WORKDIR /home/kubeingest
# Workers serve /metrics, /healthz, /readyz here; the API listens on 8080; kopf's liveness 8081.
EXPOSE 8080 8081 9100 9101
ENTRYPOINT ["kubeingest"]
CMD ["--help"]

# --------------------------------------------------------------------------------------
FROM runtime-base AS gpu
# Triton (used by torch.compile and vLLM kernels) compiles a small launcher with the system
# C compiler when a model first loads: gcc and libc headers are runtime dependencies here.
# Unpinned (DL3008): Debian drops exact versions on security updates; the base tag pins the
# release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    VLLM_NO_USAGE_STATS=1 \
    DO_NOT_TRACK=1
COPY --from=builder-gpu /opt/venv /opt/venv
USER 10001:10001

# --------------------------------------------------------------------------------------
# The default target (last stage): CPU.
FROM runtime-base AS cpu
COPY --from=builder-cpu /opt/venv /opt/venv
USER 10001:10001
