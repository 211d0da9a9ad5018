package login // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/login"

import (
	"container/list"
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Session is one logged-in browser. Its tokens never leave the server: the
// browser holds only the session's random id.
type Session struct {
	id      string
	User    string // preferred_username, for the pages' header
	CSRF    string // the token every non-GET must carry
	idToken string // for the logout's id_token_hint
	created time.Time

	mu       sync.Mutex // guards token and lastUsed (refresh)
	token    *oauth2.Token
	lastUsed time.Time

	elem *list.Element
}

// End reasons (attribute reason of gpu_query_sessions_ended).
const (
	EndLogout   = "logout"
	EndIdle     = "idle"
	EndAbsolute = "absolute"
	EndRefresh  = "refresh_failed"
	EndEvicted  = "evicted"
)

// sessions are the live sessions, least recently used first.
type sessions struct {
	mu    sync.Mutex
	byID  map[string]*Session
	lru   *list.List
	max   int
	ended func(reason string)
}

func newSessions(max int, ended func(string)) *sessions {
	return &sessions{byID: map[string]*Session{}, lru: list.New(), max: max, ended: ended}
}

// add stores a new session, ending the least recently used one when full.
func (s *sessions) add(sess *Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.byID) >= s.max {
		oldest := s.lru.Front().Value.(*Session)
		s.removeLocked(oldest, EndEvicted)
	}
	sess.elem = s.lru.PushBack(sess)
	s.byID[sess.id] = sess
}

// get finds a session and marks it used.
func (s *sessions) get(id string) (*Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byID[id]
	if ok {
		s.lru.MoveToBack(sess.elem)
	}
	return sess, ok
}

func (s *sessions) remove(sess *Session, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(sess, reason)
}

func (s *sessions) removeLocked(sess *Session, reason string) {
	if cur, ok := s.byID[sess.id]; !ok || cur != sess {
		return // already ended
	}
	delete(s.byID, sess.id)
	s.lru.Remove(sess.elem)
	s.ended(reason)
}

func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

// randomToken is 32 bytes from crypto/rand, base64url: session ids, CSRF
// tokens, OAuth state and nonce.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// pending is a login started and not yet called back: what the callback
// must find again for its state.
type pending struct {
	verifier, nonce, next string
	started               time.Time
}

// pendingLogins bounds the logins in flight (each is a redirect away).
type pendingLogins struct {
	mu   sync.Mutex
	byID map[string]pending
	max  int
	ttl  time.Duration
}

func (p *pendingLogins) put(state string, pl pending) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.byID) >= p.max {
		for k, v := range p.byID {
			if pl.started.Sub(v.started) > p.ttl {
				delete(p.byID, k)
			}
		}
		if len(p.byID) >= p.max {
			for k := range p.byID { // still full of fresh ones: drop any
				delete(p.byID, k)
				break
			}
		}
	}
	p.byID[state] = pl
}

// take removes and returns a pending login: a state is good once.
func (p *pendingLogins) take(state string, now time.Time) (pending, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pl, ok := p.byID[state]
	delete(p.byID, state)
	if !ok || now.Sub(pl.started) > p.ttl {
		return pending{}, false
	}
	return pl, true
}
