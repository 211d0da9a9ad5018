package gpuqueryextension // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension"

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// page is a paginated list. Next is set when the page is full: a further
// page may exist (it may be empty).
type page[T any] struct {
	Items  []T         `json:"items"`
	Limit  int         `json:"limit"`
	Offset int         `json:"offset"`
	Next   string      `json:"next,omitempty"`
	Window *windowJSON `json:"window,omitempty"`
}

type windowJSON struct {
	From string `json:"from"`
	To   string `json:"to"`
}

func newWindowJSON(w gpustore.Window) *windowJSON {
	if w.IsZero() {
		return nil
	}
	return &windowJSON{From: w.From.Format(timeFormat), To: w.To.Format(timeFormat)}
}

const timeFormat = "2006-01-02T15:04:05Z07:00"

func newPage[T any](r *http.Request, items []T, f gpustore.Filter) page[T] {
	if items == nil {
		items = []T{}
	}
	p := page[T]{Items: items, Limit: f.Limit, Offset: f.Offset}
	if len(items) >= f.Limit {
		p.Next = nextURL(r, f.Limit, f.Offset)
	}
	return p
}

// nextURL is the request's URL (path and query, relative) with the next offset.
// It reparses the query as the API does: url.Values would drop a q holding
// NGSI-LD's ';', and the next page would lose that filter.
func nextURL(r *http.Request, limit, offset int) string {
	q, err := parseRawQuery(r.URL.RawQuery)
	if err != nil {
		q = url.Values{} // cannot happen: the request's query was parsed before
	}
	q.Set(paramOffset, strconv.Itoa(offset+limit))
	q.Set(paramLimit, strconv.Itoa(limit))
	return r.URL.Path + "?" + q.Encode()
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", mediaJSON)
	w.WriteHeader(status)
	_, err = w.Write(body)
	return ignoreWriteErr(err)
}

// writeCached answers a report: an ETag (a hash of the body, so equal
// answers share it across callers and restarts), 304 to a matching
// If-None-Match, and private caching (the answer depends on the caller's scope).
func writeCached(w http.ResponseWriter, r *http.Request, contentType string, body []byte) error {
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "private, max-age=60")
	h.Add("Vary", "Authorization, Cookie") // a bearer token or a login session: either is the caller
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Type", contentType)
	_, err := w.Write(body)
	return ignoreWriteErr(err)
}

// etagMatches is If-None-Match's weak comparison (RFC 9110 13.1.2).
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// formats are the format parameter's values.
var formats = map[string]string{"json": mediaJSON, "csv": mediaCSV}

// formatMediaType reads format=, which overrides Accept.
func formatMediaType(v string, offers []string) (string, error) {
	if mt, ok := formats[v]; ok && slices.Contains(offers, mt) {
		return mt, nil
	}
	return "", badParam(paramFormat, "must be json or csv")
}

// negotiate picks the offer the Accept header prefers (RFC 9110 12.5.1:
// q-values, type/* and */*); no Accept takes the first offer.
func negotiate(accept string, offers []string) (string, bool) {
	if strings.TrimSpace(accept) == "" {
		return offers[0], true
	}
	best, bestQ := "", 0.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(s, 64); err != nil || q < 0 || q > 1 {
				continue
			}
		}
		for _, o := range offers {
			if q > bestQ && mediaMatches(mt, o) {
				best, bestQ = o, q
			}
		}
	}
	return best, bestQ > 0
}

func mediaMatches(pattern, offer string) bool {
	if pattern == "*/*" || pattern == offer {
		return true
	}
	typ, _, _ := strings.Cut(offer, "/")
	return pattern == typ+"/*"
}
