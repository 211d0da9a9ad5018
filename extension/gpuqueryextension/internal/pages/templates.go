package pages // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/pages"

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

//go:embed templates
var templateFS embed.FS

// pageNames are the templates beside the layout, one per page.
var pageNames = []string{"overview", "project", "device", "session", "error"}

// view is what a template renders: the layout's fields and the page's Data.
type view struct {
	Page    string
	Title   string
	Local   bool
	Assets  *assets
	Path    string
	Window  pageWindow
	Choices []struct{ Value, Label string }
	Error   *errorView
	Data    any
	// User and CSRF: the logged-in caller and their logout form's token.
	User, CSRF string
}

type errorView struct {
	Status int
	Detail string
}

func (h *Handler) newView(r *http.Request, page string) *view {
	v := &view{Page: page, Local: h.set.Local, Assets: h.assets, Path: r.URL.Path, Choices: windowChoices}
	if h.set.User != nil {
		v.User, v.CSRF, _ = h.set.User(r)
	}
	return v
}

// templates are the pages, each parsed with the layout.
type templates struct{ byPage map[string]*template.Template }

func parseTemplates(as *assets) (*templates, error) {
	funcs := template.FuncMap{
		"asset":    as.url,
		"hours":    hoursText,
		"percent":  percent,
		"when":     when,
		"duration": duration,
		"fraction": func(v float64) string { return fmt.Sprintf("%.3g", v) },
		"project":  projectPath,
		"devicep":  devicePath,
		"session":  sessionPath,
		"state":    stateLabel,
		"deref":    func(p *float64) float64 { return *p },
		"known": func(choices []struct{ Value, Label string }, v string) bool {
			for _, c := range choices {
				if c.Value == v {
					return true
				}
			}
			return false
		},
		"short":  shortID,
		"parent": func(id string) string { p, _, _ := strings.Cut(id, "/"); return p },
		"occupancy": func(o occupancy) string {
			if o.GPUs == 0 {
				return "–"
			}
			return percent((o.InUse + o.Idle) / float64(o.GPUs))
		},
	}
	t := &templates{byPage: map[string]*template.Template{}}
	base, err := template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/charts.html")
	if err != nil {
		return nil, err
	}
	for _, name := range pageNames {
		b, err := base.Clone()
		if err != nil {
			return nil, err
		}
		if t.byPage[name], err = b.ParseFS(templateFS, "templates/"+name+".html"); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (t *templates) execute(w io.Writer, v *view) error {
	tm := t.byPage[v.Page]
	if tm == nil {
		return fmt.Errorf("no template for page %q", v.Page)
	}
	return tm.ExecuteTemplate(w, "layout.html", v)
}

func percent(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*v)
}

// when is a time as the pages show it: UTC, to the minute.
func when(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func duration(seconds float64) string {
	d := time.Duration(seconds) * time.Second
	h, m := int(d.Hours()), int(d.Minutes())%60
	switch {
	case h >= 48:
		return fmt.Sprintf("%dd %dh", h/24, h%24)
	case h > 0:
		return fmt.Sprintf("%dh %02dm", h, m)
	}
	return fmt.Sprintf("%dm", m)
}

// hoursText is GPU-hours as the pages show them: two decimals.
func hoursText(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

func devicePath(id string) string { return "/devices/" + url.PathEscape(id) }

func projectPath(hub, cluster, namespace string) string {
	return "/projects/" + url.PathEscape(hub) + "/" + url.PathEscape(cluster) + "/" + url.PathEscape(namespace)
}

// sessionPath names a session by its project, trace and start: the start
// bounds the read that finds it again, however old it is.
func sessionPath(s gpustore.Session) string {
	return "/sessions" + projectPath(s.Hub, s.Cluster, s.Namespace)[len("/projects"):] + "/" + url.PathEscape(s.TraceID) +
		"?" + url.Values{"start": {s.Start.UTC().Format(time.RFC3339)}}.Encode()
}

func stateLabel(s gpustore.State) string {
	switch s {
	case gpustore.StateInUse:
		return "in use"
	case gpustore.StateIdle:
		return "allocated, idle"
	case gpustore.StateFree:
		return "free"
	case gpustore.StateError:
		return "error"
	case stateStale:
		return "no recent sample"
	}
	return strings.ReplaceAll(string(s), "_", " ")
}
