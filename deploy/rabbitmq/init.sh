#!/bin/sh
# RabbitMQ for Bitfolio: start the broker, then give each service its own user, with the permissions of
# definitions.json (passwords come from the environment, so they cannot live in that file), then mark it ready.
set -eu
: "${RABBITMQ_PRICE_PASSWORD:?}" "${RABBITMQ_PORTFOLIO_PASSWORD:?}" "${RABBITMQ_GATEWAY_PASSWORD:?}" "${RABBITMQ_WEB_PASSWORD:?}"
READY=/tmp/bitfolio-users-ready
rm -f "$READY"

docker-entrypoint.sh rabbitmq-server &
broker=$!
trap 'kill -TERM "$broker"; wait "$broker"' TERM INT

rabbitmqctl -q await_startup
ensure_user() {  # add it, or set its password when the volume already holds it
  rabbitmqctl -q add_user "$1" "$2" 2>/dev/null || rabbitmqctl -q change_password "$1" "$2"
}
ensure_user price "$RABBITMQ_PRICE_PASSWORD"
ensure_user portfolio "$RABBITMQ_PORTFOLIO_PASSWORD"
ensure_user gateway "$RABBITMQ_GATEWAY_PASSWORD"
ensure_user web "$RABBITMQ_WEB_PASSWORD"
rabbitmqctl -q import_definitions /etc/bitfolio/definitions.json
touch "$READY"
wait "$broker"
