package httpapi

import (
	"errors"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/stratuskit/stratus/errdefs"
)

func TestParsePage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		query   string
		opts    PageOptions
		want    Page
		wantErr bool
	}{
		{"defaults", "", PageOptions{}, Page{Limit: DefaultMaxLimit}, false},
		{"default limit", "", PageOptions{DefaultLimit: 20, MaxLimit: 100}, Page{Limit: 20}, false},
		{"limit and marker", "limit=5&marker=abc", PageOptions{}, Page{Limit: 5, Marker: "abc"}, false},
		{"zero", "limit=0", PageOptions{}, Page{Limit: 0}, false},
		{"clamped", "limit=500", PageOptions{MaxLimit: 100}, Page{Limit: 100}, false},
		{"over max rejected", "limit=101", PageOptions{MaxLimit: 100, RejectOverMax: true}, Page{}, true},
		{"at max accepted", "limit=100", PageOptions{MaxLimit: 100, RejectOverMax: true}, Page{Limit: 100}, false},
		{"negative", "limit=-1", PageOptions{}, Page{}, true},
		{"not a number", "limit=ten", PageOptions{}, Page{}, true},
		{"empty", "limit=", PageOptions{}, Page{}, true},
		{"plus sign", "limit=+5", PageOptions{}, Page{}, true},
		{"float", "limit=1.5", PageOptions{}, Page{}, true},
		{"huge", "limit=99999999999999999999", PageOptions{}, Page{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParsePage(httptest.NewRequest("GET", "/servers?"+tt.query, nil), tt.opts)
			if tt.wantErr {
				var ve *errdefs.ValidationError
				if !errors.As(err, &ve) || ve.Field != "limit" || StatusOf(err) != 400 {
					t.Fatalf("err = %v, want a 400 ValidationError naming limit", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParsePage = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestPageSlice(t *testing.T) {
	t.Parallel()
	items := []string{"a", "b", "c", "d", "e"}
	id := func(s string) string { return s }
	tests := []struct {
		name     string
		page     Page
		want     []string
		wantMore bool
		wantErr  bool
	}{
		{"first page", Page{Limit: 2}, []string{"a", "b"}, true, false},
		{"middle", Page{Limit: 2, Marker: "b"}, []string{"c", "d"}, true, false},
		{"last exact", Page{Limit: 2, Marker: "c"}, []string{"d", "e"}, false, false},
		{"last short", Page{Limit: 3, Marker: "c"}, []string{"d", "e"}, false, false},
		{"after last", Page{Limit: 3, Marker: "e"}, []string{}, false, false},
		{"all", Page{Limit: 10}, items, false, false},
		{"zero limit", Page{Limit: 0}, []string{}, true, false},
		{"unknown marker", Page{Limit: 2, Marker: "zz"}, nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, more, err := PageSlice(items, tt.page, id)
			if tt.wantErr {
				if StatusOf(err) != 400 {
					t.Fatalf("err = %v, want 400", err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) || more != tt.wantMore {
				t.Errorf("PageSlice = %v, %v, %v; want %v, %v", got, more, err, tt.want, tt.wantMore)
			}
		})
	}
}

func TestPageLinks(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "http://nova.test:8774/v2.1/servers/detail?name=web&limit=2&marker=old", nil)
	p := Page{Limit: 2, Marker: "old"}
	links := PageLinks(r, p, true, "id-2")
	want := []Link{{Rel: "next", Href: "http://nova.test:8774/v2.1/servers/detail?limit=2&marker=id-2&name=web"}}
	if !slices.Equal(links, want) {
		t.Errorf("PageLinks = %+v, want %+v", links, want)
	}
	if got := PageLinks(r, p, false, "id-2"); got != nil {
		t.Errorf("no more: %+v", got)
	}
	if got := PageLinks(r, Page{Limit: 0}, true, "x"); got != nil {
		t.Errorf("limit 0 must not link onwards (clients would loop): %+v", got)
	}

	tlsReq := httptest.NewRequest("GET", "https://h/v2.0/networks", nil)
	if got := PageLinks(tlsReq, Page{Limit: 1}, true, "n1")[0].Href; got != "https://h/v2.0/networks?limit=1&marker=n1" {
		t.Errorf("TLS href %q", got)
	}

	body := ListBody("servers", []string{"x"}, links)
	if _, ok := body["servers_links"]; !ok {
		t.Errorf("ListBody lacks servers_links: %v", body)
	}
	if body := ListBody("servers", []string{}, nil); len(body) != 1 {
		t.Errorf("ListBody without links: %v", body)
	}
}
