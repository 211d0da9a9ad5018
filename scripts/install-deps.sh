#!/usr/bin/env bash
# make deps: install the system packages the tests run against, when missing.
# Debian packages: prometheus-alertmanager (the real Alertmanager the receiver's
# integration test drives), curl (make run posts sample webhooks with it),
# maven and unzip (scripts/keycloak.sh fetches Keycloak from Maven Central for
# keycloakauth's integration test; Keycloak also needs a Java 21+, which
# scripts/keycloak.sh looks for in JAVA_HOME and /usr/lib/jvm).
set -euo pipefail

need=()
command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v curl >/dev/null || need+=(curl)
command -v mvn >/dev/null || need+=(maven)
command -v unzip >/dev/null || need+=(unzip)

if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
	exit 1
fi
echo "install-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
