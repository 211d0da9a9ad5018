package keycloakauth // import "github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth"

import (
	"crypto/sha256"
	"time"

	"go.opentelemetry.io/collector/client"
)

// Attribute names in client.Info.Auth (GetAttribute).
const (
	AttrSubject    = "subject"    // sub: the user's or service account's id
	AttrClientID   = "client_id"  // azp: the client the token was issued to
	AttrUsername   = "username"   // preferred_username (service-account-<client> for clients)
	AttrRoles      = "roles"      // realm roles, then client roles as "<client>:<role>"
	AttrGroups     = "groups"     // groups claim (needs Keycloak's group membership mapper)
	AttrMembership = "membership" // same as groups, the name upstream's oidc extension uses
	AttrExpiry     = "expiry"     // exp as time.Time
)

var attributeNames = []string{AttrSubject, AttrClientID, AttrUsername, AttrRoles, AttrGroups, AttrMembership, AttrExpiry}

var _ client.AuthData = (*authData)(nil)

// authData is what a validated token says about its bearer. The raw token is
// kept (unexported, never an attribute) only to ask Keycloak for decisions.
type authData struct {
	// owner is the extension that validated the token: only it may ask its
	// realm for decisions about the token.
	owner     *keycloakAuth
	raw       string
	tokenHash [sha256.Size]byte
	expiry    time.Time
	kid       string // the key that signed it

	subject  string
	clientID string
	username string
	roles    []string
	groups   []string
}

func (a *authData) GetAttribute(name string) any {
	switch name {
	case AttrSubject:
		return a.subject
	case AttrClientID:
		return a.clientID
	case AttrUsername:
		return a.username
	case AttrRoles:
		return a.roles
	case AttrGroups, AttrMembership:
		return a.groups
	case AttrExpiry:
		return a.expiry
	}
	return nil
}

// caller names the bearer for per-caller budgets: its subject, or the client
// it was issued to when Keycloak put no sub in it (lightweight tokens).
func (a *authData) caller() string {
	if a.subject != "" {
		return "sub:" + a.subject
	}
	return "azp:" + a.clientID
}

func (*authData) GetAttributeNames() []string { return attributeNames }
