package alertmanagerreceiver

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/nerc-project/ai-telemetry-collector/internal/telemetrytest"
)

// bodyOfShape is a notification of up to size bytes made of one alert shape
// over and over, each alert its own session (seq keeps bodies apart):
//   - realistic: GPUInUse alerts as the project's rules send them;
//   - bare: alerts of ~100 bytes, each still a span of a dozen attributes;
//   - labels, annotations: alerts of the most (128) one- or two-character
//     labels or annotations allowed, each an attribute.
//
// The last three are the worst bytes of heap per byte of body found.
func bodyOfShape(shape string, size, seq int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"version":"4","status":"firing","receiver":"r","groupKey":"g","alerts":[`)
	const ts = "2026-11-02T09:00:00Z"
	var one bytes.Buffer
	for i := 0; ; i++ {
		one.Reset()
		switch shape {
		case "realistic":
			fmt.Fprintf(&one, `{"status":"firing","labels":{"alertname":"GPUInUse","severity":"info","cluster":"nerc-ocp-prod","Hostname":"wrk-10","UUID":"GPU-603a8873-0edd-c157-ce48-2078e8b1a935","gpu":"0","modelName":"NVIDIA A100-SXM4-40GB","exported_namespace":"team-a","exported_pod":"train-%d","exported_container":"main","namespace":"nvidia-gpu-operator","instance":"10.128.4.7:9400"},"annotations":{"summary":"GPU busy"},"startsAt":"%s","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus.example/graph?g0.expr=gpu","fingerprint":"%x-%x"}`, i, ts, seq, i)
		case "bare":
			fmt.Fprintf(&one, `{"status":"firing","startsAt":"%s","fingerprint":"%x-%x"}`, ts, seq, i)
		case "labels", "annotations":
			fmt.Fprintf(&one, `{"status":"firing","startsAt":"%s","fingerprint":"%x-%x","%s":{`, ts, seq, i, shape)
			for j := range maxLabelsPerAlert {
				if j > 0 {
					one.WriteByte(',')
				}
				fmt.Fprintf(&one, `"%x":""`, j)
			}
			one.WriteString(`}}`)
		default:
			panic(shape)
		}
		if b.Len()+1+one.Len()+2 > size {
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(one.Bytes())
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// TestMemoryBudget posts twice as many of the largest allowed bodies as the
// default budget holds, all at once, and holds those admitted in the
// pipeline: the heap they hold stays under the budget's bound
// (max_body_bytes_in_flight x decodeFactor) and the surplus is answered 503
// before its body is read.
func TestMemoryBudget(t *testing.T) {
	defaults := createDefaultConfig().(*Config)
	maxBody := defaults.MaxRequestBodySize
	admitted := int(defaults.MaxBodyBytesInFlight / maxBody)
	heapBound := defaults.MaxBodyBytesInFlight * decodeFactor
	require.GreaterOrEqual(t, admitted, 2)
	for _, shape := range []string{"realistic", "bare", "labels", "annotations"} {
		t.Run(shape, func(t *testing.T) {
			posted := 2 * admitted
			bodies := make([][]byte, posted)
			for i := range bodies {
				bodies[i] = bodyOfShape(shape, int(maxBody), i)
				require.LessOrEqual(t, int64(len(bodies[i])), maxBody)
				require.Greater(t, int64(len(bodies[i])), maxBody-4096, "the largest allowed body")
			}
			next := &blockingTraces{entered: make(chan struct{}, posted), release: make(chan struct{})}
			h := startReceiver(t, nil, next)
			releaseOnce := sync.OnceFunc(func() { close(next.release) })
			t.Cleanup(releaseOnce) // before the receiver's shutdown, even when the test fails
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)

			// Each post ends up held in the pipeline (entered) or answered.
			answered := make(chan int, posted)
			var wg sync.WaitGroup
			for _, body := range bodies {
				wg.Go(func() {
					resp, err := h.client.Post(h.url, "application/json", bytes.NewReader(body))
					if !assert.NoError(t, err) {
						answered <- 0
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					answered <- resp.StatusCode
				})
			}
			held, refused := 0, 0
			for held+refused < posted {
				select {
				case <-next.entered:
					held++
				case code := <-answered:
					assert.Equal(t, http.StatusServiceUnavailable, code, "only the surplus is answered while the others are held")
					refused++
				}
			}
			// Every admitted notification is now at its peak: decoded,
			// admitted, its spans built and handed on.
			var during runtime.MemStats
			runtime.ReadMemStats(&during)
			heap := int64(during.HeapInuse) - int64(before.HeapInuse)
			t.Logf("%s: %d bodies of %d bytes held, %d refused; heap in use grew %.1f MiB (%.1f per body byte), bound %d MiB",
				shape, held, len(bodies[0]), refused, float64(heap)/(1<<20), float64(heap)/float64(held*len(bodies[0])), heapBound>>20)
			assert.Equal(t, admitted, held, "the budget admits max_body_bytes_in_flight / max_request_body_size")
			assert.Equal(t, posted-admitted, refused)
			assert.LessOrEqual(t, heap, heapBound, "the heap held stays under the budget")
			assert.Equal(t, int64(admitted), telemetrytest.SumCounter(h.tel, "otelcol_receiver_alertmanager_requests_in_flight"))
			inFlight := telemetrytest.SumCounter(h.tel, "otelcol_receiver_alertmanager_body_bytes_in_flight")
			assert.LessOrEqual(t, inFlight, defaults.MaxBodyBytesInFlight)
			assert.Greater(t, inFlight, int64(admitted)*(maxBody-4096), "each held body counts its length")
			assert.Equal(t, int64(posted-admitted), telemetrytest.SumCounter(h.tel,
				"otelcol_receiver_alertmanager_requests_rejected", attribute.String("reason", reasonMemoryBudget)))

			releaseOnce()
			for range held {
				assert.Equal(t, http.StatusOK, <-answered)
			}
			wg.Wait()
		})
	}
}

// TestSlowBodyFreesItsSlot: a sender that sends its headers and then
// trickles or stalls its body holds the receiver's only slot until
// read_timeout; then it is answered 503 (Alertmanager retries), its slot is
// free, and the next notification is served. A sender that stalls in its
// headers is cut by read_header_timeout.
func TestSlowBodyFreesItsSlot(t *testing.T) {
	body := notificationJSON(t, 0, testAlert{status: "firing", labels: gpuLabels("team-a", "p", ""), startsAt: t0, fingerprint: "5104"})
	tests := []struct {
		name    string
		trickle bool
		headers bool // stall in the headers instead
	}{
		{name: "stalled body"},
		{name: "trickled body", trickle: true},
		{name: "stalled headers", headers: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startReceiver(t, func(c *Config) {
				require.NotZero(t, c.ReadTimeout, "the default bounds a body's read")
				require.NotZero(t, c.ReadHeaderTimeout, "the default bounds the headers' read")
				// Shortened from the defaults so the test takes little time.
				c.ReadTimeout, c.ReadHeaderTimeout = 500*time.Millisecond, 200*time.Millisecond
				c.MaxConcurrentRequests, c.MaxConcurrentRequestsPerCaller = 1, 1
			}, nil)
			conn, err := net.Dial("tcp", h.rcv.addr)
			require.NoError(t, err)
			defer func() { _ = conn.Close() }()
			// A guard against hanging when the server never answers, not
			// a measure of the timeout.
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
			head := fmt.Sprintf("POST /alerts HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", h.rcv.addr, len(body))
			if tt.headers {
				_, err = io.WriteString(conn, head[:20])
				require.NoError(t, err)
				_, err = io.ReadAll(conn)
				require.NoError(t, err, "the server closes a connection whose headers stall")
				code, msg := h.post(body)
				require.Equal(t, http.StatusOK, code, msg)
				return
			}
			_, err = io.WriteString(conn, head+string(body[:10]))
			require.NoError(t, err)
			waitFor(t, func() bool { return h.rcv.inflight.held() == 1 })
			code, msg := h.post(body)
			require.Equal(t, http.StatusServiceUnavailable, code, "the slow sender holds the only slot")
			require.Contains(t, msg, "in progress")
			stop := make(chan struct{})
			defer close(stop)
			if tt.trickle {
				go func() {
					for i := 10; i < len(body)-1; i++ {
						select {
						case <-stop:
							return
						case <-time.After(20 * time.Millisecond):
						}
						if _, err := conn.Write(body[i : i+1]); err != nil {
							return
						}
					}
				}()
			}

			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err, "the slow sender is answered")
			_ = resp.Body.Close()
			assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "Alertmanager retries it")
			assert.Equal(t, int64(1), telemetrytest.SumCounter(h.tel,
				"otelcol_receiver_alertmanager_requests_rejected", attribute.String("reason", "read_timeout")))
			code, msg = h.post(body)
			assert.Equal(t, http.StatusOK, code, "the slot is free again: %s", msg)
			assert.Equal(t, 1, h.sink.SpanCount())
		})
	}
}

// waitFor polls cond until it holds (the test's deadline bounds it).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		time.Sleep(time.Millisecond)
	}
}

// TestCallerLimits: an authenticated caller gets at most its share of the
// requests and of the body bytes in flight; another caller is still served.
func TestCallerLimits(t *testing.T) {
	small := func(fp string) []byte {
		return notificationJSON(t, 0, testAlert{status: "firing", labels: gpuLabels("team-a", "p", ""), startsAt: t0, fingerprint: fp})
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		second []byte // the first caller's second notification
		want   string
	}{
		{
			name:   "requests",
			mutate: func(c *Config) { c.MaxConcurrentRequestsPerCaller = 1 },
			second: small("a2"), want: "notifications of this caller in progress",
		},
		{
			name: "body bytes",
			mutate: func(c *Config) {
				c.MaxRequestBodySize, c.MaxBodyBytesInFlightPerCaller = 4096, 4096
			},
			second: bytes.Replace(small("a2"), []byte(`"receiver"`), []byte(`"pad":"`+strings.Repeat("x", 3000)+`","receiver"`), 1),
			want:   "hold more than 4096 body bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := &blockingTraces{entered: make(chan struct{}, 4), release: make(chan struct{})}
			h := startAuthorizedReceiverWith(t, &authorizerExt{decisions: map[string]error{teamA: nil}}, func(c *Config) {
				c.Authorizer = nil // only the authenticator: the limits are the authenticated subject's
				tt.mutate(c)
			}, next)
			releaseOnce := sync.OnceFunc(func() { close(next.release) })
			t.Cleanup(releaseOnce) // before the receiver's shutdown, even when the test fails
			done := make(chan int, 2)
			post := func(subject string, body []byte) {
				go func() {
					code, _ := h.postAs(subject, body)
					done <- code
				}()
			}
			post("alertmanager-a", small("a1"))
			<-next.entered // a's first notification is held
			code, msg := h.postAs("alertmanager-a", tt.second)
			assert.Equal(t, http.StatusServiceUnavailable, code)
			assert.Contains(t, msg, tt.want)
			post("alertmanager-b", small("b1"))
			<-next.entered // another caller is served meanwhile

			releaseOnce()
			assert.Equal(t, http.StatusOK, <-done)
			assert.Equal(t, http.StatusOK, <-done)
			code, msg = h.postAs("alertmanager-a", tt.second)
			assert.Equal(t, http.StatusOK, code, "a's share is free again: %s", msg)
			assert.Equal(t, int64(1), telemetrytest.SumCounter(h.tel,
				"otelcol_receiver_alertmanager_requests_rejected", attribute.String("reason", reasonCallerLimit)))
		})
	}
}

// TestCompressedBodiesAreRefused: a decompressor would be allocated before
// the memory budget is taken, and Alertmanager never compresses.
func TestCompressedBodiesAreRefused(t *testing.T) {
	h := startReceiver(t, nil, nil)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, err := w.Write(notificationJSON(t, 0, testAlert{status: "firing", labels: gpuLabels("team-a", "p", ""), startsAt: t0, fingerprint: "9a"}))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	req, err := http.NewRequest(http.MethodPost, h.url, &gz)
	require.NoError(t, err)
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := h.client.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Zero(t, h.sink.SpanCount())
}
