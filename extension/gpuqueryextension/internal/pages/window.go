package pages // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/pages"

import (
	"net/http"
	"net/url"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/window"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// defaultWindow is a page's window when the address names none: make run's
// replayed history and a day of a site both fit.
const defaultWindow = "24h"

// windowChoices are the picker's options; any window the API reads is also
// accepted in the address (from,to in RFC 3339, month:YYYY-MM, ...).
var windowChoices = []struct{ Value, Label string }{
	{"6h", "Last 6 hours"},
	{"24h", "Last 24 hours"},
	{"7d", "Last 7 days"},
	{"30d", "Last 30 days"},
	{"month", "This month"},
	{"lastmonth", "Last month"},
}

// pageWindow is the window a page shows, as given and as read.
type pageWindow struct {
	// Value is the parameter as given (or the default): the picker and the
	// links to other pages keep it, so a "24h" link stays relative.
	Value string
	gpustore.Window
}

func readWindow(r *http.Request, now time.Time) (pageWindow, error) {
	v := r.URL.Query().Get("window")
	if v == "" {
		v = defaultWindow
	}
	w, err := window.Parse(v, now)
	if err != nil {
		return pageWindow{}, &badRequest{param: "window", reason: window.Reason(err)}
	}
	return pageWindow{Value: v, Window: w}, nil
}

// Exact is the window as from,to: what a download link carries, so the
// file holds the numbers the page showed.
func (w pageWindow) Exact() string {
	return w.From.Format(time.RFC3339) + "," + w.To.Format(time.RFC3339)
}

// Query is "?window=..." for links to other pages, "" for the default.
func (w pageWindow) Query() string {
	if w.Value == defaultWindow || w.Value == "" {
		return ""
	}
	return "?" + url.Values{"window": {w.Value}}.Encode()
}
