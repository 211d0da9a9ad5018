//go:build load

package load

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/loadgen"
)

// report renders docs/load.md.
type report struct {
	settings      settings
	summary       loadgen.Summary
	tally         loadgen.Tally
	usage         usage
	peakRSS       int64
	tokenRequests int64
	loadavg       string
	goVersion     string
	stopErr       error
	profile       []cpuShare // where the collector's CPU went, if profiled
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func cores(cpu, wall time.Duration) string {
	return fmt.Sprintf("%.1f s (%.2f cores)", cpu.Seconds(), cpu.Seconds()/wall.Seconds())
}

func cpuModel() string {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(raw), "\n") {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return runtime.GOARCH
}

func (r report) rejected() string {
	var parts []string
	var statuses []int
	for st := range r.summary.ByStatus {
		statuses = append(statuses, st)
	}
	slices.Sort(statuses)
	for _, st := range statuses {
		switch st {
		case http.StatusOK:
		case loadgen.StatusError:
			parts = append(parts, fmt.Sprintf("no response (timeout or connection error): %d", r.summary.ByStatus[st]))
		default:
			parts = append(parts, fmt.Sprintf("%d %s: %d", st, http.StatusText(st), r.summary.ByStatus[st]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

func (r report) markdown() string {
	s, t, u := r.summary, r.tally, r.usage
	lost := "**yes: nothing lost**, every accepted alert is exactly one span, no refused alert has one"
	if t.Lost() {
		lost = fmt.Sprintf("**NO**: %d accepted alerts missing, %d duplicated, %d wrong span names, %d spans of refused requests, %d foreign spans",
			t.Missing, t.Duplicated, t.WrongName, t.Unexpected, t.Foreign)
	}
	stop := "exit status 0"
	if r.stopErr != nil {
		stop = "**" + r.stopErr.Error() + "**"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Load test: Alertmanager webhooks through the collector

Produced by `+"`make load LOAD_RATE=%d LOAD_DURATION=%s LOAD_ALERTS=%d`"+` (`+"`test/load`"+`, generator in
`+"`internal/loadgen`"+`) on %s, %s, %s, %d cores. What other processes on the machine used during the
run is the "other processes" row below (load average before the run: %s).

## What runs

All on loopback, on one machine:
- the built distribution `+"`_build/otelcol-ai-telemetry`"+` on `+"`test/load/testdata/collector.yaml`"+`: the gateway's
  Alertmanager path (`+"`configs/gateway.yaml`"+`): the `+"`alertmanager`"+` receiver over TLS (a test CA, ECDSA P-256),
  `+"`keycloakauth`"+` validating every request's token against the real Keycloak's keys, the session record on
  `+"`file_storage`"+` with `+"`fsync`"+`, `+"`memory_limiter`"+` and no batch processor (the exporter batches from its queue, in
  memory here so that stopping the collector drains it), exporting to the `+"`file`"+` exporter (OTLP JSON) instead of Tempo;
- Keycloak %s in dev mode with realm NERC (`+"`extension/keycloakauth/testdata/realm-nerc.json`"+`, client secrets drawn
  for the run, access tokens living %s);
- the generator, in the test process: Alertmanager's webhook client (HTTP/2 over TLS, client-credentials token of
  `+"`hub-writer`"+` from Keycloak with x/oauth2, replaced 10 s before it expires), **open loop**: request *i* is
  scheduled at start + *i*/rate whatever happened to earlier ones, and its latency is measured from that scheduled
  time, so a slow collector shows in the latency instead of slowing the load (no coordinated omission). Requests time
  out after 10 s.

Each request is one webhook notification of %d `+"`GPUInUse`"+` alerts (half firing, half resolved), every alert its
own session (unique fingerprint), so each must become exactly one span (`+"`gpu.usage.start`"+` for a firing alert,
`+"`gpu.usage`"+` for a resolved one). After the run the collector is stopped (SIGTERM, which drains the exporter's
queue; %s) and every span in its output is matched to its alert.

## Results

| | |
| --- | ---: |
| scheduled | %d requests (%d/s for %s), %d alerts |
| sent | %d (skipped by the generator: %d) |
| accepted (200) | %d requests, %d alerts |
| not accepted, by status | %s |
| latency from scheduled time, p50 / p99 / p99.9 / max | %s / %s / %s / %s |
| generator's worst lag behind schedule | %s |
| achieved rate: sent / accepted | %.0f/s / %.0f/s |
| collector's processing rate: this run's spans in the output / (last response - first scheduled) | %.0f alerts/s (%.0f requests/s) |
| collector peak RSS (VmHWM) | %.0f MiB |
| collector CPU during the run | %s |
| generator CPU (test process) | %s |
| Keycloak CPU | %s |
| other processes on the machine | %s |
| machine busy | %.0f%% of %d cores |
| token requests to Keycloak during the run | %d |
| spans of this run in the output | %d |
| nothing lost | %s |
`,
		r.settings.rate, r.settings.duration, r.settings.alerts,
		time.Now().UTC().Format("2006-01-02 15:04 MST"), r.goVersion, cpuModel(), runtime.NumCPU(), strings.Join(strings.Fields(r.loadavg)[:3], " "),
		keycloakVersion(), tokenLifespan, r.settings.alerts, stop,
		s.Scheduled, r.settings.rate, r.settings.duration, s.Scheduled*r.settings.alerts,
		s.Sent, s.Skipped, s.Accepted, s.AcceptedAlerts, r.rejected(),
		ms(s.P50), ms(s.P99), ms(s.P999), ms(s.Max), ms(s.MaxLag),
		s.SendRate, s.AcceptedRate,
		float64(t.Spans)/s.Elapsed.Seconds(), float64(t.Spans)/float64(r.settings.alerts)/s.Elapsed.Seconds(),
		float64(r.peakRSS)/(1<<20),
		cores(u.collector, u.wall), cores(u.generator, u.wall), cores(u.keycloak, u.wall), cores(u.others, u.wall),
		100*u.machineBusy.Seconds()/u.machineTotal.Seconds(), runtime.NumCPU(),
		r.tokenRequests, t.Spans, lost)
	if t.OfUnanswered > 0 {
		fmt.Fprintf(&b, "\n%d alerts of requests that got no response did reach the output (once each): the collector took them "+
			"after the sender gave up; Alertmanager would retry them and the session record would suppress the repeat.\n", t.OfUnanswered)
	}
	if len(r.profile) > 0 {
		b.WriteString("\n## Where the collector's CPU went\n\n" +
			"CPU profile of the collector (pprof extension) over the middle half of the run (`LOAD_CPU_PROFILE`); each sample\n" +
			"counted once, in the first row whose code is on its stack.\n\n| part | share |\n| --- | ---: |\n")
		for _, sh := range r.profile {
			fmt.Fprintf(&b, "| %s | %.1f%% |\n", sh.name, 100*sh.fraction)
		}
	}
	return b.String()
}

// keycloakVersion is the Keycloak distribution's directory suffix.
func keycloakVersion() string {
	home := strings.TrimSuffix(os.Getenv("KEYCLOAK_HOME"), "/")
	return strings.TrimPrefix(home[strings.LastIndex(home, "/")+1:], "keycloak-")
}
