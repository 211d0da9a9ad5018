package keycloakauth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth/internal/metadata"
)

// FuzzAuthenticate feeds arbitrary Authorization headers: nothing panics,
// nothing but the realm's own tokens is accepted, and no error repeats the
// presented token.
func FuzzAuthenticate(f *testing.F) {
	kc := newFakeKeycloak(f)
	valid := kc.sign(kc.claims(time.Hour))
	parts := strings.Split(valid, ".")
	for _, seed := range []string{
		"", "Bearer", "Bearer ", "Basic abc", "Bearer " + valid, "Bearer " + parts[0] + "." + parts[1] + ".",
		"Bearer " + parts[0] + ".." + parts[2], "Bearer a.b.c", "bearer " + strings.Repeat("A", 5000),
		"Bearer eyJhbGciOiJub25lIn0.e30.", "Bearer " + valid + " extra",
	} {
		f.Add(seed)
	}
	cfg := kc.config()
	e, err := newKeycloakAuth(cfg, extensiontest.NewNopSettings(metadata.Type))
	require.NoError(f, err)
	require.NoError(f, e.Start(context.Background(), componenttest.NewNopHost()))
	f.Cleanup(func() { _ = e.Shutdown(context.Background()) })

	f.Fuzz(func(t *testing.T, header string) {
		ctx, err := e.Authenticate(context.Background(), map[string][]string{"Authorization": {header}})
		if err != nil {
			require.Nil(t, client.FromContext(ctx).Auth)
			if _, tok, ok := strings.Cut(header, " "); ok && len(tok) > 16 {
				require.NotContains(t, err.Error(), tok)
			}
			return
		}
		// Accepted: it must carry the realm's signature, i.e. be the valid token.
		_, tok, _ := strings.Cut(header, " ")
		require.Equal(t, valid, tok)
	})
}
