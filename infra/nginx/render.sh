#!/bin/sh
# Renders infra/nginx/nginx.conf.template: usage render.sh <template> <output>.
# Substitutes only GATEWAY_UPSTREAM, HTTP_PORT, HTTPS_PORT and HTTP_TO_HTTPS, leaving Nginx's own $variables alone.
set -eu
: "${GATEWAY_UPSTREAM:?set GATEWAY_UPSTREAM (host:port of the gateway)}"
: "${HTTP_PORT:?set HTTP_PORT}"
: "${HTTPS_PORT:?set HTTPS_PORT}"
HTTP_TO_HTTPS="${HTTP_TO_HTTPS:-off}"
case "$HTTP_TO_HTTPS" in on | off) ;; *) echo "render.sh: HTTP_TO_HTTPS must be on or off" >&2; exit 2 ;; esac
export HTTP_TO_HTTPS
envsubst '${GATEWAY_UPSTREAM} ${HTTP_PORT} ${HTTPS_PORT} ${HTTP_TO_HTTPS}' < "$1" > "$2"
