package alertmanagerreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver/internal/metadata"
)

var errNotStorage = errors.New("is not a storage extension")

type alertmanagerReceiver struct {
	cfg       *Config
	settings  receiver.Settings
	telemetry *metadata.TelemetryBuilder
	obsrecv   *receiverhelper.ObsReport

	traces     consumer.Traces
	logs       consumer.Logs
	authorizer authz.Authorizer // nil: every authenticated sender may write

	// record says which spans were emitted; its claims keep two deliveries of
	// the same notification (HA peers) from both emitting, and committer
	// writes concurrent notifications' changes in one storage batch.
	record    *sessionRecord
	committer *groupCommitter
	builder   *spanBuilder
	// onClaimWait, when set (tests), is called when a notification starts
	// waiting for another delivery of the same sessions.
	onClaimWait func()
	// inflight is the memory budget of the notifications being handled.
	inflight *inFlight

	lifecycle  sync.Mutex
	starts     int
	server     *http.Server
	addr       string
	serverDone sync.WaitGroup
	client     storage.Client
	onShutdown func()
}

var (
	_ receiver.Traces = (*alertmanagerReceiver)(nil)
	_ receiver.Logs   = (*alertmanagerReceiver)(nil)
)

func newAlertmanagerReceiver(set receiver.Settings, cfg *Config) (*alertmanagerReceiver, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	obsrecv, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              "http",
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	rec := newSessionRecord(cfg.SessionRecordSize)
	committer := &groupCommitter{rec: rec}
	committer.onError = func(err error, claims int) {
		// Once per failed batch, however many notifications it held.
		tb.ReceiverAlertmanagerSessionRecordErrors.Add(context.Background(), 1)
		if errors.Is(err, errRecordPanic) {
			set.Logger.Error("Writing the session record panicked; its notifications are refused (503) and their retries emit the spans again",
				zap.Error(err), zap.Int("notifications", claims), zap.Stack("stack"))
			return
		}
		set.Logger.Warn("Cannot persist the session record; its notifications are refused (503) and their retries emit the spans again",
			zap.Error(err), zap.Int("notifications", claims))
	}
	return &alertmanagerReceiver{
		inflight:  newInFlight(cfg),
		cfg:       cfg,
		settings:  set,
		telemetry: tb,
		obsrecv:   obsrecv,
		record:    rec,
		committer: committer,
		builder:   newSpanBuilder(cfg, set.BuildInfo.Version),
	}, nil
}

// Start opens the session record and the HTTP server, once for all the
// pipelines that share this receiver.
func (r *alertmanagerReceiver) Start(ctx context.Context, host component.Host) error {
	r.lifecycle.Lock()
	defer r.lifecycle.Unlock()
	r.starts++
	if r.starts > 1 {
		return nil
	}
	if r.cfg.Storage != nil {
		client, err := r.storageClient(ctx, host)
		if err != nil {
			return err
		}
		r.client = client
		if err := r.record.attach(ctx, client); err != nil {
			return err
		}
		r.settings.Logger.Info("Session record loaded", zap.Int("sessions", r.record.len()))
	}

	if r.cfg.Authorizer != nil {
		a, err := authz.Lookup(host, *r.cfg.Authorizer)
		if err != nil {
			return err
		}
		r.authorizer = a
	}

	mux := http.NewServeMux()
	mux.Handle(r.cfg.Path, http.HandlerFunc(r.handleNotification))
	server, err := r.cfg.ToServer(ctx, host.GetExtensions(), r.settings.TelemetrySettings, mux)
	if err != nil {
		return err
	}
	listener, err := r.cfg.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", r.cfg.NetAddr.Endpoint, err)
	}
	r.server = server
	r.addr = listener.Addr().String()
	r.settings.Logger.Info("Receiving Alertmanager webhooks",
		zap.String("endpoint", listener.Addr().String()), zap.String("path", r.cfg.Path))
	r.serverDone.Add(1)
	go func() {
		defer r.serverDone.Done()
		if err := server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	return nil
}

func (r *alertmanagerReceiver) storageClient(ctx context.Context, host component.Host) (storage.Client, error) {
	ext, ok := host.GetExtensions()[*r.cfg.Storage]
	if !ok {
		return nil, fmt.Errorf("storage %s: extension not found", r.cfg.Storage)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return nil, fmt.Errorf("storage %s: %w", r.cfg.Storage, errNotStorage)
	}
	return se.GetClient(ctx, component.KindReceiver, r.settings.ID, "sessions")
}

// Shutdown stops the server once the last pipeline using it shuts down.
func (r *alertmanagerReceiver) Shutdown(ctx context.Context) error {
	r.lifecycle.Lock()
	defer r.lifecycle.Unlock()
	if r.starts > 1 {
		r.starts--
		return nil
	}
	r.starts = 0
	var errs []error
	if r.server != nil {
		errs = append(errs, r.server.Shutdown(ctx))
		r.serverDone.Wait()
		r.server = nil
	}
	if r.client != nil {
		// Normally the server has stopped and no notification uses the
		// record. If server.Shutdown ran out of time, some still may: their
		// Batch on the closed client fails, memory is reverted and they are
		// answered 503, so their retries (elsewhere or after restart) emit again.
		errs = append(errs, r.client.Close(ctx))
		r.client = nil
	}
	r.telemetry.Shutdown()
	if r.onShutdown != nil {
		r.onShutdown()
	}
	return errors.Join(errs...)
}
