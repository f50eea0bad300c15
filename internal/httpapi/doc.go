// Package httpapi is the HTTP plumbing shared by every Stratus service's
// api.go: the OpenStack-compatible wire conventions that are the same, or
// differ only by service "family", across Keystone, Nova, Cinder, Neutron,
// Glance, Swift and Heat.
//
// It gives:
//
//   - [WriteError], which renders any error in the error body of a [Family]
//     after mapping its errdefs kind to a status with [StatusOf], and
//     [HTTPError] for an explicit status such as 405, 406 or 415;
//   - [WriteJSON] and [DecodeJSON] with a body size limit, content-type check
//     and optional rejection of unknown fields;
//   - request ids ([WithRequestID], [RequestID]), panic recovery ([Recover]),
//     an access log ([AccessLog]) and [Wrap] to compose them;
//   - [Router], a net/http ServeMux that answers unknown routes with 404 and
//     wrong methods with 405 in the family's error body;
//   - paging by limit and marker ([ParsePage], [PageSlice], [PageLinks]);
//   - microversion negotiation ([Microversions], [Version]) and version
//     discovery documents ([VersionInfo], [WriteVersionList] and friends);
//   - [Listen] and [Serve] to run a server until its context is done.
//
// Handlers stay thin: decode, call the service, encode.
//
//	func (a *API) createServer(w http.ResponseWriter, r *http.Request) {
//		var req createServerRequest
//		if err := httpapi.DecodeJSON(w, r, &req, httpapi.DecodeOptions{DisallowUnknownFields: true}); err != nil {
//			httpapi.WriteError(w, r, httpapi.Nova, err)
//			return
//		}
//		srv, err := a.svc.CreateServer(r.Context(), req.Server)
//		if err != nil {
//			httpapi.WriteError(w, r, httpapi.Nova, err)
//			return
//		}
//		httpapi.WriteJSON(w, http.StatusAccepted, map[string]any{"server": srv})
//	}
package httpapi
