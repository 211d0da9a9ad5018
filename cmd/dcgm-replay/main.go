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
	"syscall"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/dcgmreplay"
)

func main() {
	listen := flag.String("listen", "localhost:9400", "address to serve /metrics on (the DCGM exporter's port)")
	file := flag.String("file", "testdata/dcgm/gpu-a100-node-1.prom", "recorded scrape in the Prometheus text format")
	flag.Parse()

	if err := run(*listen, *file); err != nil {
		fmt.Fprintln(os.Stderr, "dcgm-replay:", err)
		os.Exit(1)
	}
}

func run(listen, file string) error {
	rec, err := dcgmreplay.Load(file)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", rec)
	srv := &http.Server{Addr: listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("serving %d DCGM series from %s on http://%s/metrics", rec.Series, file, listen)

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
