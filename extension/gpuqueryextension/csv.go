package gpuqueryextension // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension"

import (
	"bytes"
	"encoding/csv"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// csvTable is a report as rows of cells, the header first.
type csvTable [][]string

// keyOrder is the column order of aggregation keys: where the row is, then
// who pays, then what it ran on. The project's key carries its hub and
// cluster, so a project column is always next to them.
var keyOrder = []string{gpustore.KeyHub, gpustore.KeyCluster, gpustore.KeyProject, gpustore.KeyPI, gpustore.KeyNode, gpustore.KeyModel, gpustore.KeyProfile, gpustore.KeyDevice}

// gpuHoursCSV: start,end,<keys>,allocated_gpu_hours,used_gpu_hours,idle_gpu_hours,devices.
// The columns are the keys asked for plus any the rows carry, in keyOrder,
// so a monthly report per project and PI reads the same every month.
func gpuHoursCSV(rows []gpustore.GPUHoursRow, aggregate []string) csvTable {
	seen := map[string]bool{}
	for _, k := range aggregate {
		seen[k] = true
	}
	for _, r := range rows {
		for k := range r.Keys {
			seen[k] = true
		}
	}
	var keys []string
	for _, k := range keyOrder {
		if seen[k] {
			keys = append(keys, k)
			delete(seen, k)
		}
	}
	rest := make([]string, 0, len(seen))
	for k := range seen {
		rest = append(rest, k)
	}
	slices.Sort(rest)
	keys = append(keys, rest...)

	header := append(append([]string{"start", "end"}, keys...), "allocated_gpu_hours", "used_gpu_hours", "idle_gpu_hours", "devices")
	t := csvTable{header}
	for _, r := range rows {
		row := []string{r.Start.UTC().Format(time.RFC3339), r.End.UTC().Format(time.RFC3339)}
		for _, k := range keys {
			row = append(row, safeCell(r.Keys[k]))
		}
		row = append(row, num(r.Allocated), num(r.Used), num(r.Idle), strconv.Itoa(r.Devices))
		t = append(t, row)
	}
	return t
}

func idleCSV(rows []gpustore.IdleAllocation) csvTable {
	t := csvTable{{"hub", "cluster", "node", "device", "namespace", "pod", "fraction", "idle_hours", "since", "last_seen"}}
	for _, r := range rows {
		t = append(t, []string{
			r.Hub, r.Cluster, r.Node, r.Device, r.Namespace, safeCell(r.Pod), num(r.Fraction), num(r.IdleHours),
			r.Since.UTC().Format(time.RFC3339), r.LastSeen.UTC().Format(time.RFC3339),
		})
	}
	return t
}

func utilizationCSV(pts []gpustore.UtilizationPoint) csvTable {
	t := csvTable{{"time", "busy", "fb_used_mib", "power_w", "temp_c", "samples"}}
	for _, p := range pts {
		t = append(t, []string{
			p.Time.UTC().Format(time.RFC3339), num(p.Busy), num(p.FBUsedMiB), num(p.PowerW), num(p.TempC), strconv.Itoa(p.Samples),
		})
	}
	return t
}

// num writes a float exactly (the shortest form that reads back the same):
// an invoicing script sums these, so no rounding here.
func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// safeCell keeps a text cell from being run as a spreadsheet formula
// (OWASP CSV injection): a PI or pod name starting with = + - @ or a control
// character gets a leading apostrophe. Topology names never start so.
func safeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// writeCSVReport writes the table with a Link to the next page when it is
// full (CSV has no envelope to carry it).
func writeCSVReport(w http.ResponseWriter, r *http.Request, f gpustore.Filter, t csvTable) error {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	if err := cw.WriteAll(t); err != nil {
		return err
	}
	if f.Limit > 0 && len(t)-1 >= f.Limit {
		w.Header().Add("Link", "<"+nextURL(r, f.Limit, f.Offset)+`>; rel="next"`)
	}
	// a browser following a page's download link saves it under the report's name
	w.Header().Set("Content-Disposition", `attachment; filename="`+path.Base(r.URL.Path)+`.csv"`)
	return writeCached(w, r, mediaCSV+"; charset=utf-8; header=present", b.Bytes())
}
