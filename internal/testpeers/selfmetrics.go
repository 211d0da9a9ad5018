package testpeers

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// SelfMetric reads a collector's own telemetry from its Prometheus endpoint
// (url) and sums the series of one metric, with or without the _total
// suffix, whose line contains every match (label="value" text).
func SelfMetric(t testing.TB, url, name string, match ...string) float64 {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // loopback test URL
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
next:
	for sc.Scan() {
		line := sc.Text()
		series, _, _ := strings.Cut(line, " ")
		series, _, _ = strings.Cut(series, "{")
		if series != name && series != name+"_total" {
			continue
		}
		for _, m := range match {
			if !strings.Contains(line, m) {
				continue next
			}
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		require.NoError(t, err, line)
		sum += v
	}
	require.NoError(t, sc.Err())
	return sum
}
