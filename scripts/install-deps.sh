#!/usr/bin/env bash
# make deps: install the system packages the tests run against, when missing.
# Debian packages: prometheus-alertmanager (the real Alertmanager the receiver's
# integration test drives, and amtool), prometheus (promtool, for make
# rules-test), curl (make run posts sample webhooks with it),
# maven and unzip (scripts/keycloak.sh fetches Keycloak from Maven Central for
# keycloakauth's integration test) and, when no Java 17+ is installed,
# openjdk-17-jre-headless for Keycloak (scripts/keycloak.sh prefers a Java 21+
# from JAVA_HOME or /usr/lib/jvm when there is one), and python3-venv when
# python3 -m venv is unavailable (make dashboards-test builds .tools/venv with it),
# chromium (make browser-test drives it with chromedp) and npm (make
# browser-test installs axe-core, pinned by test/browser/package-lock.json).
set -euo pipefail

need=()
command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v promtool >/dev/null || need+=(prometheus)
command -v curl >/dev/null || need+=(curl)
command -v mvn >/dev/null || need+=(maven)
command -v unzip >/dev/null || need+=(unzip)
command -v python3 >/dev/null || need+=(python3)
python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v chromium >/dev/null || need+=(chromium)
command -v npm >/dev/null || need+=(npm)
"$(dirname "$0")/keycloak.sh" java-home >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)

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
