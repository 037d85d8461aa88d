#!/bin/sh
# Container entry point: initialise the repo on first start (server profile, RPC on all
# interfaces so the published port reaches it), then become the daemon (exec: signals from
# `docker stop` reach cairn directly and take its graceful path).
set -e
if [ ! -f "$CAIRN_PATH/config" ]; then
  cairn init --profile server
  cairn config Addresses.API /ip4/0.0.0.0/tcp/5001
fi
exec cairn daemon "$@"
