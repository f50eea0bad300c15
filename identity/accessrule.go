package identity

import (
	"net/http"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
)

// AccessRule allows one kind of request to the tokens of an application
// credential: a service type ("compute"), an HTTP method and a path
// pattern. In the pattern, "*" and "{name}" match one path segment (one or
// more characters other than "/"), and "**" matches anything, "/"
// included, as in keystonemiddleware: "/v2.1/servers/*" allows
// "/v2.1/servers/abc" but not "/v2.1/servers/abc/ips", which
// "/v2.1/servers/**" allows.
type AccessRule struct {
	// ID identifies the rule (Keystone gives rules ids; shown, not used).
	ID      string `json:"id,omitempty"`
	Service string `json:"service"`
	Method  string `json:"method"`
	Path    string `json:"path"`
}

var accessRuleMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true,
}

// maxAccessRules bounds the rules of one application credential.
const maxAccessRules = 64

func (r *AccessRule) validate(field string) error {
	switch {
	case r.Service == "" || len(r.Service) > 64 || strings.ContainsFunc(r.Service, func(c rune) bool { return c <= ' ' || c > '~' }):
		return errdefs.Invalid(field+".service", "must be a service type")
	case !accessRuleMethods[r.Method]:
		return errdefs.Invalid(field+".method", "must be one of GET, HEAD, POST, PUT, PATCH and DELETE")
	case !strings.HasPrefix(r.Path, "/") || len(r.Path) > 255:
		return errdefs.Invalid(field+".path", "must start with / and be at most 255 characters")
	}
	if _, ok := parseGlob(r.Path); !ok {
		return errdefs.Invalid(field+".path", "is not a valid pattern: unbalanced {} or *** ")
	}
	return nil
}

// allows reports whether the rule allows a request.
func (r *AccessRule) allows(service, method, path string) bool {
	if r.Service != service || r.Method != method {
		return false
	}
	toks, ok := parseGlob(r.Path)
	return ok && matchGlob(toks, path)
}

// allowedByRules reports whether rules (none meaning no restriction)
// allow a request to service.
func allowedByRules(rules []AccessRule, service, method, path string) bool {
	if len(rules) == 0 {
		return true
	}
	for i := range rules {
		if rules[i].allows(service, method, path) {
			return true
		}
	}
	return false
}

type globKind byte

const (
	globLit globKind = iota
	globSegment
	globAny
)

type globTok struct {
	kind globKind
	lit  string
}

// parseGlob splits an access rule path into literals, segment wildcards
// ("*", "{name}") and "**". It refuses "***" and unbalanced braces.
func parseGlob(p string) ([]globTok, bool) {
	var toks []globTok
	lit := func(s string) {
		if n := len(toks); n > 0 && toks[n-1].kind == globLit {
			toks[n-1].lit += s
			return
		}
		toks = append(toks, globTok{kind: globLit, lit: s})
	}
	for i := 0; i < len(p); {
		switch p[i] {
		case '*':
			n := 0
			for i+n < len(p) && p[i+n] == '*' {
				n++
			}
			switch n {
			case 1:
				toks = append(toks, globTok{kind: globSegment})
			case 2:
				toks = append(toks, globTok{kind: globAny})
			default:
				return nil, false
			}
			i += n
		case '{':
			end := strings.IndexByte(p[i:], '}')
			if end < 0 || strings.ContainsAny(p[i+1:i+end], "{/*") {
				return nil, false
			}
			toks = append(toks, globTok{kind: globSegment})
			i += end + 1
		case '}':
			return nil, false
		default:
			j := i
			for j < len(p) && p[j] != '*' && p[j] != '{' && p[j] != '}' {
				j++
			}
			lit(p[i:j])
			i = j
		}
	}
	return toks, true
}

// matchGlob reports whether path matches the pattern toks, in time linear
// in len(toks) × len(path) whatever the pattern (no backtracking).
func matchGlob(toks []globTok, path string) bool {
	n := len(path)
	reach := make([]bool, n+1)
	next := make([]bool, n+1)
	reach[0] = true
	for _, t := range toks {
		clear(next)
		switch t.kind {
		case globLit:
			for i := 0; i+len(t.lit) <= n; i++ {
				if reach[i] && path[i:i+len(t.lit)] == t.lit {
					next[i+len(t.lit)] = true
				}
			}
		case globSegment: // one or more characters other than '/'
			carry := false
			for j := 1; j <= n; j++ {
				if path[j-1] == '/' {
					carry = false
					continue
				}
				carry = carry || reach[j-1]
				next[j] = carry
			}
		case globAny: // anything
			carry := false
			for j := 0; j <= n; j++ {
				carry = carry || reach[j]
				next[j] = carry
			}
		}
		reach, next = next, reach
	}
	return reach[n]
}
