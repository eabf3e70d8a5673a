# Sourced by the scripts: the packages built for wasm32-wasip2, one per component in spin.toml,
# plus the probe component the host's own tests load.
# shellcheck shell=bash
WASM_PACKAGES=(
  -p mio-customer-api
  -p mio-card-api
  -p mio-override-toggle
  -p mio-scheduled-tick
  -p mio-stripe-webhook
  -p mio-feedback
  -p mio-console
  -p mio-test-probe
)
