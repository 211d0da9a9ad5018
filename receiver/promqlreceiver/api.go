package promqlreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/promqlreceiver"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Failure classes of a query request; each is a reason in the
// receiver_promql_query_failures counter.
var (
	errDenied       = errors.New("denied")
	errUnauthorized = errors.New("unauthorized")
	errAPI          = errors.New("prometheus API error")
	errHTTP         = errors.New("unexpected HTTP status")
	errTimeout      = errors.New("timed out")
	errUnreachable  = errors.New("request failed")
	errDecode       = errors.New("undecodable response")
	errUnsupported  = errors.New("unsupported result type")
	errTooLarge     = errors.New("response exceeds max_response_size")
)

var failureReasons = []struct {
	err    error
	reason string
}{
	{errDenied, "denied"},
	{errUnauthorized, "unauthorized"},
	{errAPI, "api_error"},
	{errHTTP, "http_error"},
	{errTimeout, "timeout"},
	{errDecode, "decode_error"},
	{errUnsupported, "unsupported_result"},
	{errTooLarge, "too_large"},
	{errRedirect, "redirect_refused"},
	{errUnreachable, "unreachable"},
}

// reasonOf names a request failure for telemetry.
func reasonOf(err error) string {
	for _, f := range failureReasons {
		if errors.Is(err, f.err) {
			return f.reason
		}
	}
	return "other"
}

// apiClient calls a Prometheus-compatible HTTP API.
type apiClient struct {
	base    string // endpoint without a trailing slash
	client  *http.Client
	maxSize int64 // bytes of an answer; 0: unbounded
}

// instant evaluates promql at one time (/api/v1/query).
func (c *apiClient) instant(ctx context.Context, promql string, at time.Time) (*result, error) {
	return c.get(ctx, "/api/v1/query", url.Values{"query": {promql}, "time": {formatTime(at)}})
}

// rangeQuery evaluates promql from start to end every step (/api/v1/query_range).
func (c *apiClient) rangeQuery(ctx context.Context, promql string, start, end time.Time, step time.Duration) (*result, error) {
	return c.get(ctx, "/api/v1/query_range", url.Values{
		"query": {promql}, "start": {formatTime(start)}, "end": {formatTime(end)},
		"step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	})
}

func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

func (c *apiClient) get(ctx context.Context, path string, params url.Values) (*result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path+"?"+params.Encode(), http.NoBody)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnreachable, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, classifyTransport(ctx, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		_ = resp.Body.Close()
	}()
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("%w: HTTP 401: %s", errUnauthorized, snippet(resp.Body))
	case http.StatusForbidden:
		return nil, fmt.Errorf("%w: HTTP 403: %s", errDenied, snippet(resp.Body))
	}
	body := resp.Body
	if c.maxSize > 0 {
		body = http.MaxBytesReader(nil, body, c.maxSize)
	}
	res, err := decodeResponse(body)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, fmt.Errorf("%w (%d bytes)", errTooLarge, c.maxSize)
		}
		if timeoutErr(ctx, err) {
			return nil, fmt.Errorf("%w reading the response: %w", errTimeout, err)
		}
		// Prometheus answers 400, 422 and 503 with an error document;
		// anything else without one is an HTTP failure.
		if resp.StatusCode/100 != 2 && !errors.Is(err, errAPI) {
			return nil, fmt.Errorf("%w %d", errHTTP, resp.StatusCode)
		}
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%w: HTTP %d with a success document", errHTTP, resp.StatusCode)
	}
	return res, nil
}

func classifyTransport(ctx context.Context, err error) error {
	if errors.Is(err, errRedirect) {
		return err
	}
	if timeoutErr(ctx, err) {
		return fmt.Errorf("%w: %w", errTimeout, err)
	}
	return fmt.Errorf("%w: %w", errUnreachable, err)
}

func timeoutErr(ctx context.Context, err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// snippet is the start of an error body, printable only, for logs: proxies
// answer denials with short text.
func snippet(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 200))
	s := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, string(b))
	return strings.TrimSpace(s)
}
