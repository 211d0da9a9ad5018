package gpuqueryextension // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension"

import (
	"net/http"
	"strings"
)

// router sends the API's paths to the API and the rest to the pages.
type router struct {
	api   *api
	pages http.Handler // nil: the pages are not served, the API answers every path
}

func (rt router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rt.pages == nil || isAPIPath(r.URL.Path) {
		rt.api.ServeHTTP(w, r)
		return
	}
	if rt.api.local {
		w.Header().Set(modeHeader, modeLocal)
	}
	rt.pages.ServeHTTP(w, r)
}

// isAPIPath: the API's resources and the NGSI-LD context live under these.
func isAPIPath(p string) bool {
	return strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/ngsi-ld/")
}
