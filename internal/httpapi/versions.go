package httpapi

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// VersionStatus is the status of an API version in a discovery document.
// gophercloud rejects every status but CURRENT, STABLE, SUPPORTED and
// DEPRECATED (in any case), and with it the whole endpoint.
type VersionStatus string

// The version statuses clients accept.
const (
	VersionCurrent    VersionStatus = "CURRENT"
	VersionSupported  VersionStatus = "SUPPORTED"
	VersionDeprecated VersionStatus = "DEPRECATED"
	// VersionStable is what Keystone answers for v3.
	VersionStable VersionStatus = "stable"
)

// MediaType is an entry of a version's "media-types".
type MediaType struct {
	Base string `json:"base"`
	Type string `json:"type"`
}

// VersionInfo is one entry of a version discovery document.
type VersionInfo struct {
	// ID is the version id, such as "v2.1" or "v3.14".
	ID string `json:"id"`
	// Status is one of the VersionStatus constants.
	Status VersionStatus `json:"status"`
	// Links holds at least the "self" link to the versioned endpoint.
	Links []Link `json:"links"`
	// MinVersion and Version are the lowest and highest microversions, for
	// services that have them (keystoneauth and gophercloud read
	// microversions only when both are set).
	MinVersion string `json:"min_version,omitempty"`
	Version    string `json:"version,omitempty"`
	// Updated is an RFC 3339 time such as "2013-07-23T11:33:21Z".
	Updated string `json:"updated,omitempty"`
	// MediaTypes lists the media types the version serves.
	MediaTypes []MediaType `json:"media-types,omitempty"`
}

// versionIDPattern is gophercloud's rule for version ids.
var versionIDPattern = regexp.MustCompile(`^v?\d+(\.\d+)?$`)

// Validate reports whether clients will accept v: its id must look like
// "v3" or "v2.1", its status must be one gophercloud knows, and it needs a
// "self" link.
func (v VersionInfo) Validate() error {
	if !versionIDPattern.MatchString(v.ID) {
		return fmt.Errorf("httpapi: version id %q does not match %s", v.ID, versionIDPattern)
	}
	switch strings.ToUpper(string(v.Status)) {
	case "CURRENT", "STABLE", "SUPPORTED", "DEPRECATED":
	default:
		return fmt.Errorf("httpapi: version %s: status %q is not CURRENT, STABLE, SUPPORTED or DEPRECATED", v.ID, v.Status)
	}
	for _, l := range v.Links {
		if l.Rel == "self" && l.Href != "" {
			return nil
		}
	}
	return fmt.Errorf("httpapi: version %s: no self link", v.ID)
}

// WriteVersionValues writes Keystone's discovery shape,
// {"versions":{"values":[…]}}. Keystone answers GET / with 300.
func WriteVersionValues(w http.ResponseWriter, status int, vs []VersionInfo) error {
	return WriteJSON(w, status, map[string]map[string][]VersionInfo{
		"versions": {"values": normalize(vs)},
	})
}

// WriteVersionList writes the discovery shape of Nova, Neutron, Glance,
// Cinder and Heat, {"versions":[…]}. Nova and Neutron answer GET / with 200,
// Glance, Cinder and Heat with 300.
func WriteVersionList(w http.ResponseWriter, status int, vs []VersionInfo) error {
	return WriteJSON(w, status, map[string][]VersionInfo{"versions": normalize(vs)})
}

// WriteVersion writes a single version, {"version":{…}}, the answer to a
// GET of a versioned root such as /v3 or /v2.1.
func WriteVersion(w http.ResponseWriter, status int, v VersionInfo) error {
	return WriteJSON(w, status, map[string]VersionInfo{"version": normalize([]VersionInfo{v})[0]})
}

// normalize returns vs with nil Links as empty lists (clients expect an
// array) and never nil itself.
func normalize(vs []VersionInfo) []VersionInfo {
	out := make([]VersionInfo, len(vs))
	for i, v := range vs {
		if v.Links == nil {
			v.Links = []Link{}
		}
		out[i] = v
	}
	return out
}
