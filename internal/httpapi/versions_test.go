package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestVersionDocuments(t *testing.T) {
	t.Parallel()
	keystone := VersionInfo{
		ID:         "v3.14",
		Status:     VersionStable,
		Updated:    "2020-04-07T00:00:00Z",
		Links:      []Link{{Rel: "self", Href: "http://h:5000/v3/"}},
		MediaTypes: []MediaType{{Base: "application/json", Type: "application/vnd.openstack.identity-v3+json"}},
	}
	nova := VersionInfo{
		ID: "v2.1", Status: VersionCurrent, MinVersion: "2.1", Version: "2.96",
		Updated: "2013-07-23T11:33:21Z", Links: []Link{{Rel: "self", Href: "http://h:8774/v2.1/"}},
	}
	neutron := VersionInfo{ID: "v2.0", Status: VersionCurrent}

	tests := []struct {
		name   string
		write  func(http.ResponseWriter) error
		status int
		body   string
	}{
		{"keystone values", func(w http.ResponseWriter) error {
			return WriteVersionValues(w, http.StatusMultipleChoices, []VersionInfo{keystone})
		}, 300, `{"versions":{"values":[{"id":"v3.14","status":"stable","updated":"2020-04-07T00:00:00Z","links":[{"rel":"self","href":"http://h:5000/v3/"}],"media-types":[{"base":"application/json","type":"application/vnd.openstack.identity-v3+json"}]}]}}`},
		{"nova list", func(w http.ResponseWriter) error {
			return WriteVersionList(w, http.StatusOK, []VersionInfo{nova})
		}, 200, `{"versions":[{"id":"v2.1","status":"CURRENT","min_version":"2.1","version":"2.96","updated":"2013-07-23T11:33:21Z","links":[{"rel":"self","href":"http://h:8774/v2.1/"}]}]}`},
		{"single", func(w http.ResponseWriter) error {
			return WriteVersion(w, http.StatusOK, keystone)
		}, 200, `{"version":{"id":"v3.14","status":"stable","updated":"2020-04-07T00:00:00Z","links":[{"rel":"self","href":"http://h:5000/v3/"}],"media-types":[{"base":"application/json","type":"application/vnd.openstack.identity-v3+json"}]}}`},
		{"nil links become []", func(w http.ResponseWriter) error {
			return WriteVersionList(w, http.StatusOK, []VersionInfo{neutron})
		}, 200, `{"versions":[{"id":"v2.0","status":"CURRENT","links":[]}]}`},
		{"empty list", func(w http.ResponseWriter) error {
			return WriteVersionList(w, http.StatusOK, nil)
		}, 200, `{"versions":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			if err := tt.write(rec); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tt.status {
				t.Errorf("status %d, want %d", rec.Code, tt.status)
			}
			jsonEqual(t, rec.Body.Bytes(), tt.body)
		})
	}
}

func TestVersionInfoValidate(t *testing.T) {
	t.Parallel()
	self := []Link{{Rel: "self", Href: "http://h/v1/"}}
	for _, st := range []VersionStatus{VersionCurrent, VersionSupported, VersionDeprecated, VersionStable} {
		if err := (VersionInfo{ID: "v1.0", Status: st, Links: self}).Validate(); err != nil {
			t.Errorf("status %s: %v", st, err)
		}
	}
	bad := []VersionInfo{
		{ID: "v1.0", Status: "EXPERIMENTAL", Links: self},
		{ID: "v1.0.1", Status: VersionCurrent, Links: self},
		{ID: "version1", Status: VersionCurrent, Links: self},
		{ID: "v1", Status: VersionCurrent},
	}
	for _, v := range bad {
		if err := v.Validate(); err == nil {
			t.Errorf("%+v: Validate accepted it", v)
		}
	}
}
