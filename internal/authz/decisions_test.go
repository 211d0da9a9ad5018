package authz

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecisions(t *testing.T) {
	errDown := errors.New("connection refused")
	var asked []string
	a := AuthorizerFunc(func(_ context.Context, resource string) error {
		asked = append(asked, resource)
		switch resource {
		case "allowed", "allowed2":
			return nil
		case "down":
			return errDown
		}
		return fmt.Errorf("%w on %s", ErrDenied, resource)
	})
	d := NewDecisions(a, 3)
	ctx := context.Background()

	require.NoError(t, d.Decide(ctx, "allowed"))
	require.NoError(t, d.Decide(ctx, "allowed"))
	require.ErrorIs(t, d.Decide(ctx, "denied"), ErrDenied)
	err := d.Decide(ctx, "down")
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorIs(t, err, errDown)
	require.NotErrorIs(t, err, ErrDenied)
	assert.Equal(t, []string{"allowed", "denied", "down"}, asked, "each distinct resource asked once")

	err = d.Decide(ctx, "allowed2")
	require.ErrorIs(t, err, ErrTooManyResources, "a fourth distinct resource is beyond the bound")
	require.ErrorIs(t, err, ErrDenied, "and refused")
	require.NoError(t, d.Decide(ctx, "allowed"), "a resource already decided is still answered")
	assert.Len(t, asked, 3)
}

func TestDecisionsCancelled(t *testing.T) {
	called := false
	d := NewDecisions(AuthorizerFunc(func(context.Context, string) error { called = true; return nil }), 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := d.Decide(ctx, "allowed")
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorIs(t, err, context.Canceled)
	assert.False(t, called, "a cancelled request asks nothing")
}
