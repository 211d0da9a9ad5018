#!/usr/bin/env bash
# Keycloak for the integration tests (extension/keycloakauth), from Maven Central.
#   scripts/keycloak.sh fetch      download (once) and unpack into .tools/keycloak/
#   scripts/keycloak.sh java-home  print the Java home Keycloak runs on: the newest Java 21+
#                                  (26.7.3, the newest release served, passed the integration
#                                  test on the Temurin 25 these machines carry), else a Java 17
#                                  with 26.5.6, which passed on OpenJDK 17, the newest Debian
#                                  bookworm has (KEYCLOAK_VERSION overrides the choice)
#   scripts/keycloak.sh home       print the unpacked Keycloak directory
# The tests start and stop Keycloak themselves (start-dev on loopback, realm
# imported from extension/keycloakauth/testdata/realm-nerc.json).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=.tools/keycloak

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

best_java_major() {
	local home
	home="$(java_home 2>/dev/null)" || { echo 0; return; }
	java_major "$home/bin/java"
}

# The newest release served (26.7.3) on Java 21+; on a machine with only
# Java 17, the newest release known to run there.
if [ -n "${KEYCLOAK_VERSION:-}" ]; then
	VERSION="$KEYCLOAK_VERSION"
elif [ "$(best_java_major)" -ge 21 ]; then
	VERSION=26.7.3
else
	VERSION=26.5.6
fi
ZIP="$DIR/keycloak-quarkus-dist-$VERSION.zip"
HOME_DIR="$DIR/keycloak-$VERSION"

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
