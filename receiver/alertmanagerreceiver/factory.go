package alertmanagerreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver/internal/metadata"
)

const (
	defaultEndpoint          = "localhost:9097"
	defaultPath              = "/alerts"
	defaultServiceName       = "alertmanager"
	defaultSessionRecordSize = 100_000
	// defaultMaxConcurrentRequests: a few hundred notifications in progress keep
	// group commits full while bounding memory under overload.
	defaultMaxConcurrentRequests = 256
	// defaultMaxConcurrentRequestsPerCaller: a quarter of them, so one
	// caller (an Alertmanager and its HA peers share a client) leaves room.
	defaultMaxConcurrentRequestsPerCaller = 64
	// defaultMaxRequestBodySize: the shipped route groups by node, at most
	// ~60 alerts of ~1 KiB; 1 MiB holds a thousand, a cluster's GPUs.
	defaultMaxRequestBodySize = 1 << 20
	// defaultMaxBodyBytesInFlight: 8 bodies of the largest size at once,
	// 8 MiB x decodeFactor (32) = 256 MiB of heap at most. The gateway runs
	// in a 2 GiB pod whose memory_limiter refuses data above 80% (1638 MiB),
	// keeping 20% (410 MiB) for growth between its checks; a notification is
	// decoded before the limiter sees it, so the receiver's whole budget must
	// fit in that 410 MiB, leaving 154 MiB to the other receivers' bursts.
	defaultMaxBodyBytesInFlight = 8 << 20
	// defaultMaxBodyBytesInFlightPerCaller: half of the budget per caller.
	defaultMaxBodyBytesInFlightPerCaller = defaultMaxBodyBytesInFlight / 2
	// Reading a body of 1 MiB takes well under a second between clusters;
	// the timeouts free the slot of a sender that trickles or stalls.
	defaultReadHeaderTimeout = 10 * time.Second
	defaultReadTimeout       = 30 * time.Second
	// defaultMaxResourcesPerNotification: the shipped Alertmanager route groups
	// by node (configs/alertmanager), and a node's 8 GPUs cut into 7 MIG slices
	// each can serve 56 projects, plus the cluster's resource for idle GPUs:
	// 57 decisions. A lower bound would refuse real sessions for good (every
	// re-send of the group overflows the same way).
	defaultMaxResourcesPerNotification = 64
)

// NewFactory creates a factory for the Alertmanager receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithTraces(createTraces, metadata.TracesStability),
		receiver.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	server := confighttp.NewDefaultServerConfig()
	server.NetAddr.Endpoint = defaultEndpoint
	server.MaxRequestBodySize = defaultMaxRequestBodySize
	server.ReadHeaderTimeout = defaultReadHeaderTimeout
	server.ReadTimeout = defaultReadTimeout
	// Uncompressed only: Alertmanager never compresses, and a decompressor
	// (zstd's window is megabytes) is allocated before the budget is taken.
	server.CompressionAlgorithms = []string{""}
	return &Config{
		ServerConfig:          server,
		Path:                  defaultPath,
		ServiceName:           defaultServiceName,
		ClusterLabel:          topology.DefaultClusterLabel,
		SessionRecordSize:     defaultSessionRecordSize,
		MaxConcurrentRequests: defaultMaxConcurrentRequests,

		MaxConcurrentRequestsPerCaller: defaultMaxConcurrentRequestsPerCaller,
		MaxBodyBytesInFlight:           defaultMaxBodyBytesInFlight,
		MaxBodyBytesInFlightPerCaller:  defaultMaxBodyBytesInFlightPerCaller,

		MaxResourcesPerNotification: defaultMaxResourcesPerNotification,
	}
}

// receivers shares one HTTP server between the traces and logs pipelines that
// use the same receiver configuration.
var receivers = struct {
	sync.Mutex
	byConfig map[*Config]*alertmanagerReceiver
}{byConfig: map[*Config]*alertmanagerReceiver{}}

func getOrCreate(set receiver.Settings, cfg *Config) (*alertmanagerReceiver, error) {
	receivers.Lock()
	defer receivers.Unlock()
	if r, ok := receivers.byConfig[cfg]; ok {
		return r, nil
	}
	r, err := newAlertmanagerReceiver(set, cfg)
	if err != nil {
		return nil, err
	}
	receivers.byConfig[cfg] = r
	r.onShutdown = func() {
		receivers.Lock()
		defer receivers.Unlock()
		delete(receivers.byConfig, cfg)
	}
	return r, nil
}

func createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	r, err := getOrCreate(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.traces = next
	return r, nil
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	r, err := getOrCreate(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.logs = next
	return r, nil
}
