// Package tenant checks tenant IDs: the value of the X-Scope-OrgID header
// that Tempo (and Loki and Mimir, all built on Grafana's dskit) reads the
// tenant from. This project names one tenant per Keycloak resource
// (HUB-{hub}-CLUSTER-{cluster}-PROJECT-{namespace}), so that a project's
// readers see only that project's spans.
package tenant // import "github.com/nerc-project/ai-telemetry-collector/internal/tenant"

import (
	"errors"
	"fmt"
	"strings"
)

// MaxLength is dskit's limit on a tenant ID (tenant.MaxTenantIDLength).
const MaxLength = 150

// ErrInvalid is returned (wrapped) for a value that Tempo would not accept
// as one tenant ID.
var ErrInvalid = errors.New("not a valid tenant ID")

// Validate checks id against dskit's tenant.ValidTenantID: 1 to 150 bytes of
// letters, digits and ! - _ . * ' ( ), and not "." or "..". Nothing else
// passes, so a value can never carry '|', with which Tempo reads several
// tenants at once (a cross-tenant query), nor a path separator.
func Validate(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalid)
	case len(id) > MaxLength:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalid, len(id), MaxLength)
	case id == "." || id == "..":
		return fmt.Errorf("%w: %q", ErrInvalid, id)
	}
	for i := 0; i < len(id); i++ {
		if !allowed(id[i]) {
			return fmt.Errorf("%w: byte %q at %d (allowed: letters, digits, ! - _ . * ' ( ))", ErrInvalid, id[i], i)
		}
	}
	return nil
}

func allowed(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '-', '_', '.', '*', '\'', '(', ')':
		return true
	}
	return false
}

// ErrInvalidKey is returned (wrapped) for a header or client metadata key
// that cannot carry a tenant as text over both gRPC and HTTP.
var ErrInvalidKey = errors.New("not a usable header or metadata key")

// ValidateKey checks the name of the header (X-Scope-OrgID) or client
// metadata key (x-scope-orgid) carrying a tenant: letters, digits, '-', '_'
// and '.', starting with a letter or digit (what gRPC metadata keys allow,
// in either case, and a subset of HTTP's header names), not ending in -bin
// (gRPC's binary values) and not starting with grpc- (gRPC's own), nor one of
// the headers a transport sets itself.
func ValidateKey(key string) error {
	lower := strings.ToLower(key)
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	case strings.HasSuffix(lower, "-bin"), strings.HasPrefix(lower, "grpc-"), reservedKeys[lower]:
		return fmt.Errorf("%w: %q is reserved", ErrInvalidKey, key)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '-' && c != '_' && c != '.') {
			return fmt.Errorf("%w: byte %q at %d in %q (allowed: letters, digits, '-', '_', '.')", ErrInvalidKey, c, i, key)
		}
	}
	return nil
}

// reservedKeys are set by the transports or the authenticators; a tenant
// written over them would break the request or its credentials.
var reservedKeys = map[string]bool{
	"authorization": true, "content-type": true, "content-length": true, "content-encoding": true,
	"host": true, "te": true, "user-agent": true, "connection": true, "transfer-encoding": true,
}
