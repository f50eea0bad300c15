package httpapi_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/stratuskit/stratus/errdefs"
	"github.com/stratuskit/stratus/internal/httpapi"
)

// A Nova-style API: a Router for the routes, Wrap for request ids, access
// log and panic recovery, and WriteError for errdefs errors.
func Example() {
	rt := httpapi.NewRouter(httpapi.Nova)
	rt.HandleFunc("GET /v2.1/servers/{id}", func(w http.ResponseWriter, r *http.Request) {
		err := fmt.Errorf("compute: server %q: %w", r.PathValue("id"), errdefs.ErrNotFound)
		httpapi.WriteError(w, r, httpapi.Nova, err)
	})
	h := httpapi.Wrap(rt, httpapi.Nova, slog.New(slog.DiscardHandler))

	for _, req := range []struct{ method, path string }{
		{"GET", "/v2.1/servers/web1"},
		{"DELETE", "/v2.1/servers/web1"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(req.method, req.path, nil))
		body, _ := io.ReadAll(rec.Body)
		fmt.Println(rec.Code, rec.Header().Get("Allow"), string(body))
	}
	// Output:
	// 404  {"itemNotFound":{"code":404,"message":"compute: server \"web1\": not found"}}
	// 405 GET, HEAD {"badMethod":{"code":405,"message":"The method DELETE is not allowed for this resource."}}
}

func ExampleMicroversions_Negotiate() {
	nova := httpapi.Microversions{
		Service:      "compute",
		LegacyHeader: "X-OpenStack-Nova-API-Version",
		Min:          httpapi.Version{Major: 2, Minor: 1},
		Max:          httpapi.Version{Major: 2, Minor: 96},
	}
	for _, hdr := range []string{"", "compute 2.61", "volume 3.60, compute latest", "compute 2.100"} {
		r := httptest.NewRequest("GET", "/v2.1/flavors", nil)
		if hdr != "" {
			r.Header.Set(httpapi.APIVersionHeader, hdr)
		}
		v, err := nova.Negotiate(r)
		fmt.Printf("%q: %v %d\n", hdr, v, httpapi.StatusOf(err))
	}
	// Output:
	// "": 2.1 200
	// "compute 2.61": 2.61 200
	// "volume 3.60, compute latest": 2.96 200
	// "compute 2.100": 0.0 406
}

func ExampleWriteError() {
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("PUT", "/v2.0/networks/n1", nil)
	err := &httpapi.HTTPError{
		Status:  http.StatusPreconditionFailed,
		Type:    "RevisionNumberConstraintFailed",
		Message: "Constrained to 3, but current revision is 4",
	}
	httpapi.WriteError(rec, r, httpapi.Neutron, err)
	fmt.Println(rec.Code, rec.Body.String())
	// Output:
	// 412 {"NeutronError":{"type":"RevisionNumberConstraintFailed","message":"Constrained to 3, but current revision is 4","detail":""}}
}
