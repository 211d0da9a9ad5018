//go:build load

package load

import (
	"testing"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
)

// tokenLifespan is the realm's access token lifespan during the load test,
// short so that the sender refreshes its token several times in one run, as
// Alertmanager does (x/oauth2 asks for a new token 10 s before expiry).
const tokenLifespan = 30 * time.Second

// startKeycloak runs the realm the keycloakauth integration test imports;
// the load test only logs in as its hub-writer client.
func startKeycloak(t *testing.T) *testpeers.Keycloak {
	t.Helper()
	return testpeers.StartKeycloak(t, testpeers.KeycloakOptions{
		RealmFile:           "../../extension/keycloakauth/testdata/realm-nerc.json",
		AccessTokenLifespan: tokenLifespan,
	})
}
