// Package window reads the time windows the GPU query API and its pages
// take, in one place so that a page's window picker and the API agree.
package window // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/window"

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// ErrInvalid is returned (wrapped) for a window that cannot be read.
var ErrInvalid = errors.New("invalid window")

var (
	durationForm = regexp.MustCompile(`^([0-9]{1,6})(m|h|d|w)$`)
	monthForm    = regexp.MustCompile(`^month:([0-9]{4})-([0-9]{2})$`)
)

type invalidError struct{ reason string }

func (e *invalidError) Error() string { return ErrInvalid.Error() + ": " + e.reason }
func (e *invalidError) Unwrap() error { return ErrInvalid }

func invalid(format string, args ...any) error {
	return &invalidError{reason: fmt.Sprintf(format, args...)}
}

// Reason is what is wrong with the window, without the sentinel's words.
func Reason(err error) string {
	var ie *invalidError
	if errors.As(err, &ie) {
		return ie.reason
	}
	return err.Error()
}

// Parse reads a window as OpenCost's allocation API takes it: "from,to"
// in RFC 3339, a duration ending now (30m, 24h, 7d, 2w), or a calendar
// keyword in UTC (today, yesterday, week, lastweek, month, lastmonth,
// month:YYYY-MM). Windows are half-open and at most gpustore.MaxWindow long.
// A duration of hours, days or weeks starts at the start of its first hour
// (24h at 10:45 is from 10:00 yesterday; 400d at the next hour, so that it
// stays within the bound): the whole hours of the rollup.
func Parse(s string, now time.Time) (gpustore.Window, error) {
	now = now.UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	monday := day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	var w gpustore.Window
	switch {
	case s == "today":
		w = gpustore.Window{From: day, To: day.AddDate(0, 0, 1)}
	case s == "yesterday":
		w = gpustore.Window{From: day.AddDate(0, 0, -1), To: day}
	case s == "week":
		w = gpustore.Window{From: monday, To: monday.AddDate(0, 0, 7)}
	case s == "lastweek":
		w = gpustore.Window{From: monday.AddDate(0, 0, -7), To: monday}
	case s == "month":
		w = gpustore.Window{From: month, To: month.AddDate(0, 1, 0)}
	case s == "lastmonth":
		w = gpustore.Window{From: month.AddDate(0, -1, 0), To: month}
	case monthForm.MatchString(s):
		m := monthForm.FindStringSubmatch(s)
		y, _ := strconv.Atoi(m[1])
		mo, _ := strconv.Atoi(m[2])
		if mo < 1 || mo > 12 || y < 1970 {
			return w, invalid("month:YYYY-MM needs a month 01-12 of a year from 1970")
		}
		from := time.Date(y, time.Month(mo), 1, 0, 0, 0, 0, time.UTC)
		w = gpustore.Window{From: from, To: from.AddDate(0, 1, 0)}
	case durationForm.MatchString(s):
		m := durationForm.FindStringSubmatch(s)
		n, _ := strconv.Atoi(m[1])
		unit := map[string]time.Duration{"m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[2]]
		d := time.Duration(n) * unit
		if n == 0 || d > gpustore.MaxWindow {
			return w, invalid("a duration must be positive and at most %d days", int(gpustore.MaxWindow/(24*time.Hour)))
		}
		from := now.Add(-d)
		if unit != time.Minute {
			// from the start of its first hour: the hours the rollup
			// holds, which reports then read (gpustore.ReadsRollup); the
			// next hour where that would be longer than a window may be
			if from = from.Truncate(time.Hour); now.Sub(from) > gpustore.MaxWindow {
				from = from.Add(time.Hour)
			}
		}
		w = gpustore.Window{From: from, To: now}
	case strings.Contains(s, ","):
		from, to, _ := strings.Cut(s, ",")
		f, err1 := time.Parse(time.RFC3339, from)
		t, err2 := time.Parse(time.RFC3339, to)
		if err1 != nil || err2 != nil {
			return w, invalid("from,to must both be RFC 3339 times (2026-11-01T00:00:00Z)")
		}
		w = gpustore.Window{From: f.UTC(), To: t.UTC()}
	default:
		return w, invalid("must be from,to (RFC 3339), a duration (30m, 24h, 7d, 2w) or today, yesterday, week, lastweek, month, lastmonth, month:YYYY-MM")
	}
	if !w.From.Before(w.To) {
		return w, invalid("from must be before to")
	}
	if w.To.Sub(w.From) > gpustore.MaxWindow {
		return w, invalid("at most %d days long", int(gpustore.MaxWindow/(24*time.Hour)))
	}
	return w, nil
}
