package alertmanagerreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"

import (
	"crypto/sha256"
	"encoding/binary"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// idDomain separates this receiver's hashes from any other use of SHA-256 over
// the same strings; changing it changes every ID.
const idDomain = "aitelemetry/alertmanagerreceiver/session/v2\x00"

// sessionIDs are the deterministic IDs of one alert instance: the trace, the
// session span (emitted on resolution) and the start marker span (on firing).
type sessionIDs struct {
	trace   pcommon.TraceID
	session pcommon.SpanID
	start   pcommon.SpanID
}

// deriveSessionIDs hashes (fingerprint, startsAt, resource). Alertmanager
// keeps fingerprint and startsAt fixed from the first firing to the
// resolution, and gives a re-fire a new startsAt, so every notification about
// one session, from any Alertmanager peer to any collector replica, yields the
// same IDs. The resource is the Keycloak resource the alert's labels compute
// to, the one its sender was allowed on: a sender allowed for one project that
// posts another project's fingerprint and startsAt first gets IDs of its own
// project, so it can neither suppress the other's session in the record nor
// write spans with its IDs. Each field is length-prefixed, so no two
// different triples hash the same bytes.
func deriveSessionIDs(fingerprint string, startsAtUnixNano int64, resource string) sessionIDs {
	h := sha256.New()
	h.Write([]byte(idDomain))
	var n [8]byte
	for _, field := range []string{fingerprint, resource} {
		binary.BigEndian.PutUint64(n[:], uint64(len(field)))
		h.Write(n[:])
		h.Write([]byte(field))
	}
	binary.BigEndian.PutUint64(n[:], uint64(startsAtUnixNano)) //nolint:gosec // the bits of the timestamp, sign included
	h.Write(n[:])
	var sum [sha256.Size]byte
	h.Sum(sum[:0])

	var ids sessionIDs
	copy(ids.trace[:], sum[0:16])
	copy(ids.session[:], sum[16:24])
	copy(ids.start[:], sum[24:32])
	// All-zero IDs are invalid in OTLP; a hash this unlucky gets one bit set.
	if ids.trace.IsEmpty() {
		ids.trace[15] = 1
	}
	if ids.session.IsEmpty() {
		ids.session[7] = 1
	}
	if ids.start.IsEmpty() || ids.start == ids.session {
		ids.start[7] ^= 2
	}
	return ids
}

// recordKey names a session in the record.
func (ids sessionIDs) recordKey() string { return ids.trace.String() }
