//go:build load

package load

import (
	"os"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
)

// cpuCategory is a part of the collector's work: a CPU sample belongs to the
// first category (in cpuCategories' order) with a frame anywhere in the
// sample's stack whose function name contains one of match.
type cpuCategory struct {
	name  string
	match []string
}

// cpuCategories are the parts of the collector's path a webhook takes.
var cpuCategories = []cpuCategory{
	{"garbage collection (background and assists)", []string{"runtime.gcBgMarkWorker", "runtime.gcAssistAlloc", "runtime.bgsweep", "runtime.bgscavenge"}},
	{"keycloakauth: token validation (cache hit after the first request of a token)", []string{"keycloakauth.(*keycloakAuth)."}},
	{"receiver: session record on file_storage (group commit, one bbolt write per batch of notifications)", []string{"alertmanagerreceiver.(*sessionRecord).", "alertmanagerreceiver.(*groupCommitter)."}},
	{"receiver: webhook JSON decoding", []string{"alertmanagerreceiver.decodeNotification"}},
	{"receiver: building spans", []string{"alertmanagerreceiver.(*spanBuilder).", "alertmanagerreceiver.(*spanBatch)."}},
	{"file exporter: OTLP JSON encoding and write", []string{"fileexporter."}},
	{"receiver: rest of the handler", []string{"alertmanagerreceiver."}},
	{"TLS", []string{"crypto/"}},
	{"HTTP/2 and HTTP server, confighttp", []string{"net/http.", "confighttp.", "otelhttp."}},
	{"Go runtime: scheduler, syscalls, other", []string{"runtime.", "syscall."}},
}

type cpuShare struct {
	name     string
	fraction float64
}

// cpuBreakdown reads a CPU profile and returns the share of each category.
func cpuBreakdown(path string) ([]cpuShare, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	p, err := profile.Parse(f)
	if err != nil {
		return nil, err
	}
	idx := len(p.SampleType) - 1 // cpu nanoseconds
	totals := make([]int64, len(cpuCategories)+1)
	var all int64
	for _, s := range p.Sample {
		v := s.Value[idx]
		all += v
		totals[categorize(s)] += v
	}
	shares := make([]cpuShare, 0, len(totals))
	for i, v := range totals {
		name := "other"
		if i < len(cpuCategories) {
			name = cpuCategories[i].name
		}
		if v > 0 && all > 0 {
			shares = append(shares, cpuShare{name, float64(v) / float64(all)})
		}
	}
	slices.SortStableFunc(shares, func(a, b cpuShare) int {
		switch {
		case a.fraction > b.fraction:
			return -1
		case a.fraction < b.fraction:
			return 1
		}
		return 0
	})
	return shares, nil
}

func categorize(s *profile.Sample) int {
	for c, cat := range cpuCategories {
		for _, loc := range s.Location {
			for _, line := range loc.Line {
				if line.Function == nil {
					continue
				}
				for _, m := range cat.match {
					if strings.Contains(line.Function.Name, m) {
						return c
					}
				}
			}
		}
	}
	return len(cpuCategories)
}
