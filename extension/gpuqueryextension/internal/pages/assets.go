package pages // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/pages"

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
)

// assetPrefix is where the assets are served, under their content hash.
const assetPrefix = "/assets/"

//go:embed assets
var assetFS embed.FS

// asset is one embedded file and its content-addressed URL.
type asset struct {
	url         string
	hash        string
	contentType string
	body        []byte
}

// assets are the embedded files by name. A URL holds the content's hash, so
// a file can be cached for a year: a new build's file has a new URL.
type assets struct{ byName map[string]*asset }

func loadAssets() (*assets, error) {
	as := &assets{byName: map[string]*asset{}}
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:8])
		name := path.Base(p)
		as.byName[name] = &asset{
			url: assetPrefix + hash + "/" + name, hash: hash, body: body,
			contentType: mime.TypeByExtension(path.Ext(name)),
		}
		return nil
	})
	return as, err
}

// url is the address of the asset name (templates: {{asset "site.css"}}).
func (as *assets) url(name string) string {
	if a := as.byName[name]; a != nil {
		return a.url
	}
	return ""
}

func (as *assets) serve(w http.ResponseWriter, r *http.Request) {
	a := as.byName[r.PathValue("name")]
	if a == nil || a.hash != r.PathValue("hash") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	_, _ = w.Write(a.body)
}
