package pages // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/pages"

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// Charts are SVG drawn here, in the page, from the numbers the page shows:
// no script, so nothing to load, vendor or allow in the CSP. Each chart's
// coordinates are in a fixed viewBox that CSS scales to the screen.
const (
	chartW = 640
	chartH = 180
	padL   = 48
	padR   = 8
	padT   = 8
	padB   = 24
)

// lineChart is a time series chart.
type lineChart struct {
	ID     string
	Title  string
	Unit   string
	Series []series
	XTicks []tick
	YTicks []tick
	Empty  bool
	W, H   int
}

type series struct {
	Name   string
	Class  string
	Points string
}

type tick struct {
	Pos   float64
	Label string
}

// newLineChart draws one series per value function over the points.
func newLineChart(id, title, unit string, w gpustore.Window, pts []gpustore.UtilizationPoint, max float64, lines ...seriesOf) lineChart {
	c := lineChart{ID: id, Title: title, Unit: unit, W: chartW, H: chartH, Empty: len(pts) == 0}
	for _, l := range lines {
		for _, p := range pts {
			max = math.Max(max, l.value(p))
		}
	}
	if max <= 0 {
		max = 1
	}
	x := timeScale(w)
	y := func(v float64) float64 { return padT + (1-v/max)*(chartH-padT-padB) }
	for _, l := range lines {
		var b strings.Builder
		for i, p := range pts {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", x(p.Time), y(l.value(p)))
		}
		c.Series = append(c.Series, series{Name: l.name, Class: l.class, Points: b.String()})
	}
	c.XTicks = timeTicks(w, x)
	for i := 0; i <= 4; i++ {
		v := max * float64(i) / 4
		c.YTicks = append(c.YTicks, tick{Pos: y(v), Label: axisNumber(v, unit)})
	}
	return c
}

// seriesOf is one line: its name, CSS class and value.
type seriesOf struct {
	name, class string
	value       func(gpustore.UtilizationPoint) float64
}

func timeScale(w gpustore.Window) func(time.Time) float64 { return timeScaleFrom(w, padL) }

// timeScaleFrom maps the window onto [left, chartW-padR].
func timeScaleFrom(w gpustore.Window, left float64) func(time.Time) float64 {
	span := w.To.Sub(w.From).Seconds()
	return func(t time.Time) float64 {
		f := t.Sub(w.From).Seconds() / span
		return left + math.Min(math.Max(f, 0), 1)*(chartW-left-padR)
	}
}

// timeTicks are 4 to 8 labelled instants at round steps.
func timeTicks(w gpustore.Window, x func(time.Time) float64) []tick {
	span := w.To.Sub(w.From)
	steps := []time.Duration{time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if span/s <= 8 {
			step = s
			break
		}
	}
	layout := "15:04"
	if step >= 24*time.Hour {
		layout = "Jan 2"
	}
	var out []tick
	for t := w.From.Truncate(step).Add(step); t.Before(w.To); t = t.Add(step) {
		out = append(out, tick{Pos: x(t), Label: t.UTC().Format(layout)})
	}
	return out
}

func axisNumber(v float64, unit string) string {
	if unit == "%" {
		return strconv.Itoa(int(math.Round(v))) + "%"
	}
	if v >= 1000 {
		return fmt.Sprintf("%.0fk", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}

// timeline is who held what when: one row per device, a bar per session.
type timeline struct {
	Title  string
	LabelX int
	Rows   []timelineRow
	XTicks []tick
	W, H   int
}

type timelineRow struct {
	Label string
	Y     float64
	Bars  []timelineBar
}

type timelineBar struct {
	X, W  float64
	Class string
	Title string
	Href  string
}

const (
	timelineRowH = 22
	// timelineLabelW is the timeline's label column: a GPU's short id or a
	// namespace (up to 63 characters, cut by the viewBox beyond ~16).
	timelineLabelW = 120
)

// newTimeline lays the sessions out by label (device or project).
func newTimeline(title string, w gpustore.Window, sessions []gpustore.Session, label func(gpustore.Session) string, now time.Time) timeline {
	x := timeScaleFrom(w, timelineLabelW)
	tl := timeline{Title: title, W: chartW, LabelX: timelineLabelW - 6}
	rows := map[string]int{}
	for _, s := range sessions {
		l := label(s)
		i, ok := rows[l]
		if !ok {
			i = len(tl.Rows)
			rows[l] = i
			tl.Rows = append(tl.Rows, timelineRow{Label: l, Y: float64(padT + i*timelineRowH)})
		}
		end := now
		if s.End != nil {
			end = *s.End
		}
		x0, x1 := x(s.Start), x(end)
		class := "usage"
		if s.Kind == gpustore.SessionIdle {
			class = "idle"
		}
		tl.Rows[i].Bars = append(tl.Rows[i].Bars, timelineBar{
			X: x0, W: math.Max(x1-x0, 2), Class: class, Href: sessionPath(s),
			Title: fmt.Sprintf("%s, pod %s: %s to %s", s.Kind, s.Pod, when(s.Start), endLabel(s)),
		})
	}
	tl.H = padT + len(tl.Rows)*timelineRowH + padB
	tl.XTicks = timeTicks(w, x)
	return tl
}

func endLabel(s gpustore.Session) string {
	if s.End == nil {
		return "now (open)"
	}
	return when(*s.End)
}

// barChart compares allocated and used GPU-hours per label.
type barChart struct {
	Title string
	Bars  []bar
	W, H  int
	Max   string
}

type bar struct {
	Label           string
	Y               float64
	AllocW, UsedW   float64
	Allocated, Used float64
}

const barRowH = 28

func newBarChart(title string, labels []string, allocated, used []float64) barChart {
	bc := barChart{Title: title, W: chartW}
	max := 0.0
	for _, a := range allocated {
		max = math.Max(max, a)
	}
	if max <= 0 {
		max = 1
	}
	width := float64(chartW - 160 - padR)
	for i, l := range labels {
		bc.Bars = append(bc.Bars, bar{
			Label: l, Y: float64(padT + i*barRowH), Allocated: allocated[i], Used: used[i],
			AllocW: math.Max(allocated[i]/max*width, 1), UsedW: used[i] / max * width,
		})
	}
	bc.H = padT + len(labels)*barRowH + padB
	bc.Max = hoursText(max)
	return bc
}
