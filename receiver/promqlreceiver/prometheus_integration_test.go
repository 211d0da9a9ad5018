//go:build integration

package promqlreceiver

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
)

// fixturePath is a recorded DCGM exporter scrape (whole GPUs and MIG slices).
var fixturePath = filepath.Join("..", "..", "testdata", "dcgm", "gpu-a100-node-1.prom")

// Target labels of the DCGM exporter pod, as Kubernetes service discovery
// gives them: the exporter's own pod/namespace/container labels then become
// exported_* (honor_labels: false), as on NERC.
var exporterTarget = map[string]string{
	"job": "nvidia-dcgm-exporter", "instance": "10.128.4.17:9400",
	"namespace": "nvidia-gpu-operator", "pod": "nvidia-dcgm-exporter-x7k2p", "container": "nvidia-dcgm-exporter",
}

// series is one fixture series as Prometheus stores it for a cluster.
type series struct {
	name   string
	labels map[string]string // without __name__
	base   float64           // the recorded value; the sample k minutes*5 after t0 is base+k
}

func (s series) key() string {
	var parts []string
	for k, v := range s.labels {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return s.name + "{" + strings.Join(parts, ",") + "}"
}

// fixtureSeries reads the recording with Prometheus' own parser and labels
// each series as a scrape with honor_labels: false stores it for cluster:
// non-empty workload labels become exported_*, the target's labels are
// added, empty labels dropped (Prometheus never stores them).
func fixtureSeries(t *testing.T, cluster string) []series {
	t.Helper()
	f, err := os.Open(fixturePath)
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(f)
	require.NoError(t, err)
	var out []series
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{"cluster": cluster}
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == "" {
					continue
				}
				if _, clash := exporterTarget[lp.GetName()]; clash {
					labels["exported_"+lp.GetName()] = lp.GetValue()
				} else {
					labels[lp.GetName()] = lp.GetValue()
				}
			}
			for k, v := range exporterTarget {
				labels[k] = v
			}
			var v float64
			switch {
			case m.GetGauge() != nil:
				v = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				v = m.GetCounter().GetValue()
			default:
				v = m.GetUntyped().GetValue()
			}
			out = append(out, series{name: name, labels: labels, base: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// writeOpenMetrics writes samples of every series at t0, t0+5m, ... (n of
// them, one every 300 s as ACM forwards them), grouped by family as
// OpenMetrics requires.
func writeOpenMetrics(t *testing.T, path string, all []series, t0 time.Time, n int) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	w := bufio.NewWriter(f)
	byName := map[string][]series{}
	var names []string
	for _, s := range all {
		if byName[s.name] == nil {
			names = append(names, s.name)
		}
		byName[s.name] = append(byName[s.name], s)
	}
	sort.Strings(names)
	for _, name := range names {
		_, _ = fmt.Fprintf(w, "# TYPE %s gauge\n", name) // write errors surface at Flush
		for _, s := range byName[name] {
			var parts []string
			for k, v := range s.labels {
				parts = append(parts, fmt.Sprintf("%s=%q", k, v))
			}
			sort.Strings(parts)
			for k := range n {
				ts := t0.Add(time.Duration(k) * 5 * time.Minute)
				_, _ = fmt.Fprintf(w, "%s{%s} %g %d\n", name, strings.Join(parts, ","), s.base+float64(k), ts.Unix())
			}
		}
	}
	_, _ = fmt.Fprintln(w, "# EOF")
	require.NoError(t, w.Flush())
	require.NoError(t, f.Close())
}

// realPrometheus is Prometheus from the Debian package, on a loopback port.
type realPrometheus struct {
	url  string
	done chan error
}

// startPrometheus backfills the TSDB from history (promtool) and starts
// Prometheus on it, scraping scrapeTarget (host:port) every second when set.
func startPrometheus(t *testing.T, history []series, t0 time.Time, n int, scrapeTarget string, targetLabels map[string]string) *realPrometheus {
	t.Helper()
	for _, bin := range []string{"prometheus", "promtool"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: install the Debian package prometheus (make deps)", bin)
		}
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if len(history) > 0 {
		om := filepath.Join(dir, "history.om")
		writeOpenMetrics(t, om, history, t0, n)
		out, err := exec.Command("promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", om, data).CombinedOutput()
		require.NoError(t, err, "promtool: %s", out)
	}
	config := "global:\n  evaluation_interval: 1m\nscrape_configs: []\n"
	if scrapeTarget != "" {
		var labels []string
		for k, v := range targetLabels {
			labels = append(labels, fmt.Sprintf("%s: %q", k, v))
		}
		config = fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n- job_name: dcgm\n  static_configs:\n"+
			"  - targets: [%q]\n    labels: {%s}\n", scrapeTarget, strings.Join(labels, ", "))
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(config), 0o600))
	port := testpeers.FreePort(t)
	logPath := filepath.Join(dir, "prometheus.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	defer func() { _ = logFile.Close() }()
	cmd := exec.Command("prometheus", "--config.file="+cfgPath, "--storage.tsdb.path="+data,
		"--storage.tsdb.retention.time=100y", "--web.listen-address=127.0.0.1:"+port)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	p := &realPrometheus{url: "http://127.0.0.1:" + port, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case err := <-p.done:
			t.Logf("prometheus stopped (%v)", err)
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Logf("prometheus killed after 20 s (%v)", <-p.done)
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-p.done:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("prometheus exited (%v):\n%s", err, log)
		default:
		}
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, p.url+"/-/ready", http.NoBody)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("prometheus not ready within a minute:\n%s", log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
