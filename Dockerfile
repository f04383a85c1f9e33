# The OneVision project image: every KFP component, the drift CronJob and the CLI run in it.
#
#   docker build -t ghcr.io/onevision/onevision:0.1.0 .                                 # CPU torch (default)
#   docker build --build-arg TORCH_VARIANT=cu128 -t ghcr.io/onevision/onevision:0.1.0-cu128 .   # CUDA torch
#
# Components and the deploy step name the image through ONEVISION_IMAGE (onevision/image.py); the manifests through
# manifests/base/kustomization.yaml `images:`.
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

# torch comes from PyTorch's own index: "cpu", or a CUDA wheel tag of that release (e.g. cu126, cu128).
ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ONEVISION_CACHE_DIR=/tmp/onevision-cache

# libgomp1: OpenMP runtime for faiss/torch CPU kernels. Java 17: TorchServe's frontend, since the
# InferenceService predictor runs this image (the handler imports onevision).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/onevision

# Dependencies first (torch pinned, from the variant's index), so source edits reuse this layer.
RUN pip install "torch==${TORCH_VERSION}" --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}"
COPY pyproject.toml README.m[d] ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt "torch==${TORCH_VERSION}" \
        --extra-index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" \
    && rm /tmp/requirements.txt

# The packages themselves (see .dockerignore for what stays out).
COPY onevision ./onevision
COPY components ./components
COPY pipelines ./pipelines
COPY serving ./serving
COPY monitoring ./monitoring
# The compiled decoder's kernels are built here, into a cache the serving user can read and extend.
ENV NUMBA_CACHE_DIR=/opt/onevision/numba-cache
RUN pip install --no-deps . \
    && python -c "import onevision, components, pipelines, serving, monitoring, kfp" \
    && python -c "from onevision.generator.decode import compile_kernels; compile_kernels()" \
    && useradd --create-home --uid 1000 onevision \
    && chown -R 1000 /opt/onevision/numba-cache

USER 1000
WORKDIR /home/onevision
CMD ["onevision", "--help"]
