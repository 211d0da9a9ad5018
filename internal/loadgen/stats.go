package loadgen // import "github.com/nerc-project/ai-telemetry-collector/internal/loadgen"

import (
	"math"
	"net/http"
	"slices"
	"time"
)

// Summary condenses a Result.
type Summary struct {
	Scheduled int
	Sent      int
	Skipped   int
	ByStatus  map[int]int // HTTP status (StatusError for no response) to requests
	Accepted  int         // requests answered 200
	// AcceptedAlerts are the alerts of accepted requests.
	AcceptedAlerts int
	// Latencies over every sent request, from its scheduled time.
	P50, P99, P999, Max time.Duration
	MaxLag              time.Duration // the generator's worst delay behind schedule
	// SendRate is requests sent per second over the sending period;
	// AcceptedRate accepted requests per second from the first scheduled
	// time to the last response.
	SendRate, AcceptedRate float64
	// Elapsed is from the first scheduled time to the last response.
	Elapsed time.Duration
}

// Summarize computes the Summary of a run.
func (r *Result) Summarize() Summary {
	s := Summary{Scheduled: len(r.Requests), ByStatus: map[int]int{}}
	lat := make([]time.Duration, 0, len(r.Requests))
	for _, q := range r.Requests {
		if q.Status == StatusSkipped {
			s.Skipped++
			continue
		}
		s.Sent++
		s.ByStatus[q.Status]++
		if q.Status == http.StatusOK {
			s.Accepted++
		}
		lat = append(lat, q.Latency)
		s.MaxLag = max(s.MaxLag, q.Lag)
	}
	s.AcceptedAlerts = s.Accepted * r.Config.Payload.AlertsPerRequest
	slices.Sort(lat)
	s.P50, s.P99, s.P999 = percentile(lat, 50), percentile(lat, 99), percentile(lat, 99.9)
	if len(lat) > 0 {
		s.Max = lat[len(lat)-1]
	}
	if d := r.LastSent.Sub(r.Start).Seconds(); d > 0 && s.Sent > 1 {
		s.SendRate = float64(s.Sent-1) / d
	}
	s.Elapsed = r.LastDone.Sub(r.Start)
	if d := s.Elapsed.Seconds(); d > 0 {
		s.AcceptedRate = float64(s.Accepted) / d
	}
	return s
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The epsilon keeps p*n/100 = 999.0000000000001 at rank 999.
	rank := int(math.Ceil(p*float64(len(sorted))/100-1e-9)) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}
