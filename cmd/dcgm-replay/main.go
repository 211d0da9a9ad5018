// Command dcgm-replay serves a recorded DCGM exporter scrape on /metrics, the
// way the exporter does on a GPU node, for make run on machines without a GPU.
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

func main() {
	listen := flag.String("listen", "localhost:9400", "address to serve /metrics on (the DCGM exporter's port)")
	file := flag.String("file", "testdata/dcgm/gpu-a100-node-1.prom", "recorded scrape in the Prometheus text format")
	steps := flag.String("steps", "", "directory of expositions (*.prom, served in name order, one per scrape, then empty); "+
		"with explicit sample timestamps a multi-hour series replays in as many scrapes")
	flag.Parse()

	if err := run(*listen, *file, *steps); err != nil {
		fmt.Fprintln(os.Stderr, "dcgm-replay:", err)
		os.Exit(1)
	}
}

func run(listen, file, stepsDir string) error {
	handler, what, err := load(file, stepsDir)
	if err != nil {
		return err
	}
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

// load reads one recording (-file) or a directory of steps (-steps).
func load(file, stepsDir string) (http.Handler, string, error) {
	if stepsDir == "" {
		rec, err := dcgmreplay.Load(file)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", file, err)
		}
		return rec, fmt.Sprintf("%d DCGM series from %s", rec.Series, file), nil
	}
	paths, err := filepath.Glob(filepath.Join(stepsDir, "*.prom"))
	if err != nil {
		return nil, "", err
	}
	sort.Strings(paths)
	steps := make([][]byte, 0, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, "", err
		}
		steps = append(steps, b)
	}
	sched, err := dcgmreplay.NewSchedule(steps, true)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", stepsDir, err)
	}
	return sched, fmt.Sprintf("%d steps from %s", sched.Len(), stepsDir), nil
}
