// Package dcgmreplay serves a recorded NVIDIA DCGM exporter scrape, so the
// collector's scrape pipeline can run on machines without a GPU (make run, the
// smoke test).
package dcgmreplay // import "github.com/nerc-project/ai-telemetry-collector/internal/dcgmreplay"

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ContentType is what the DCGM exporter answers with: the Prometheus text format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

var errNoDCGMSeries = errors.New("recording has no DCGM_FI_* series")

// Recording is one parsed and validated exposition.
type Recording struct {
	body   []byte
	Series int
}

// Load reads and validates a recorded scrape; a file that the Prometheus text
// parser rejects, or that holds no DCGM series, is refused with the reason.
func Load(path string) (*Recording, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading recording: %w", err)
	}
	return Parse(body)
}

// Parse validates an exposition held in memory.
func Parse(body []byte) (*Recording, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parsing recording: %w", err)
	}
	series := 0
	for name, mf := range families {
		if strings.HasPrefix(strings.ToUpper(name), "DCGM_FI_") {
			series += len(mf.GetMetric())
		}
	}
	if series == 0 {
		return nil, errNoDCGMSeries
	}
	return &Recording{body: body, Series: series}, nil
}

// ServeHTTP answers every GET or HEAD with the recorded exposition.
func (r *Recording) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", fmt.Sprint(len(r.body)))
	if req.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(r.body)
}
