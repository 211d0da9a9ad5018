// Command dcgm-replay serves DCGM exporter expositions on /metrics, the way the
// exporter does on a GPU node, for machines without a GPU:
//   - by default a recorded scrape (-file), for make run;
//   - with -schedule a scripted schedule in real time (which project holds which
//     GPU or MIG slice, from when to when, how busy), for make e2e;
//   - with -steps a directory of expositions with explicit sample timestamps, one
//     per scrape, so a multi-hour series replays in as many scrapes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/dcgmreplay"
)

var errModes = errors.New("-schedule and -steps are exclusive")

func main() {
	listen := flag.String("listen", "localhost:9400", "address to serve /metrics on (the DCGM exporter's port)")
	file := flag.String("file", "testdata/dcgm/gpu-a100-node-1.prom", "recorded scrape in the Prometheus text format")
	schedule := flag.String("schedule", "", "schedule file (YAML, see internal/dcgmreplay/schedule.go); replaces -file")
	start := flag.String("start", "", "when the schedule starts (RFC 3339; default: now)")
	steps := flag.String("steps", "", "directory of expositions (*.prom, served in name order, one per scrape, then empty); "+
		"with explicit sample timestamps a multi-hour series replays in as many scrapes; replaces -file")
	flag.Parse()

	handler, what, err := load(*file, *schedule, *start, *steps)
	if err == nil {
		err = run(*listen, handler, what)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dcgm-replay:", err)
		os.Exit(1)
	}
}

// load returns the handler serving the recording, the schedule or the steps.
func load(file, schedule, start, stepsDir string) (http.Handler, string, error) {
	switch {
	case schedule != "" && stepsDir != "":
		return nil, "", errModes
	case schedule != "":
		return loadSchedule(schedule, start)
	case stepsDir != "":
		return loadSteps(stepsDir)
	}
	rec, err := dcgmreplay.Load(file)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", file, err)
	}
	return rec, fmt.Sprintf("%d DCGM series from %s", rec.Series, file), nil
}

func loadSchedule(schedule, start string) (http.Handler, string, error) {
	s, err := dcgmreplay.LoadSchedule(schedule)
	if err != nil {
		return nil, "", err
	}
	t0 := time.Now()
	if start != "" {
		if t0, err = time.Parse(time.RFC3339Nano, start); err != nil {
			return nil, "", fmt.Errorf("-start: %w", err)
		}
	}
	return s.Handler(t0), fmt.Sprintf("schedule %s (%d allocations) starting %s", schedule, len(s.Allocations), t0.Format(time.RFC3339Nano)), nil
}

func loadSteps(dir string) (http.Handler, string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.prom"))
	if err != nil {
		return nil, "", err
	}
	sort.Strings(paths)
	bodies := make([][]byte, 0, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, "", err
		}
		bodies = append(bodies, b)
	}
	steps, err := dcgmreplay.NewSteps(bodies, true)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", dir, err)
	}
	return steps, fmt.Sprintf("%d steps from %s", steps.Len(), dir), nil
}

func run(listen string, handler http.Handler, what string) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", handler)
	srv := &http.Server{Addr: listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("serving %s on http://%s/metrics", what, listen)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
