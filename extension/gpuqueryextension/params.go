package gpuqueryextension // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension"

import (
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/window"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// Query parameters.
const (
	paramHub       = "hub"
	paramCluster   = "cluster"
	paramNode      = "node"
	paramNamespace = "namespace"
	paramDevice    = "device"
	paramWindow    = "window"
	paramLimit     = "limit"
	paramOffset    = "offset"
	paramAggregate = "aggregate"
	paramStep      = "step"
	paramSource    = "source"
	paramPoints    = "points"
	paramType      = "type"
	paramID        = "id"
	paramQ         = "q"
	paramFormat    = "format"
)

const (
	defaultLimit  = 100
	maxOffset     = 1 << 24 // beyond any site's row count; bounds what a backend is asked to skip
	defaultPoints = 200
	maxParamLen   = 512
)

// devicePattern is a GPU UUID as DCGM reports it, optionally with a MIG GPU
// instance id (hw.id of a slice).
var (
	gpuUUIDPattern = topology.GPUUUIDPattern
	devicePattern  = regexp.MustCompile(`^GPU-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(/[0-9]{1,2})?$`)
)

// nameParams are the filter parameters holding topology names, and their kinds.
var nameParams = []struct{ param, kind string }{
	{paramHub, topology.KindHub},
	{paramCluster, topology.KindCluster},
	{paramNode, topology.KindNode},
	{paramNamespace, topology.KindNamespace},
}

// aggregateKeys are the keys the GPU-hours report aggregates by.
var aggregateKeys = []string{
	gpustore.KeyProject, gpustore.KeyPI, gpustore.KeyCluster, gpustore.KeyNode,
	gpustore.KeyModel, gpustore.KeyProfile, gpustore.KeyDevice,
}

// query reads the parameters of one request, refusing those the route does
// not take and any given twice.
type query struct {
	values url.Values
	now    time.Time
}

func newQuery(raw string, allowed []string, now time.Time) (*query, error) {
	v, err := parseRawQuery(raw)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	slices.Sort(names) // the first problem named is the same on every try
	for _, k := range names {
		if !slices.Contains(allowed, k) {
			return nil, badParam(truncate(k), "unknown parameter (this resource takes: %s)", strings.Join(allowed, ", "))
		}
		if len(v[k]) > 1 {
			return nil, badParam(k, "given more than once")
		}
		if len(v[k][0]) > maxParamLen {
			return nil, badParam(k, "longer than %d bytes", maxParamLen)
		}
	}
	return &query{values: v, now: now}, nil
}

// parseRawQuery is url.ParseQuery, except that NGSI-LD's q may hold
// unescaped ';' (its term separator, as NGSI-LD clients send it); a ';'
// anywhere else is refused, as Go's own parser refuses it.
func parseRawQuery(raw string) (url.Values, error) {
	v := url.Values{}
	for _, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, errK := url.QueryUnescape(rawKey)
		value, errV := url.QueryUnescape(rawValue)
		if errK != nil {
			return nil, badParam("query", "a parameter name is not validly escaped")
		}
		if errV != nil {
			return nil, badParam(truncate(key), "not validly escaped (a stray '%%')")
		}
		if strings.Contains(rawKey, ";") || (key != paramQ && strings.Contains(rawValue, ";")) {
			return nil, badParam(truncate(key), "';' is not a parameter separator: use '&', or escape it as %%3B")
		}
		v[key] = append(v[key], value)
	}
	return v, nil
}

func (q *query) get(name string) string { return q.values.Get(name) }

func (q *query) has(name string) bool { return q.values.Has(name) }

// filter reads the topology filters, the device, the window and the page.
func (q *query) filter(scope gpustore.Scope) (gpustore.Filter, error) {
	f := gpustore.Filter{Scope: scope, Limit: defaultLimit}
	for _, n := range nameParams {
		if !q.has(n.param) {
			continue
		}
		v := q.get(n.param)
		if err := topology.ValidateName(n.kind, v); err != nil {
			return f, badParam(n.param, "%v", err)
		}
		switch n.param {
		case paramHub:
			f.Hub = v
		case paramCluster:
			f.Cluster = v
		case paramNode:
			f.Node = v
		case paramNamespace:
			f.Namespace = v
		}
	}
	if q.has(paramDevice) {
		v := q.get(paramDevice)
		if !devicePattern.MatchString(v) {
			return f, badParam(paramDevice, "must be a GPU UUID (GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), optionally /<GPU instance id> for a MIG slice")
		}
		f.Device = v
	}
	if q.has(paramWindow) {
		w, err := parseWindow(q.get(paramWindow), q.now)
		if err != nil {
			return f, err
		}
		f.Window = w
	}
	var err error
	if f.Limit, err = q.intParam(paramLimit, defaultLimit, 1, gpustore.MaxLimit); err != nil {
		return f, err
	}
	if f.Offset, err = q.intParam(paramOffset, 0, 0, maxOffset); err != nil {
		return f, err
	}
	return f, nil
}

func (q *query) intParam(name string, def, lo, hi int) (int, error) {
	if !q.has(name) {
		return def, nil
	}
	s := q.get(name)
	n, err := strconv.Atoi(s)
	if err != nil || len(s) > 9 || strings.HasPrefix(s, "+") {
		return 0, badParam(name, "must be a decimal integer")
	}
	if n < lo || n > hi {
		return 0, badParam(name, "must be between %d and %d", lo, hi)
	}
	return n, nil
}

// parseWindow reads a window parameter (internal/window's forms).
func parseWindow(s string, now time.Time) (gpustore.Window, error) {
	w, err := window.Parse(s, now)
	if err != nil {
		return w, badParam(paramWindow, "%s", window.Reason(err))
	}
	return w, nil
}

// parseAggregate reads aggregate=key,key: known keys, each once.
func parseAggregate(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	keys := strings.Split(s, ",")
	for i, k := range keys {
		if !slices.Contains(aggregateKeys, k) {
			return nil, badParam(paramAggregate, "unknown key %q (keys: %s)", truncate(k), strings.Join(aggregateKeys, ", "))
		}
		if slices.Contains(keys[:i], k) {
			return nil, badParam(paramAggregate, "key %q given twice", k)
		}
	}
	return keys, nil
}

// parseStep reads step and checks that the window holds at most MaxSteps.
func parseStep(s string, w gpustore.Window) (gpustore.Step, error) {
	step := gpustore.Step(s)
	switch step {
	case gpustore.StepNone:
		return step, nil
	case gpustore.StepDay, gpustore.StepWeek, gpustore.StepMonth:
	default:
		return step, badParam(paramStep, "must be day, week or month")
	}
	n := 0
	for t := stepStart(step, w.From); t.Before(w.To); t = stepNext(step, t) {
		if n++; n > gpustore.MaxSteps {
			return step, badParam(paramStep, "the window holds more than %d steps", gpustore.MaxSteps)
		}
	}
	return step, nil
}

func stepStart(step gpustore.Step, t time.Time) time.Time {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch step {
	case gpustore.StepWeek:
		return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
	case gpustore.StepMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return d
}

func stepNext(step gpustore.Step, t time.Time) time.Time {
	switch step {
	case gpustore.StepWeek:
		return t.AddDate(0, 0, 7)
	case gpustore.StepMonth:
		return t.AddDate(0, 1, 0)
	}
	return t.AddDate(0, 0, 1)
}

func parseSource(s string) (gpustore.Source, error) {
	switch s {
	case "", "auto":
		return gpustore.SourceAuto, nil
	case string(gpustore.SourceRaw):
		return gpustore.SourceRaw, nil
	case string(gpustore.SourceRollup):
		return gpustore.SourceRollup, nil
	}
	return "", badParam(paramSource, "must be raw, rollup or auto")
}

// truncate keeps a refused value short in a problem.
func truncate(s string) string {
	const maxLen = 64
	if len(s) <= maxLen {
		return s
	}
	return s[:maxLen] + "..."
}
