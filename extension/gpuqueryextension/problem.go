package gpuqueryextension // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension"

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// problemTypeBase prefixes the problem types (RFC 9457 "type"): each names a
// section of this component's README.
const problemTypeBase = "https://github.com/nerc-project/ai-telemetry-collector/blob/main/extension/gpuqueryextension/README.md#"

// Refusal reasons (attribute reason of gpu_query_refusals), also the
// problems' type fragments.
const (
	reasonInvalidParam     = "invalid_param"
	reasonBadQuery         = "bad_query"
	reasonUnauthenticated  = "unauthenticated"
	reasonForbidden        = "forbidden"
	reasonAuthUnavailable  = "auth_unavailable"
	reasonNotFound         = "not_found"
	reasonMethodNotAllowed = "method_not_allowed"
	reasonNotAcceptable    = "not_acceptable"
)

// problem is an RFC 9457 problem detail. InvalidParams follows the RFC's
// example extension member ("invalid-params").
type problem struct {
	Type          string         `json:"type"`
	Title         string         `json:"title"`
	Status        int            `json:"status"`
	Detail        string         `json:"detail,omitempty"`
	Instance      string         `json:"instance,omitempty"`
	InvalidParams []invalidParam `json:"invalid-params,omitempty"`
	reason        string
}

type invalidParam struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// paramError is a refused parameter: the problem names it.
type paramError struct {
	name   string
	reason string
}

func (e *paramError) Error() string { return fmt.Sprintf("%s: %s", e.name, e.reason) }

func badParam(name, format string, args ...any) error {
	return &paramError{name: name, reason: fmt.Sprintf(format, args...)}
}

// Refusals that are not about one parameter.
var (
	errNotAcceptable    = errors.New("none of the media types in Accept is served here")
	errMethodNotAllowed = errors.New("only GET and HEAD are served")
	errNoRoute          = errors.New("no such resource")
)

func newProblem(status int, reason, title, detail string) *problem {
	return &problem{Type: problemTypeBase + reason, Title: title, Status: status, Detail: detail, reason: reason}
}

func writeProblem(w http.ResponseWriter, r *http.Request, p *problem) {
	p.Instance = r.URL.Path
	body, _ := json.Marshal(p) // plain strings and ints: cannot fail
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Del("ETag")
	if p.Status == http.StatusMethodNotAllowed {
		h.Set("Allow", "GET, HEAD")
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}
