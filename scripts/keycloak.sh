#!/usr/bin/env bash
# Keycloak for the integration tests (extension/keycloakauth), from Maven Central.
#   scripts/keycloak.sh fetch      download (once) and unpack into .tools/keycloak/
#   scripts/keycloak.sh java-home  print the Java home Keycloak runs on: the newest Java 21+
#                                  (what Keycloak 26 supports), else a Java 17 (deprecated by
#                                  Keycloak 26 but it runs there: the integration test passed with
#                                  26.5.6 on OpenJDK 17, the newest Debian bookworm has)
#   scripts/keycloak.sh home       print the unpacked Keycloak directory
# The tests start and stop Keycloak themselves (start-dev on loopback, realm
# imported from extension/keycloakauth/testdata/realm-nerc.json).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${KEYCLOAK_VERSION:-26.5.6}"
DIR=.tools/keycloak
ZIP="$DIR/keycloak-quarkus-dist-$VERSION.zip"
HOME_DIR="$DIR/keycloak-$VERSION"

java_major() { # java binary -> major version
	"$1" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2; exit}'
}

java_home() {
	local candidates=() d v best="" best_v=0
	[ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME")
	for d in /usr/lib/jvm/*; do candidates+=("$d"); done
	for d in "${candidates[@]}"; do
		[ -x "$d/bin/java" ] || continue
		v="$(java_major "$d/bin/java")"
		if [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -gt "$best_v" ]; then
			best="$d" best_v="$v"
		fi
	done
	if [ "$best_v" -ge 21 ]; then
		echo "$best"
	elif [ "$best_v" -ge 17 ]; then
		echo "keycloak.sh: no Java 21+, using Java $best_v ($best); Keycloak $VERSION deprecates it" >&2
		echo "$best"
	else
		echo "keycloak.sh: no Java 17+ found (JAVA_HOME, /usr/lib/jvm/*); Keycloak $VERSION needs one (make deps installs openjdk-17-jre-headless)" >&2
		return 1
	fi
}

case "${1:-}" in
fetch)
	if [ ! -x "$HOME_DIR/bin/kc.sh" ]; then
		mkdir -p "$DIR"
		if [ ! -f "$ZIP" ]; then
			echo "keycloak.sh: downloading keycloak-quarkus-dist $VERSION from Maven Central" >&2
			mvn -q -B dependency:copy -Dartifact="org.keycloak:keycloak-quarkus-dist:$VERSION:zip" -DoutputDirectory="$DIR"
		fi
		unzip -q -o "$ZIP" -d "$DIR"
	fi
	java_home >/dev/null
	;;
java-home) java_home ;;
home) echo "$(pwd)/$HOME_DIR" ;;
*)
	echo "usage: $0 fetch|java-home|home" >&2
	exit 2
	;;
esac
