package keycloakauth // import "github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth"

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

const maxKeycloakResponse = 1 << 20 // a realm's keys or a token response fit easily

var errIssuerMismatch = errors.New("discovery document names another issuer")

// keySet holds the realm's signing keys. Keys are replaced only by a
// successful fetch, so while Keycloak is down the last keys keep validating.
type keySet struct {
	e   *keycloakAuth
	cfg *Config

	mu sync.RWMutex
	// keys by kid. A refresh keeps the pointer of a key that did not change,
	// so a cached token is honoured only while the very key that verified it
	// is still published (pointer equality, see keycloakAuth.authenticate).
	keys      map[string]*jose.JSONWebKey
	jwksURI   string
	lastFetch time.Time // last attempt, successful or not

	fetch singleflight.Group
}

func newKeySet(e *keycloakAuth, cfg *Config) *keySet {
	return &keySet{e: e, cfg: cfg}
}

func (k *keySet) loaded() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.keys != nil
}

func (k *keySet) get(kid string) (*jose.JSONWebKey, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	key, ok := k.keys[kid]
	return key, ok
}

// lookup returns the key for kid, refetching the keys when kid is unknown
// (Keycloak rotated them) at most once per jwks_min_refetch_interval.
func (k *keySet) lookup(ctx context.Context, kid string) (*jose.JSONWebKey, bool) {
	if key, ok := k.get(kid); ok {
		return key, true
	}
	k.mu.RLock()
	recent := time.Since(k.lastFetch) < k.cfg.Server.JWKSMinRefetchInterval
	k.mu.RUnlock()
	if recent {
		return nil, false
	}
	// Detached from the request: a client dropping its connection must not
	// cancel the fetch that the rate limit then charges for.
	fetchCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.cfg.Timeout)
	defer cancel()
	_ = k.refresh(fetchCtx) // failures are counted; the old keys stay
	return k.get(kid)
}

// refresh fetches the discovery document (once) and the keys; concurrent
// callers share one fetch.
func (k *keySet) refresh(ctx context.Context) error {
	_, err, _ := k.fetch.Do("", func() (any, error) {
		k.mu.Lock()
		k.lastFetch = time.Now()
		jwksURI := k.jwksURI
		k.mu.Unlock()
		if jwksURI == "" {
			uri, err := k.discover(ctx)
			if err != nil {
				return nil, err
			}
			jwksURI = uri
		}
		keys, err := k.fetchKeys(ctx, jwksURI)
		if err != nil {
			return nil, err
		}
		k.mu.Lock()
		for kid, key := range keys {
			if old, ok := k.keys[kid]; ok && sameKey(old, key) {
				keys[kid] = old
			}
		}
		k.jwksURI, k.keys = jwksURI, keys
		k.mu.Unlock()
		return nil, nil
	})
	return err
}

func (k *keySet) discover(ctx context.Context) (string, error) {
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	err := k.e.getJSON(ctx, "discovery", k.cfg.discoveryURL(), &doc)
	if err != nil {
		return "", err
	}
	// With issuer configured explicitly, Keycloak is reached under another
	// name than its frontend URL; otherwise the document must agree.
	if k.cfg.Issuer == "" && doc.Issuer != k.cfg.expectedIssuer() {
		return "", fmt.Errorf("%w: %q, expected %q", errIssuerMismatch, doc.Issuer, k.cfg.expectedIssuer())
	}
	if doc.JWKSURI == "" {
		return "", errors.New("discovery document has no jwks_uri")
	}
	// Keys fetched in clear text could be replaced in transit, and with them
	// every token's signature forged.
	if u, err := url.Parse(doc.JWKSURI); err != nil || (!k.cfg.InsecureAllowHTTP && !secureURL(u)) {
		return "", fmt.Errorf("discovery document's jwks_uri %q: %w", doc.JWKSURI, errInsecureURL)
	}
	return doc.JWKSURI, nil
}

func (k *keySet) fetchKeys(ctx context.Context, uri string) (map[string]*jose.JSONWebKey, error) {
	var set jose.JSONWebKeySet
	if err := k.e.getJSON(ctx, "jwks", uri, &set); err != nil {
		return nil, err
	}
	keys := make(map[string]*jose.JSONWebKey, len(set.Keys))
	for _, key := range set.Keys {
		// Keycloak also publishes encryption keys (use "enc"); only signing
		// keys with a kid can verify tokens.
		if key.KeyID == "" || (key.Use != "" && key.Use != "sig") || !key.IsPublic() {
			continue
		}
		keys[key.KeyID] = &key
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS holds no signing keys")
	}
	return keys, nil
}

// sameKey says whether two published keys are one: same kid, algorithm, use
// and key material (RFC 7638 thumbprint).
func sameKey(a, b *jose.JSONWebKey) bool {
	if a.KeyID != b.KeyID || a.Algorithm != b.Algorithm || a.Use != b.Use {
		return false
	}
	ta, errA := a.Thumbprint(crypto.SHA256)
	tb, errB := b.Thumbprint(crypto.SHA256)
	return errA == nil && errB == nil && bytes.Equal(ta, tb)
}

// getJSON GETs a Keycloak document, counting the request.
func (e *keycloakAuth) getJSON(ctx context.Context, kind, uri string, out any) (err error) {
	defer func() { e.countRequest(ctx, kind, err) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, http.NoBody)
	if err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	resp, err := e.httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %w %d", kind, uri, errKeycloakStatus, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxKeycloakResponse)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: %w", kind, uri, err)
	}
	return nil
}
