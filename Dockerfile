# The char_pipeline image: the locked CPU stack (requirements/cpu.txt, hashes checked) and the
# project, for the API, the Dagster code location and run workers alike.
#   docker build -t char-pipeline .
#   docker run -p 8000:8000 -e CHAR_PIPELINE_HOME=/data -v char-data:/data char-pipeline
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements/ requirements/
# torch's CPU build comes from PyTorch's index; everything else from PyPI, by hash.
RUN python -m pip install --no-cache-dir --require-hashes --no-deps \
        --extra-index-url https://download.pytorch.org/whl/cpu \
        -r requirements/cpu.txt -r requirements/mediapipe.txt
COPY pyproject.toml README.md ./
COPY char_pipeline/ char_pipeline/
COPY aicharacter/ aicharacter/
RUN python -m pip install --no-cache-dir --no-deps --no-build-isolation .
ENV CHAR_PIPELINE_HOME=/data
EXPOSE 8000 3000 4000
CMD ["python", "-m", "uvicorn", "char_pipeline.api.main:app", "--host", "0.0.0.0", "--port", "8000"]
