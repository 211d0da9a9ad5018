package gpustorageextension // import "github.com/nerc-project/ai-telemetry-collector/extension/gpustorageextension"

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.uber.org/zap"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore/clickhouse"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore/embedded"
)

var errNotStarted = errors.New("gpu_storage extension not started")

// storage opens its backend at Start and closes it at Shutdown.
type storage struct {
	cfg    *Config
	logger *zap.Logger
	store  gpustore.Store
}

var (
	_ component.Component = (*storage)(nil)
	_ gpustore.Provider   = (*storage)(nil)
)

func (s *storage) Start(ctx context.Context, _ component.Host) error {
	var err error
	switch {
	case (s.cfg.Embedded == nil) == (s.cfg.ClickHouse == nil):
		err = errOneBackend
	case s.cfg.Embedded != nil:
		s.store, err = embedded.Open(ctx, *s.cfg.Embedded)
		if err == nil {
			s.logger.Info("GPU store opened", zap.String("backend", "embedded"), zap.String("path", s.cfg.Embedded.Path))
		}
	default:
		s.store, err = clickhouse.Open(ctx, *s.cfg.ClickHouse)
		if err == nil {
			s.logger.Info("GPU store opened", zap.String("backend", "clickhouse"), zap.String("database", s.cfg.ClickHouse.Database))
		}
	}
	if err != nil {
		return fmt.Errorf("gpu_storage: %w", err)
	}
	return nil
}

func (s *storage) Shutdown(context.Context) error {
	if s.store == nil {
		return nil
	}
	err := s.store.Close()
	s.store = nil
	return err
}

// GPUStore returns the open store; components call it from their Start,
// after this extension's (they declare the dependency).
func (s *storage) GPUStore() (gpustore.Store, error) {
	if s.store == nil {
		return nil, errNotStarted
	}
	return s.store, nil
}
