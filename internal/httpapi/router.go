package httpapi

import "net/http"

// Router is an http.ServeMux (Go 1.22 "METHOD /path/{name}" patterns) that
// answers an unknown path with 404 and a known path with the wrong method
// with 405 and an Allow header, both in its family's error body instead of
// ServeMux's plain text. Path-cleaning redirects are ServeMux's.
type Router struct {
	mux *http.ServeMux
	fam Family
}

// NewRouter returns an empty Router for family fam.
func NewRouter(fam Family) *Router {
	return &Router{mux: http.NewServeMux(), fam: fam}
}

// Handle registers h for pattern, as http.ServeMux.Handle does; it panics on
// a malformed or conflicting pattern.
func (rt *Router) Handle(pattern string, h http.Handler) { rt.mux.Handle(pattern, h) }

// HandleFunc registers f for pattern, as http.ServeMux.HandleFunc does.
func (rt *Router) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	rt.mux.HandleFunc(pattern, f)
}

// ServeHTTP dispatches r to the handler whose pattern matches, or answers
// 404 or 405 in the family's error body.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := rt.mux.Handler(r)
	if pattern != "" {
		// ServeHTTP, not h, so that r.PathValue works in the handler.
		rt.mux.ServeHTTP(w, r)
		return
	}
	// No pattern matched. ServeMux's fallback handler knows whether another
	// method would have matched: it answers 405 with Allow. Run it against
	// a recorder and keep only its verdict.
	rec := &verdict{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if rec.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", rec.header.Get("Allow"))
		WriteError(w, r, rt.fam, Errorf(http.StatusMethodNotAllowed,
			"The method %s is not allowed for this resource.", r.Method))
		return
	}
	WriteError(w, r, rt.fam, Errorf(http.StatusNotFound, "The resource could not be found."))
}

// verdict is a ResponseWriter that keeps a status and headers and drops the
// body.
type verdict struct {
	header http.Header
	status int
}

func (v *verdict) Header() http.Header { return v.header }

func (v *verdict) WriteHeader(code int) {
	if v.status == 0 {
		v.status = code
	}
}

func (v *verdict) Write(p []byte) (int, error) {
	if v.status == 0 {
		v.status = http.StatusOK
	}
	return len(p), nil
}
