package dashboardfixture // import "github.com/nerc-project/ai-telemetry-collector/internal/dashboardfixture"

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The recorded pipeline output, in the dashboards' testdata directory: one
// OTLP JSON document a line.
const (
	MetricsFile = "metrics.jsonl.gz"
	TracesFile  = "traces.jsonl"
)

var errEmptyRecording = errors.New("recording holds no request")

// RecordedMetrics reads dir/metrics.jsonl.gz, one request per scrape.
func RecordedMetrics(dir string) ([]pmetric.Metrics, error) {
	f, err := os.Open(filepath.Join(dir, MetricsFile))
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", MetricsFile, err)
	}
	var u pmetric.JSONUnmarshaler
	return eachLine(zr, MetricsFile, u.UnmarshalMetrics)
}

// RecordedTraces reads dir/traces.jsonl, one request per notification.
func RecordedTraces(dir string) ([]ptrace.Traces, error) {
	f, err := os.Open(filepath.Join(dir, TracesFile))
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var u ptrace.JSONUnmarshaler
	return eachLine(f, TracesFile, u.UnmarshalTraces)
}

func eachLine[T any](r io.Reader, name string, decode func([]byte) (T, error)) ([]T, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	var out []T
	for line := 1; sc.Scan(); line++ {
		v, err := decode(sc.Bytes())
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w", name, errEmptyRecording)
	}
	return out, nil
}
