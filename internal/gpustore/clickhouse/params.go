package clickhouse

import (
	"strconv"
	"strings"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// params are query parameter values in ClickHouse's text format, as the
// HTTP interface's param_<name> and the native protocol take them.
type params map[string]string

const timeLayout = "2006-01-02 15:04:05.000000000"

// quote is a string literal in ClickHouse's text format (inside arrays and
// tuples): backslash and quote escaped.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func array(items []string) string { return "[" + strings.Join(items, ", ") + "]" }

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// scopeParams are every query's scope and filter parameters.
func scopeParams(f gpustore.Filter, limit int) params {
	hubs := make([]string, 0, len(f.Scope.Hubs))
	for _, h := range f.Scope.Hubs {
		hubs = append(hubs, quote(h))
	}
	clusters := make([]string, 0, len(f.Scope.Clusters))
	for _, c := range f.Scope.Clusters {
		clusters = append(clusters, "("+quote(c.Hub)+", "+quote(c.Cluster)+")")
	}
	projects := make([]string, 0, len(f.Scope.Projects))
	for _, p := range f.Scope.Projects {
		projects = append(projects, "("+quote(p.Hub)+", "+quote(p.Cluster)+", "+quote(p.Namespace)+")")
	}
	p := params{
		"all":         strconv.FormatBool(f.Scope.All),
		"hubs":        array(hubs),
		"clusters":    array(clusters),
		"projects":    array(projects),
		"f_hub":       f.Hub,
		"f_cluster":   f.Cluster,
		"f_node":      f.Node,
		"f_namespace": f.Namespace,
		"f_device":    f.Device,
		"windowed":    strconv.FormatBool(!f.Window.IsZero()),
		"from":        formatTime(f.Window.From),
		"to":          formatTime(f.Window.To),
		"limit":       strconv.Itoa(limit),
		"offset":      strconv.Itoa(f.Offset),
		"lone_s":      strconv.Itoa(gpustore.LoneSampleIntervalS),
		"cap_s":       strconv.Itoa(gpustore.MaxSampleIntervalS),
		"idle_busy":   strconv.FormatFloat(gpustore.IdleBusyThreshold, 'g', -1, 64),
		"keys":        "[]",
		"step":        "",
	}
	if f.Window.IsZero() {
		p["from"], p["to"] = formatTime(time.Unix(0, 0)), formatTime(time.Unix(0, 0))
	}
	return p
}

func keysParam(keys []string) string {
	q := make([]string, 0, len(keys))
	for _, k := range keys {
		q = append(q, quote(k))
	}
	return array(q)
}
