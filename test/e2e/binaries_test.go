//go:build e2e

package e2e

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// binary is the path make e2e passes in env for one of the chain's programs.
func binary(t *testing.T, env string) string {
	t.Helper()
	bin := os.Getenv(env)
	require.NotEmpty(t, bin, "%s must name the binary (make e2e sets it)", env)
	_, err := os.Stat(bin)
	require.NoError(t, err, "%s=%s", env, bin)
	return bin
}
