// Command storecompare compares embedded databases for the embedded GPU
// store (issue 16): SQLite through two pure-Go drivers and DuckDB, on the
// planned store's raw samples and hourly rollup tables. It measures ingest
// of 30 s scrapes, the monthly GPU-hours report by project over the rollup,
// file sizes and each driver's binary size and build constraints, and prints
// Markdown tables for docs/benchmarks.md.
//
//	go -C internal/tools/storecompare run . -gpus 1000 -days 400
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "storecompare:", err)
		os.Exit(1)
	}
}

// errBadSize is returned for a size or count flag below 1.
var errBadSize = errors.New("-gpus, -days, -projects, -batches and -runs must be positive")

type options struct {
	size          Size
	batches, runs int
	cache         string
	ingest        []string
	report        []string
	binsize       bool
}

func parse(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("storecompare", flag.ContinueOnError)
	fs.IntVar(&o.size.GPUs, "gpus", 1000, "devices (GPUs and MIG slices) per scrape and in the rollup")
	fs.IntVar(&o.size.Days, "days", 400, "days of hourly rollups")
	fs.IntVar(&o.size.Projects, "projects", 200, "projects holding the devices")
	fs.IntVar(&o.batches, "batches", 720, "scrapes ingested per engine (720: 6 hours at 30 s)")
	fs.IntVar(&o.runs, "runs", 5, "timed runs of each report (the median is reported)")
	fs.StringVar(&o.cache, "cache", filepath.Join(os.TempDir(), "storecompare"), "directory of the generated databases")
	ingest := fs.String("ingest", "sqlite-modernc,sqlite-modernc-sync-normal,sqlite-ncruces,duckdb,duckdb-insert", "engines of the ingest benchmark")
	// Not sqlite-ncruces: it runs out of its Wasm memory on the whole-rollup
	// report and panics (docs/benchmarks.md); -report sqlite-ncruces shows it.
	report := fs.String("report", "sqlite-modernc,sqlite-modernc-daily,duckdb", "engines of the report benchmark")
	fs.BoolVar(&o.binsize, "binsize", true, "build the probe programs and compare binary sizes")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.size.GPUs < 1 || o.size.Days < 1 || o.size.Projects < 1 || o.batches < 1 || o.runs < 1 {
		return o, errBadSize
	}
	o.ingest, o.report = split(*ingest), split(*report)
	for _, n := range slices.Concat(o.ingest, o.report) {
		if _, err := newEngine(n); err != nil {
			return o, fmt.Errorf("%q: %w", n, err)
		}
	}
	return o, nil
}

func split(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func run(ctx context.Context, args []string, w io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.cache, 0o755); err != nil {
		return err
	}
	t := newTopology(o.size)
	fmt.Fprintf(w, "%s %s/%s, GOMAXPROCS=%d, NumCPU=%d\n\n", runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.GOMAXPROCS(0), runtime.NumCPU())

	if len(o.ingest) > 0 {
		fmt.Fprintf(w, "Ingest: scrapes of %d devices, one transaction each, into a new file\n\n", o.size.GPUs)
		fmt.Fprintln(w, "| Engine | scrapes | rows/s | ms/scrape | file MiB | bytes/row | MiB per GPU-day |")
		fmt.Fprintln(w, "| ------ | ------: | -----: | --------: | -------: | --------: | --------------: |")
		for _, n := range o.ingest {
			batches := o.batches
			if n == "duckdb-insert" {
				// About 1,000 rows/s: a few scrapes show it.
				batches = min(batches, 10)
			}
			progress("ingest %s", n)
			r, err := benchIngest(ctx, n, t, o.size, batches, o.cache)
			if err != nil {
				return fmt.Errorf("ingest %s: %w", n, err)
			}
			rows := float64(batches * o.size.GPUs)
			fmt.Fprintf(w, "| %s | %d | %.0f | %.2f | %.1f | %.1f | %.3f |\n", n, batches, rows/r.elapsed.Seconds(),
				float64(r.elapsed.Microseconds())/1000/float64(batches), mib(r.bytes), float64(r.bytes)/rows,
				mib(r.bytes)/rows*samplesPerGPUDay)
		}
		fmt.Fprintln(w)
	}

	if len(o.report) > 0 {
		if err := benchReports(ctx, w, t, o); err != nil {
			return err
		}
	}
	if o.binsize {
		return binarySizes(ctx, w)
	}
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

type ingestResult struct {
	elapsed time.Duration
	bytes   int64
}

func benchIngest(ctx context.Context, name string, t *topology, size Size, batches int, cache string) (ingestResult, error) {
	var r ingestResult
	path := filepath.Join(cache, "ingest-"+name+".db")
	if err := removeDB(path); err != nil {
		return r, err
	}
	e, _ := newEngine(name)
	if err := e.Open(ctx, path); err != nil {
		return r, err
	}
	defer e.Close()
	if err := e.CreateRaw(ctx); err != nil {
		return r, err
	}
	batch := make([]Sample, size.GPUs)
	for i := range batches {
		t.fillBatch(batch, i) // outside the clock: every engine gets the same rows
		begin := time.Now()
		if err := e.IngestBatch(ctx, batch); err != nil {
			return r, err
		}
		r.elapsed += time.Since(begin)
	}
	if err := e.Close(); err != nil {
		return r, err
	}
	var err error
	r.bytes, err = dbSize(path)
	return r, err
}

// removeDB removes a database file and its SQLite or DuckDB side files.
func removeDB(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm", path + ".wal", path + ".done"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// dbSize is the size of a database file with its write-ahead log, if any
// is left after the checkpoint on close.
func dbSize(path string) (int64, error) {
	var n int64
	for _, p := range []string{path, path + "-wal", path + ".wal"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) && p != path {
			continue
		}
		if err != nil {
			return 0, err
		}
		n += fi.Size()
	}
	return n, nil
}

// rollupFile is the cached rollup database of an engine's file format:
// both SQLite drivers read the same file.
func rollupFile(o options, name string) (path, builder string) {
	format, builder := "duckdb", "duckdb"
	switch {
	case strings.HasSuffix(name, "-daily"):
		format, builder = "sqlite-daily", name
	case strings.HasPrefix(name, "sqlite"):
		format, builder = "sqlite", "sqlite-modernc"
	}
	return filepath.Join(o.cache, fmt.Sprintf("rollup-%s-%s.db", format, o.size.key())), builder
}

// ensureRollup builds the cached rollup file unless a finished one exists
// (marked by a .done file written after the load closed cleanly).
func ensureRollup(ctx context.Context, w io.Writer, t *topology, o options, name string) error {
	path, builder := rollupFile(o, name)
	if _, err := os.Stat(path + ".done"); err == nil {
		return nil
	}
	if err := removeDB(path); err != nil {
		return err
	}
	e, _ := newEngine(builder)
	load := e.LoadRollup
	rows := o.size.RollupRows()
	if se, ok := e.(*sqliteEngine); ok && se.daily {
		// Derived from the hourly rollup, in a file of its own so that
		// its size is its own.
		if err := ensureRollup(ctx, w, t, o, "sqlite-modernc"); err != nil {
			return err
		}
		hourly, _ := rollupFile(o, "sqlite-modernc")
		load = func(ctx context.Context, _ *topology) error { return se.buildDaily(ctx, hourly) }
	}
	if err := e.Open(ctx, path); err != nil {
		return err
	}
	progress("building %s", filepath.Base(path))
	begin := time.Now()
	if err := load(ctx, t); err != nil {
		_ = e.Close()
		return err
	}
	if err := e.Close(); err != nil {
		return err
	}
	fmt.Fprintf(w, "(built %s from %d hourly rows in %s, %.0f rows/s)\n\n", filepath.Base(path), rows,
		time.Since(begin).Round(time.Millisecond), float64(rows)/time.Since(begin).Seconds())
	return os.WriteFile(path+".done", nil, 0o644)
}

type reportCase struct {
	label string
	q     ReportQuery
}

func benchReports(ctx context.Context, w io.Writer, t *topology, o options) error {
	end := start.AddDate(0, 0, o.size.Days)
	p := t.devicesOf(7%o.size.Projects, 0)[0] // a project holding a device of the first cluster on day 0
	cases := []reportCase{
		{fmt.Sprintf("all %d projects, %d days", o.size.Projects, o.size.Days), ReportQuery{From: start, To: end}},
		{fmt.Sprintf("one project, %d days", o.size.Days), ReportQuery{
			From: start, To: end, Hub: hubName, Cluster: t.devices[p].cluster, Namespace: t.projects[7%o.size.Projects],
		}},
		{"all projects, last 30 days", ReportQuery{From: end.AddDate(0, 0, -30), To: end}},
	}
	qs := make([]ReportQuery, len(cases))
	for i, c := range cases {
		qs[i] = c.q
	}
	want, err := referenceReport(t, qs...)
	if err != nil {
		return err
	}
	type result struct {
		name  string
		bytes int64
		med   []time.Duration
		first []time.Duration
		runs  []int
	}
	var results []result
	for _, n := range o.report {
		if err := ensureRollup(ctx, w, t, o, n); err != nil {
			return fmt.Errorf("rollup %s: %w", n, err)
		}
		path, _ := rollupFile(o, n)
		size, err := dbSize(path)
		if err != nil {
			return err
		}
		e, _ := newEngine(n)
		if err := e.Open(ctx, path); err != nil {
			return err
		}
		r := result{name: n, bytes: size}
		for i, c := range cases {
			var times []time.Duration
			var spent time.Duration
			// A first run, then o.runs timed ones, but no more once they
			// took 30 s (SQLite's whole-rollup scans take a minute on a
			// busy machine), to keep the whole run short.
			for j := 0; j <= o.runs && (j <= 1 || spent < 30*time.Second); j++ {
				begin := time.Now()
				got, err := e.Report(ctx, c.q)
				if err != nil {
					_ = e.Close()
					return fmt.Errorf("%s, %s: %w", n, c.label, err)
				}
				times = append(times, time.Since(begin))
				if j > 0 {
					spent += times[j]
				}
				progress("%s, %s: %s", n, c.label, times[j].Round(time.Microsecond))
				// Every engine must give the Go reference's answer, or
				// its numbers compare nothing.
				if err := sameReport(got, want[i]); err != nil {
					_ = e.Close()
					return fmt.Errorf("%s, %s: wrong report: %w", n, c.label, err)
				}
			}
			r.first = append(r.first, times[0])
			r.runs = append(r.runs, len(times)-1)
			timed := times[1:]
			sort.Slice(timed, func(a, b int) bool { return timed[a] < timed[b] })
			r.med = append(r.med, timed[len(timed)/2])
		}
		if err := e.Close(); err != nil {
			return err
		}
		results = append(results, r)
	}
	fmt.Fprintf(w, "Monthly GPU-hours report by project from the hourly rollup (%d rows: %d devices, %d days, %d projects); median of the timed runs (how many in brackets) after a first one (its time in brackets)\n\n",
		o.size.RollupRows(), o.size.GPUs, o.size.Days, o.size.Projects)
	header := "| Engine | rollup file MiB | bytes/row |"
	rule := "| ------ | --------------: | --------: |"
	for _, c := range cases {
		header += " " + c.label + " ms (first) |"
		rule += " ---: |"
	}
	fmt.Fprintln(w, header)
	fmt.Fprintln(w, rule)
	for _, r := range results {
		line := fmt.Sprintf("| %s | %.1f | %.1f |", r.name, mib(r.bytes), float64(r.bytes)/float64(o.size.RollupRows()))
		if strings.HasSuffix(r.name, "-daily") {
			line = fmt.Sprintf("| %s | %.1f | - |", r.name, mib(r.bytes))
		}
		for i := range cases {
			line += fmt.Sprintf(" %.1f (%d; %.1f) |", ms(r.med[i]), r.runs[i], ms(r.first[i]))
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "\nReport rows: %d, %d, %d; every engine's answer equals the Go reference computed from the generator.\n\n",
		len(want[0]), len(want[1]), len(want[2]))
	return nil
}

// progress tells stderr how far a long run is.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// binarySizes builds each probe the way ocb builds the collector
// (-trimpath, -ldflags "-s -w"), pure-Go drivers with CGO_ENABLED=0, and
// DuckDB with and without cgo.
func binarySizes(ctx context.Context, w io.Writer) error {
	dir, err := os.MkdirTemp("", "storecompare-bin")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	type build struct {
		probe string
		cgo   string
	}
	builds := []build{{"baseline", "0"}, {"modernc", "0"}, {"ncruces", "0"}, {"duckdb", "0"}, {"duckdb", "1"}}
	fmt.Fprintln(w, "Binary size: probe programs built as ocb builds (-trimpath -ldflags=\"-s -w\")")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Probe | CGO_ENABLED | build s | size MiB | over baseline MiB | result |")
	fmt.Fprintln(w, "| ----- | ----------: | ------: | -------: | ----------------: | ------ |")
	var base int64
	for _, b := range builds {
		out := filepath.Join(dir, b.probe+"-cgo"+b.cgo)
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./probe/"+b.probe)
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+b.cgo)
		begin := time.Now()
		msg, err := cmd.CombinedOutput()
		secs := time.Since(begin).Seconds()
		if err != nil {
			// The last line says why (the first ones are the import chain).
			fmt.Fprintf(w, "| %s | %s | %.0f | - | - | build fails: %s |\n", b.probe, b.cgo, secs, lastLine(string(msg)))
			continue
		}
		fi, err := os.Stat(out)
		if err != nil {
			return err
		}
		res := "runs"
		if o, err := exec.CommandContext(ctx, out).CombinedOutput(); err != nil {
			res = "fails to run: " + lastLine(string(o))
		}
		if b.probe == "baseline" {
			base = fi.Size()
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %.1f | %.1f | %s |\n", b.probe, b.cgo, secs, mib(fi.Size()), mib(fi.Size()-base), res)
	}
	fmt.Fprintln(w)
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.ReplaceAll(strings.TrimSpace(lines[len(lines)-1]), "|", "\\|")
}
