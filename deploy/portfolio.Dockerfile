# Bitfolio portfolio: multi-stage build, runs as a non-root user. Build context: the repository root.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY constraints.txt /src/constraints.txt
COPY contracts /src/contracts
COPY services/portfolio /src/services/portfolio
RUN /opt/venv/bin/pip install -c /src/constraints.txt /src/contracts /src/services/portfolio

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PORTFOLIO_HTTP_HOST=0.0.0.0 PORTFOLIO_HTTP_PORT=8002
RUN useradd --create-home --uid 10001 bitfolio
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src/services/portfolio /app/services/portfolio
WORKDIR /app/services/portfolio
USER bitfolio
EXPOSE 8002
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=5 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8002/readyz', timeout=2).status == 200 else 1)"
CMD ["portfolio", "serve"]
