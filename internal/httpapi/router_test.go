package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRouter(t *testing.T) {
	t.Parallel()
	newRouter := func(fam Family) *Router {
		rt := NewRouter(fam)
		rt.HandleFunc("GET /v2.1/servers/{id}", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "server "+r.PathValue("id"))
		})
		rt.HandleFunc("DELETE /v2.1/servers/{id}", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		})
		rt.Handle("POST /v2.1/servers", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
		}))
		rt.HandleFunc("/v2.1/any", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Method) })
		return rt
	}
	tests := []struct {
		name   string
		fam    Family
		method string
		path   string
		status int
		allow  string
		body   string // exact JSON, or plain text when it starts with no '{'
	}{
		{"match with path value", Nova, "GET", "/v2.1/servers/abc", 200, "", "server abc"},
		{"HEAD matches GET", Nova, "HEAD", "/v2.1/servers/abc", 200, "", "server abc"}, // the recorder keeps HEAD bodies
		{"other method", Nova, "DELETE", "/v2.1/servers/abc", 204, "", ""},
		{"any method", Nova, "PATCH", "/v2.1/any", 200, "", "PATCH"},
		{"unknown route nova", Nova, "GET", "/v2.1/nothing", 404, "",
			`{"itemNotFound":{"code":404,"message":"The resource could not be found."}}`},
		{"unknown route keystone", Keystone, "GET", "/v3/nothing", 404, "",
			`{"error":{"code":404,"message":"The resource could not be found.","title":"Not Found"}}`},
		{"unknown route neutron", Neutron, "GET", "/nothing", 404, "",
			`{"NeutronError":{"type":"NotFound","message":"The resource could not be found.","detail":""}}`},
		{"unknown route glance", Glance, "GET", "/nothing", 404, "",
			"404 Not Found\n\nThe resource could not be found.\n"},
		{"wrong method nova", Nova, "PUT", "/v2.1/servers/abc", 405, "DELETE, GET, HEAD",
			`{"badMethod":{"code":405,"message":"The method PUT is not allowed for this resource."}}`},
		{"wrong method heat", Heat, "GET", "/v2.1/servers", 405, "POST",
			`{"code":405,"title":"Method Not Allowed","explanation":"The method is not allowed for this resource.","error":{"type":"HTTPMethodNotAllowed","message":"The method GET is not allowed for this resource.","traceback":null}}`},
		{"path cleaning redirect", Nova, "GET", "/v2.1/../v2.1/servers/abc", 307, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			r := httptest.NewRequest(tt.method, "http://h"+tt.path, nil)
			r.URL.Path = tt.path // keep ".." for the redirect case
			newRouter(tt.fam).ServeHTTP(rec, r)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if got := rec.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			switch {
			case tt.status == 307:
			case len(tt.body) > 0 && tt.body[0] == '{':
				jsonEqual(t, rec.Body.Bytes(), tt.body)
			case rec.Body.String() != tt.body:
				t.Errorf("body %q, want %q", rec.Body, tt.body)
			}
		})
	}
}
