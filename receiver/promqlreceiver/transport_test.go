package promqlreceiver

import (
	"bufio"
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"
)

const testToken = "Bearer s3cret-token"

var bearerID = component.MustNewIDWithName("bearer", "test")

// bearerAuth is a client authenticator like keycloakauth's client side: its
// round tripper adds the token to every request it carries, redirect hops
// included.
type bearerAuth struct{ component.StartFunc }

func (bearerAuth) Shutdown(context.Context) error { return nil }

func (bearerAuth) RoundTripper(base http.RoundTripper) (http.RoundTripper, error) {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", testToken)
		return base.RoundTrip(req)
	}), nil
}

var _ extensionauth.HTTPClient = bearerAuth{}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// recorder is a handler that keeps the Authorization header of every request
// it gets, and answers an instant query with one sample at its time.
type recorder struct {
	mu   sync.Mutex
	auth []string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.auth = append(r.auth, req.Header.Get("Authorization"))
	r.mu.Unlock()
	_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up"},"value":[` +
		req.URL.Query().Get("time") + `,"1"]}]}}`))
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.auth...)
}

// chanListener hands over the connections sharedPort routes to one server.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// sharedPort serves a TLS and a plain HTTP server on one loopback port, told
// apart by the first byte a client sends (a TLS handshake record starts with
// 0x16). https://127.0.0.1:P and http://127.0.0.1:P are then one host to a
// client, as https://h and http://h are on ports 443 and 80.
func sharedPort(t *testing.T, secure, plain http.Handler) (tlsSrv, plainSrv *httptest.Server) {
	t.Helper()
	front, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	newListener := func() *chanListener {
		return &chanListener{addr: front.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	}
	tlsL, plainL := newListener(), newListener()
	go func() {
		for {
			c, err := front.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReader(c)
				b, err := br.Peek(1)
				if err != nil {
					_ = c.Close()
					return
				}
				to := plainL
				if b[0] == 0x16 {
					to = tlsL
				}
				select {
				case to.conns <- peekedConn{Conn: c, r: br}:
				case <-to.done:
					_ = c.Close()
				}
			}()
		}
	}()
	tlsSrv = httptest.NewUnstartedServer(secure)
	tlsSrv.Listener = tlsL
	tlsSrv.StartTLS()
	plainSrv = httptest.NewUnstartedServer(plain)
	plainSrv.Listener = plainL
	plainSrv.Start()
	t.Cleanup(func() {
		_ = front.Close()
		tlsSrv.Close()
		plainSrv.Close()
	})
	return tlsSrv, plainSrv
}

// trusting writes the test server's certificate as the client's CA file.
func trusting(t *testing.T, cfg *Config, srv *httptest.Server) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	cfg.TLS.CAFile = path
}

func redirectTo(target func(req *http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, target(req), http.StatusFound)
	})
}

// The authenticator adds the token on every hop, so a redirect the client
// follows is a request that carries it: one that leaves https, or the host,
// is refused before it is sent, counted as redirect_refused, and the cursor
// stays.
func TestRedirects(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the endpoint, the server whose requests are checked
		// and whether the redirect must be followed.
		setup  func(t *testing.T, cfg *Config) (endpoint string, target *recorder, follow bool)
		reason string // of the refusal in the log
	}{
		{name: "https to http on the same host and port", reason: "leaves https", setup: func(t *testing.T, cfg *Config) (string, *recorder, bool) {
			plain := new(recorder)
			var tlsSrv *httptest.Server
			tlsSrv, _ = sharedPort(t, redirectTo(func(req *http.Request) string {
				return "http://" + req.Host + req.URL.RequestURI()
			}), plain)
			trusting(t, cfg, tlsSrv)
			return tlsSrv.URL, plain, false
		}},
		{name: "https to https on another host", reason: "another host", setup: func(t *testing.T, cfg *Config) (string, *recorder, bool) {
			other := new(recorder)
			otherSrv := httptest.NewTLSServer(other)
			t.Cleanup(otherSrv.Close)
			srv := httptest.NewTLSServer(redirectTo(func(req *http.Request) string { return otherSrv.URL + req.URL.RequestURI() }))
			t.Cleanup(srv.Close)
			trusting(t, cfg, srv) // httptest's servers share one certificate
			return srv.URL, other, false
		}},
		{name: "http on loopback to http on another port", reason: "another host", setup: func(t *testing.T, _ *Config) (string, *recorder, bool) {
			other := new(recorder)
			otherSrv := httptest.NewServer(other)
			t.Cleanup(otherSrv.Close)
			srv := httptest.NewServer(redirectTo(func(req *http.Request) string { return otherSrv.URL + req.URL.RequestURI() }))
			t.Cleanup(srv.Close)
			return srv.URL, other, false
		}},
		{name: "https to https on the same host", setup: func(t *testing.T, cfg *Config) (string, *recorder, bool) {
			api := new(recorder)
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				if strings.HasPrefix(req.URL.Path, "/prometheus/") {
					api.ServeHTTP(w, req)
					return
				}
				http.Redirect(w, req, "/prometheus"+req.URL.RequestURI(), http.StatusMovedPermanently)
			}))
			t.Cleanup(srv.Close)
			trusting(t, cfg, srv)
			return srv.URL, api, true
		}},
		{name: "http on loopback to http on the same host", setup: func(t *testing.T, _ *Config) (string, *recorder, bool) {
			api := new(recorder)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				if strings.HasPrefix(req.URL.Path, "/prometheus/") {
					api.ServeHTTP(w, req)
					return
				}
				http.Redirect(w, req, "/prometheus"+req.URL.RequestURI(), http.StatusFound)
			}))
			t.Cleanup(srv.Close)
			return srv.URL, api, true
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig("", QueryConfig{Name: "up", Query: `up`, Unscoped: true})
			endpoint, target, follow := tt.setup(t, cfg)
			cfg.Endpoint = endpoint
			cfg.Auth = configoptional.Some(configauth.Config{AuthenticatorID: bearerID})
			host := extensionsHost{Host: componenttest.NewNopHost(), exts: map[component.ID]component.Component{bearerID: bearerAuth{}}}
			sink := new(consumertest.MetricsSink)
			h := newHarness(t, cfg, sink, host)
			defer h.shutdown()
			before := model.TimeFromUnixNano(t0.Add(-time.Minute).UnixNano())
			require.NoError(t, h.rcv.cursors.set(context.Background(), "up", before))

			h.runAll(t0)
			cursor, err := h.rcv.cursors.get(context.Background(), "up")
			require.NoError(t, err)
			if follow {
				assert.Equal(t, []string{testToken}, target.seen(), "the redirect is followed, with the token")
				assert.Equal(t, 1, sink.DataPointCount())
				assert.Greater(t, cursor, before)
				return
			}
			assert.Empty(t, target.seen(), "the redirect's target never gets the request, nor the token")
			assert.Equal(t, int64(1), h.count("query_failures", attribute.String("query", "up"), attribute.String("reason", "redirect_refused")))
			assert.Equal(t, before, cursor, "the cursor stays: the samples are fetched again once the endpoint answers")
			assert.Zero(t, sink.DataPointCount())
			logs := h.logs.FilterMessage("PromQL query failing").All()
			require.Len(t, logs, 1)
			msg := logs[0].ContextMap()["error"].(string)
			assert.Contains(t, msg, "redirect refused")
			assert.Contains(t, msg, tt.reason)
			assert.NotContains(t, msg, "s3cret", "no token in the log")
		})
	}
}

func TestInsecureHTTPAuthWarns(t *testing.T) {
	host := extensionsHost{Host: componenttest.NewNopHost(), exts: map[component.ID]component.Component{bearerID: bearerAuth{}}}
	tests := []struct {
		endpoint string
		warned   bool
	}{
		{"http://prom.example.org", true},
		{"http://127.0.0.1:9090", false},
		{"https://prom.example.org", false},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint, func(t *testing.T) {
			cfg := testConfig(tt.endpoint, QueryConfig{Name: "up", Query: `up`, Unscoped: true})
			cfg.Auth = configoptional.Some(configauth.Config{AuthenticatorID: bearerID})
			cfg.InsecureHTTPAuth = true
			h := newHarness(t, cfg, new(consumertest.MetricsSink), host)
			defer h.shutdown()
			warned := h.logs.FilterMessageSnippet("insecure_http_auth").All()
			if !tt.warned {
				assert.Empty(t, warned)
				return
			}
			require.Len(t, warned, 1)
			assert.Equal(t, zap.WarnLevel, warned[0].Level)
		})
	}
}
