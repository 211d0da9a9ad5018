package testpeers

import (
	"errors"
	"fmt"
	"net/url"

	"golang.org/x/net/html"
)

// errNoLoginForm is returned (wrapped) for a page without Keycloak's login form.
var errNoLoginForm = errors.New("no Keycloak login form (kc-form-login)")

// LoginForm is what a user submits on Keycloak's own login page, parsed
// from doc as served at page: the form kc-form-login's action, resolved
// against page, and its fields filled with user and that user's password,
// as a browser sends them.
func (kc *Keycloak) LoginForm(page *url.URL, doc *html.Node, user string) (*url.URL, url.Values, error) {
	form := FindElement(doc, func(n *html.Node) bool { return n.Data == "form" && Attr(n, "id") == "kc-form-login" })
	if form == nil {
		return nil, nil, fmt.Errorf("%s: %w", page, errNoLoginForm)
	}
	action, err := page.Parse(Attr(form, "action"))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: login form action: %w", page, err)
	}
	return action, url.Values{"username": {user}, "password": {kc.Secret(user)}, "credentialId": {""}}, nil
}

// FindElement is the first element under n, in document order, that ok
// accepts; nil when none does.
func FindElement(n *html.Node, ok func(*html.Node) bool) *html.Node {
	if n.Type == html.ElementNode && ok(n) {
		return n
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if f := FindElement(c, ok); f != nil {
			return f
		}
	}
	return nil
}

// Attr is the value of n's attribute key, "" when it has none.
func Attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
