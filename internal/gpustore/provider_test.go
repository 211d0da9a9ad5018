package gpustore

import (
	"errors"
	"testing"

	"go.opentelemetry.io/collector/component"
)

type host map[component.ID]component.Component

func (h host) GetExtensions() map[component.ID]component.Component { return h }

type notProvider struct {
	component.StartFunc
	component.ShutdownFunc
}

type provider struct {
	notProvider
	store Store
	err   error
}

func (p provider) GPUStore() (Store, error) { return p.store, p.err }

var errOpen = errors.New("cannot open")

// TestLookup: each way of not finding a store is an error saying which.
func TestLookup(t *testing.T) {
	id := component.MustNewID("gpu_storage")
	tests := []struct {
		name    string
		host    host
		wantErr error
	}{
		{"missing", host{}, nil},
		{"not a provider", host{id: notProvider{}}, ErrNotProvider},
		{"nil store", host{id: provider{}}, ErrNotProvider},
		{"open failed", host{id: provider{err: errOpen}}, errOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Lookup(tt.host, id)
			if err == nil || r != nil {
				t.Fatalf("Lookup = %v, %v; want an error", r, err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v does not wrap %v", err, tt.wantErr)
			}
		})
	}
}
